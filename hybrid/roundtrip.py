"""The round-trip probe's test studies and legs, as plain code (hybrid/actions.py keeps
the record and publishes).

The test studies are synthetic (commandcenter/synthetic.py) with a test patient that no
hospital has ("ZZPROBE^ROUNDTRIP", "CC-PROBE-RT"): never real patient data. They are
dated today, so the bridge's scan of recent cloud studies sees the one sent to the cloud.
"""

import time
from dataclasses import dataclass

from django.utils import timezone

TEST_PATIENT = ("ZZPROBE^ROUNDTRIP", "CC-PROBE-RT")
POLL_SECONDS = 0.5


@dataclass
class Leg:
    ok: bool
    seconds: float | None
    detail: str


def test_study(salt):
    """(StudyInstanceUID, [Part-10 bytes]): one small synthetic instance of a test patient,
    dated today, with UIDs of its own (`salt` differs per probe and leg)."""
    from devstack import synthetic

    today = timezone.localdate()
    (datasets,) = synthetic.iter_studies(
        rows=8, cols=8, modality="OT", seed=salt, date_from=today, date_to=today
    )
    for ds in datasets:
        ds.PatientName, ds.PatientID = TEST_PATIENT
        ds.AccessionNumber = f"CCRT{salt % 10**12:012d}"
        ds.StudyDescription = "ROUND-TRIP PROBE"
    uid = str(datasets[0].StudyInstanceUID)
    return uid, [synthetic.dataset_bytes(ds) for ds in datasets]


def wait(check, timeout):
    """Poll `check()` -> (done, ok, detail) every POLL_SECONDS until done or `timeout`
    seconds; returns (ok, detail, seconds waited) and (False, last detail, None) at the
    timeout."""
    started = time.monotonic()
    detail = ""
    while True:
        done, ok, detail = check()
        elapsed = time.monotonic() - started
        if done:
            return ok, detail, elapsed
        if elapsed > timeout:
            return False, detail, None
        time.sleep(POLL_SECONDS)
