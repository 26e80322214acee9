"""Connectivity probes against real endpoints: an MLLP listener started here, Orthanc's
DICOM port and its HTTP API."""

from cutover import probes
from devstack.services.base import LOOPBACK, free_port
from tests.cutover.mllp import MllpListener


def test_hl7_probe_succeeds_when_the_listener_acknowledges_with_aa():
    with MllpListener(["AA"]) as listener:
        outcome = probes.hl7_mllp(listener.host, listener.port, timeout=10)
    assert outcome.ok, outcome.detail
    assert "AA" in outcome.detail
    sent = listener.received[0]
    assert str(sent.segment("MSH")(9)).startswith("NMQ^N01")


def test_hl7_probe_fails_clearly_on_an_application_error():
    with MllpListener(["AE"]) as listener:
        outcome = probes.hl7_mllp(listener.host, listener.port, timeout=10)
    assert not outcome.ok
    assert outcome.detail == "HL7 AE (application error): Unknown message type"


def test_hl7_probe_fails_clearly_on_a_reject():
    with MllpListener(["AR"]) as listener:
        outcome = probes.hl7_mllp(listener.host, listener.port, timeout=10)
    assert not outcome.ok and outcome.detail.startswith("HL7 AR (application reject)")


def test_hl7_probe_fails_clearly_when_the_listener_stays_silent():
    with MllpListener(["silence"]) as listener:
        outcome = probes.hl7_mllp(listener.host, listener.port, timeout=1)
    assert not outcome.ok
    assert outcome.detail == f"no acknowledgement from {LOOPBACK}:{listener.port} within 1 s"


def test_hl7_probe_answers_aa_then_ae_then_silence_in_turn():
    with MllpListener(["AA", "AE", "silence"]) as listener:
        results = [probes.hl7_mllp(listener.host, listener.port, timeout=1) for _ in range(3)]
    assert [r.ok for r in results] == [True, False, False]
    assert "AE" in results[1].detail and "no acknowledgement" in results[2].detail


def test_hl7_probe_reports_a_non_hl7_answer():
    with MllpListener(["garbage"]) as listener:
        outcome = probes.hl7_mllp(listener.host, listener.port, timeout=5)
    assert not outcome.ok
    assert "closed the connection" in outcome.detail or "not an HL7" in outcome.detail


def test_hl7_probe_reports_an_unreachable_listener():
    port = free_port()
    outcome = probes.hl7_mllp(LOOPBACK, port, timeout=5)
    assert not outcome.ok and outcome.detail.startswith(
        f"cannot reach MLLP listener {LOOPBACK}:{port}"
    )


def test_an_ack_for_another_message_is_not_accepted():
    sent = probes.hl7_test_message("ABC123")
    ack = sent.create_ack("AA")
    ok, detail = probes.judge_ack(ack, "OTHER")
    assert not ok and "refers to message 'ABC123'" in detail


def test_dicom_echo_and_find_probes_reach_the_legacy_pacs(orthanc_pacs):
    echo = probes.dicom_echo(orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet, "CCTEST")
    assert echo.ok, echo.detail
    find = probes.dicom_find(orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet, "CCTEST")
    assert find.ok, find.detail
    assert "matches today" in find.detail


def test_dicom_echo_probe_fails_on_a_closed_port():
    outcome = probes.dicom_echo(LOOPBACK, free_port(), "NOBODY")
    assert not outcome.ok and "failed" in outcome.detail


def test_http_probe_expects_the_status_of_the_health_endpoint(orthanc_pacs):
    url = orthanc_pacs.service.url
    assert probes.http_get(f"{url}/system").ok
    missing = probes.http_get(f"{url}/no-such-endpoint")
    assert not missing.ok and "HTTP 404" in missing.detail
    down = probes.http_get(f"http://{LOOPBACK}:{free_port()}/metadata", timeout=3)
    assert not down.ok and "ConnectionError" in down.detail
