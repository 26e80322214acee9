"""`manage.py destination add|check|list`: a probe proves a destination works, or says
clearly why not (no bucket, access denied, unreachable)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devstack.services.base import free_port
from migration.models import Destination
from tests.migration import support

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("destination", *args, stdout=out)
    return out.getvalue()


def test_an_s3_destination_is_added_and_its_check_writes_reads_and_deletes_a_probe(
    migration_s3, bucket
):
    added = run("add", "cloud", "--s3-bucket", bucket, "--endpoint-url", migration_s3.endpoint_url,
                "--prefix", "pacs", "--region", "us-east-1", "--access-key-env", support.S3_KEY_ENV,
                "--secret-key-env", support.S3_SECRET_ENV)  # fmt: skip
    assert f"added s3 destination cloud: s3://{bucket}/pacs" in added

    out = run("check", "cloud", "--json")

    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] is True and result["ms"] > 0
    assert support.listed_keys(migration_s3.client(), bucket) == {}  # the probe is gone
    assert Destination.objects.get(name="cloud").last_check_ok is True


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no-bucket", "bucket 'no-such-bucket' does not exist"),
        ("bad-key", "access denied to bucket"),
        ("unreachable", "S3 endpoint unreachable"),
        ("unset-variable", "credentials not available"),
    ],
)
def test_a_failing_s3_check_names_the_problem(migration_s3, bucket, monkeypatch, case, expected):
    fields = {"bucket": bucket, "endpoint_url": migration_s3.endpoint_url}
    if case == "no-bucket":
        fields["bucket"] = "no-such-bucket"
    elif case == "bad-key":
        monkeypatch.setenv("CC_SECRET_MIGTEST_WRONG", "not-the-key")
        fields["access_key_env"] = "CC_SECRET_MIGTEST_WRONG"
    elif case == "unreachable":
        fields["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    else:
        fields["access_key_env"] = "CC_SECRET_MIGTEST_UNSET"
    Destination.objects.create(
        name=case, kind="s3", region="us-east-1", secret_key_env=support.S3_SECRET_ENV,
        access_key_env=fields.pop("access_key_env", support.S3_KEY_ENV), **fields,
    )  # fmt: skip

    with pytest.raises(CommandError, match="failed its check") as failure:
        run("check", case)

    assert expected in str(failure.value)
    assert expected in Destination.objects.get(name=case).last_check_detail


def test_folder_and_dicomweb_destinations_are_added_and_listed(tmp_path, dicomweb_store):
    run("add", "folder", "--path", str(tmp_path))
    run("add", "web", "--dicomweb", dicomweb_store.dicomweb_url)
    assert "ok" in run("check", "folder")
    assert "stored and read back a probe instance" in run("check", "web")

    listing = json.loads(run("list", "--json").strip().splitlines()[-1])

    assert [d["name"] for d in listing["destinations"]] == ["folder", "web"]
    with pytest.raises(CommandError, match="no destination named 'nope'"):
        run("check", "nope")
    with pytest.raises(CommandError, match="path: must be an absolute path"):
        run("add", "relative", "--path", "some/folder")
