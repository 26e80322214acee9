"""HL7 v2 over MLLP: what a message says, and the listener's answer to each message (AA
for one it stored, AE/AR with the reason otherwise), over a real socket; the patient
never reaches the logs."""

import logging

import pytest

from sync import hl7msg
from sync.models import Appointment
from tests.sync import support

PATIENT = "PAT-778899"


def test_an_siu_s12_names_the_patient_issuer_modality_time_and_placer():
    parsed = hl7msg.parse(support.siu("C1", PATIENT, issuer="HOSP", modality="MR"))
    assert (parsed.message_type, parsed.control_id) == ("SIU^S12", "C1")
    assert (parsed.patient_id, parsed.issuer, parsed.modality) == (PATIENT, "HOSP", "MR")
    assert parsed.placer == "APTC1"
    assert parsed.scheduled_at.strftime("%Y-%m-%d %H:%M") == "2099-12-31 09:30"


@pytest.mark.parametrize(
    ("kind", "segments"),
    [
        (
            "ORM^O01",
            ["ORC|NW|ORD1", "OBR|1|ORD1||CTHEAD^CT HEAD|||20991231080000" + "|" * 17 + "CT"],
        ),
        ("OMI^O23", ["ORC|NW|ORD2", "TQ1|1||||||20991231080000", "IPC|ACC2|PROC|STUDY|SPS|MR"]),
    ],
)
def test_orders_are_read_too(kind, segments):
    text = "\r".join(
        [f"MSH|^~\\&|RIS|H|CC|M|20261207||{kind}|X9|P|2.5", f"PID|1||{PATIENT}^^^HOSP^MR"]
        + segments
    )
    parsed = hl7msg.parse(text)
    assert parsed.message_type == kind and parsed.patient_id == PATIENT
    assert parsed.modality in ("CT", "MR") and parsed.scheduled_at is not None


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        ("hello", "AR", "must start with an MSH segment"),
        ("MSH|^~\\&|RIS|H|CC|M|20261207||ADT^A01|X1|P|2.5\rPID|1||1^^^H", "AR", "ADT^A01"),
        ("MSH|^~\\&|RIS|H|CC|M|20261207||SIU^S12||P|2.5\rPID|1||1^^^H", "AR", "MSH-10"),
        ("MSH|^~\\&|RIS|H|CC|M|20261207||SIU^S12|X2|P|2.5\rSCH|A", "AE", "PID-3"),
        ("MSH|^~\\&|RIS|H|CC|M|20261207||SIU^S12|X3|P|2.5\rSCH|A||||||||||^^^notadate\r"
         "PID|1||9^^^H", "AE", "date/time"),
    ],
)  # fmt: skip
def test_what_cannot_be_taken_is_refused_with_a_reason(text, code, reason):
    with pytest.raises(hl7msg.RefusedError) as refused:
        hl7msg.parse(text)
    assert refused.value.code == code and reason in refused.value.reason


@pytest.mark.django_db(transaction=True)
def test_the_listener_acks_each_message_and_keeps_going_after_malformed_ones(mllp_listener, caplog):
    caplog.set_level(logging.DEBUG)
    good = support.send(mllp_listener.port, support.siu("OK1", PATIENT))
    assert good["MSA"][1:3] == ["AA", "OK1"]
    stored = Appointment.objects.get(control_id="OK1")
    assert stored.patient_id == PATIENT and stored.message_type == "SIU^S12"

    no_pid = "MSH|^~\\&|RIS|H|CC|M|20261207||SIU^S12|BAD1|P|2.5\rSCH|A1"
    bad = support.send(mllp_listener.port, no_pid)
    assert bad["MSA"][1:3] == ["AE", "BAD1"] and "PID-3" in bad["MSA"][3]
    assert "PID-3" in bad["ERR"][-1]

    garbage = support.send(mllp_listener.port, b"\x0bGET / HTTP/1.1\r\n\x1c\r")
    assert garbage["MSA"][1] == "AR" and "MSH" in garbage["MSA"][3]

    again = support.send(mllp_listener.port, support.siu("OK2", PATIENT))
    assert again["MSA"][1:3] == ["AA", "OK2"]
    assert Appointment.objects.count() == 2
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert PATIENT not in logged and "TEST^PATIENT" not in logged
    assert "BAD1" in logged  # the refusal is logged, by control id and reason
