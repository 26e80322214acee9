"""Attacks on the probes: a project manager points one at the cloud metadata address,
at a host outside the egress allow-list, or at a server that redirects or answers
without end. Each is refused before connecting, or bounded."""

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from cutover import actions, probes
from cutover.models import Probe
from tests.cutover.mllp import MllpListener
from tests.egress_support import ConnectionRecord, RecordingServer
from tests.waiting import wait_for

METADATA = "169.254.169.254"


def test_every_probe_kind_refuses_the_metadata_address_without_connecting():
    with ConnectionRecord() as seen:
        outcomes = [
            probes.http_get(f"http://{METADATA}/latest/meta-data/iam/"),
            probes.http_get("http://2852039166/latest/meta-data/"),
            probes.dicom_echo(METADATA, 104, "ANY"),
            probes.dicom_find(METADATA, 104, "ANY"),
            probes.hl7_mllp(METADATA, 2575, timeout=1),
        ]
    assert all(not o.ok and "link-local or metadata" in o.detail for o in outcomes)
    assert not any(host.startswith("169.254.") for host in seen.hosts())


@override_settings(EGRESS_ALLOW="10.0.0.0/8")
def test_a_probe_outside_the_allow_list_never_reaches_its_target():
    with RecordingServer() as server, MllpListener(["AA"]) as listener:
        web = probes.http_get(f"{server.url}/metadata")
        hl7 = probes.hl7_mllp(listener.host, listener.port, timeout=2)
    assert "not in the egress allow-list" in web.detail and not web.ok
    assert "not in the egress allow-list" in hl7.detail and not hl7.ok
    assert server.requests == [] and listener.received == []


def test_an_http_probe_does_not_follow_a_redirect():
    with RecordingServer() as target, RecordingServer(status=302) as first:
        first.headers["Location"] = f"{target.url}/elsewhere"
        outcome = probes.http_get(f"{first.url}/metadata")
    assert not outcome.ok and "HTTP 302" in outcome.detail
    assert len(first.requests) == 1 and target.requests == []


def test_an_http_probe_reads_a_huge_answer_only_up_to_its_cap():
    body = b'{"resourceType": "CapabilityStatement", "pad": "' + b"x" * 5_000_000 + b'"}'
    with RecordingServer(headers={"Content-Type": "application/fhir+json"}, body=body) as server:
        outcome = probes.http_get(f"{server.url}/metadata", max_body=1024)
    assert outcome.ok and outcome.detail.endswith("HTTP 200")  # not parsed past the cap


@pytest.mark.django_db
def test_saving_a_probe_at_the_metadata_address_is_refused(integration):
    plan = actions.create_plan(integration)
    with pytest.raises(ValidationError, match="link-local or metadata"):
        actions.save_probe(
            Probe(plan=plan), {"name": "m", "kind": "http", "url": f"http://{METADATA}/"}
        )
    with pytest.raises(ValidationError, match="link-local or metadata"):
        actions.save_probe(
            Probe(plan=plan), {"name": "d", "kind": "dicom_echo", "host": METADATA, "port": 104,
                               "called_aet": "X"},
        )  # fmt: skip


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_running_a_probe_from_the_api_queues_it_for_a_worker(
    celery_worker, client_for, cast, integration
):
    plan = actions.create_plan(integration)
    probe = plan.probes.get()
    with MllpListener(["AA"]) as listener:
        Probe.objects.filter(pk=probe.pk).update(port=listener.port)
        answer = client_for(cast.pm).post(f"/roadmap/api/probes/{probe.pk}/run/")
        assert answer.status_code == 202 and answer.json()["queued"] is True
        result = wait_for(lambda: probe.results.first())
    assert result.ok and result.trigger == "on demand"
