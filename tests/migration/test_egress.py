"""Attacks on the destinations' egress: a migration engineer tries to send this
process's secrets to a server of their own, or to read the cloud metadata address.
The exfiltration target is a loopback server that records what it receives; the policy
must refuse before anything is sent."""

import pytest
from django.test import override_settings
from django.urls import reverse

from migration import actions
from migration.models import Destination
from migration.storage import DestinationError, DicomWebStore
from tests.egress_support import ConnectionRecord, RecordingServer
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db
SECRET = "the-django-secret-key-value"


@pytest.fixture
def process_secret(monkeypatch):
    monkeypatch.setenv("SECRET_KEY_FOR_TEST", SECRET)
    monkeypatch.setenv("CC_SECRET_TEST_AUTH", "Bearer allowed-token")
    return "SECRET_KEY_FOR_TEST"


def test_the_api_refuses_a_destination_that_names_a_process_secret(cast, client_for):
    engineer = client_for(cast.engineer)
    for fields in (
        {
            "kind": "dicomweb",
            "url": "http://127.0.0.1:9/dicom-web",
            "auth_header_env": "SECRET_KEY",
        },
        {"kind": "s3", "bucket": "b", "access_key_env": "AWS_SECRET_ACCESS_KEY"},
        {"kind": "s3", "bucket": "b", "secret_key_env": "DATABASE_URL"},
    ):
        answer = engineer.post(
            "/migration/api/destinations/", {"name": "x", **fields}, content_type="application/json"
        )
        assert answer.status_code == 400
        assert "CC_SECRET_" in str(answer.json())
    assert not Destination.objects.exists()


def test_the_form_refuses_a_secret_variable_and_a_metadata_url(cast, client_for):
    engineer = client_for(cast.engineer)
    answer = engineer.post(
        reverse("migration:destination_new"),
        {"name": "meta", "kind": "dicomweb", "url": "http://169.254.169.254/latest/",
         "auth_header_env": "SECRET_KEY"},
    )  # fmt: skip
    page = answer.content.decode()
    assert answer.status_code == 400 and "link-local or metadata" in page and "CC_SECRET_" in page


def test_a_check_never_sends_a_disallowed_secret_and_says_only_credentials_not_available(
    process_secret,
):
    with RecordingServer() as server:
        messages = set()
        for name in (process_secret, "CC_SECRET_NOT_SET"):
            destination = Destination.objects.create(
                name=f"exfil-{len(messages)}-{name.lower()[:20]}".replace("_", "-"),
                kind="dicomweb", url=server.url, auth_header_env=name,
            )  # fmt: skip
            result = actions.check_destination(destination)
            messages.add(result["detail"])
            assert result["ok"] is False
    assert messages == {"credentials not available"}
    assert server.requests == [] and not server.received(SECRET)


def test_an_allowed_secret_reaches_an_allowed_host():
    with RecordingServer(status=204) as server:
        destination = Destination.objects.create(
            name="allowed", kind="dicomweb", url=server.url, auth_header_env="CC_SECRET_T"
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CC_SECRET_T", "Bearer allowed")
            DicomWebStore(destination).begin_study("1.2.3")
    assert server.requests and server.received("Bearer allowed")


@override_settings(EGRESS_ALLOW="10.0.0.0/8,pacs.hospital.example")
def test_a_destination_outside_the_allow_list_is_refused_before_any_request(process_secret):
    with RecordingServer() as server:
        destination = Destination.objects.create(
            name="elsewhere", kind="dicomweb", url=server.url, auth_header_env="CC_SECRET_TEST_AUTH"
        )
        result = actions.check_destination(destination)
        s3 = Destination.objects.create(
            name="s3-elsewhere", kind="s3", bucket="b", endpoint_url=server.url
        )
        s3_result = actions.check_destination(s3)
    assert not result["ok"] and "not in the egress allow-list" in result["detail"]
    assert not s3_result["ok"] and "not in the egress allow-list" in s3_result["detail"]
    assert server.requests == []


def test_the_metadata_address_is_refused_without_any_connection():
    destination = Destination.objects.create(
        name="metadata", kind="dicomweb", url="http://169.254.169.254/latest/meta-data/"
    )
    s3 = Destination.objects.create(
        name="metadata-s3", kind="s3", bucket="b", endpoint_url="http://169.254.169.254/"
    )
    with ConnectionRecord() as seen:
        results = [actions.check_destination(d) for d in (destination, s3)]
    assert all(not r["ok"] and "link-local or metadata" in r["detail"] for r in results)
    assert not any(host.startswith("169.254.") for host in seen.hosts())


def test_a_dicomweb_redirect_is_not_followed():
    with (
        RecordingServer() as target,
        RecordingServer(status=302) as first,
    ):
        first.headers["Location"] = f"{target.url}/stolen"
        destination = Destination.objects.create(
            name="redirecting", kind="dicomweb", url=first.url, auth_header_env="CC_SECRET_T"
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CC_SECRET_T", "Bearer allowed")
            store = DicomWebStore(destination)
            with pytest.raises(DestinationError, match="302"):
                store.begin_study("1.2.3")
            with pytest.raises(DestinationError, match="302"):
                store.read("studies/1.2/series/1.3/instances/1.4")
    assert len(first.requests) == 2 and target.requests == []


@override_settings(EGRESS_MAX_BODY_BYTES=16)
def test_a_dicomweb_answer_is_read_with_a_cap():
    with RecordingServer(
        headers={"Content-Type": "application/json"}, body=b"[" + b" " * 5000 + b"]"
    ) as server:
        destination = Destination.objects.create(name="big", kind="dicomweb", url=server.url)
        with pytest.raises(DestinationError, match="unreachable: DicomWebError"):
            DicomWebStore(destination).begin_study("1.2.3")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_check_runs_in_a_worker_that_refuses_the_secret_too(
    cast, client_for, process_secret, migration_worker
):
    with RecordingServer() as server:
        destination = Destination.objects.create(
            name="exfil-worker", kind="dicomweb", url=server.url, auth_header_env="SECRET_KEY"
        )
        answer = client_for(cast.engineer).post(
            f"/migration/api/destinations/{destination.pk}/check/"
        )
        assert answer.status_code == 202
        wait_for(lambda: Destination.objects.get(pk=destination.pk).last_check_at)
    destination.refresh_from_db()
    assert destination.last_check_ok is False
    assert destination.last_check_detail == "credentials not available"
    assert server.requests == []
