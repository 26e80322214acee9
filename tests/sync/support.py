"""Helpers of the hybrid-period tests: tiny studies dated today, a series added to a
study, HL7 messages and an MLLP client."""

import socket
from datetime import date

from devstack import synthetic
from sync import hl7msg

STUDY_LEVEL = ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate",
               "PatientSex", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
               "ReferringPhysicianName", "StudyDescription")  # fmt: skip


def tiny_studies(count, seed, modality="CT", patient_id=None, day=None, instances=1, **shape):
    """{StudyInstanceUID: [datasets]} of `count` one-series studies of 16×16 pixels."""
    day = day or date.today()
    found = {}
    for datasets in synthetic.iter_studies(
        studies=count, instances=instances, rows=16, cols=16, modality=modality, seed=seed,
        date_from=shape.pop("date_from", day), date_to=shape.pop("date_to", day), **shape,
    ):  # fmt: skip
        if patient_id is not None:
            for ds in datasets:
                ds.PatientID = patient_id
        found[str(datasets[0].StudyInstanceUID)] = datasets
    return found


def extra_series(datasets, seed, instances=2):
    """A new series for the study of `datasets` (same study-level attributes)."""
    template = datasets[0]
    (new,) = synthetic.iter_studies(
        studies=1, instances=instances, rows=16, cols=16, seed=seed, modality=template.Modality
    )
    for ds in new:
        for keyword in STUDY_LEVEL:
            if keyword in template:
                setattr(ds, keyword, template.get(keyword))
    return new


def upload(orthanc, studies):
    for datasets in studies.values():
        for ds in datasets:
            orthanc.upload(synthetic.dataset_bytes(ds))


def siu(control_id, patient_id, issuer="HOSP", modality="CT", when="20991231093000"):
    """An SIU^S12 (new appointment) for one patient, HL7 v2.5."""
    return "\r".join([
        f"MSH|^~\\&|RIS|HOSP|CMDCENTER|MIGRATION|20261207010000||SIU^S12|{control_id}|P|2.5",
        f"SCH|APT{control_id}|APT{control_id}||||||||30|min|^^30^{when}",
        f"PID|1||{patient_id}^^^{issuer}^MR||TEST^PATIENT",
        f"AIS|1||{modality}^{modality} EXAM|{when}",
    ]) + "\r"  # fmt: skip


def send(port, text, host="127.0.0.1", timeout=30):
    """One MLLP exchange: the acknowledgement as parsed HL7 segments {name: fields}."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(hl7msg.frame(text) if isinstance(text, str) else text)
        data = b""
        while not data.endswith(hl7msg.EB + hl7msg.CR):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    text = data.strip(hl7msg.SB + hl7msg.EB + hl7msg.CR).decode()
    return {line.split("|")[0]: line.split("|") for line in text.split("\r") if line}
