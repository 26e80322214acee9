"""The round-trip probe's test studies and legs, as plain code (hybrid/actions.py keeps
the record and publishes).

The test studies are probe instances (dicomnet/probe.py) of a test patient that no
hospital has ("ZZPROBE^ROUNDTRIP", "CC-PROBE-RT"): never real patient data. They are
dated today, so the bridge's scan of recent cloud studies sees the one sent to the cloud.
"""

import time
from dataclasses import dataclass

from django.utils import timezone

from dicomnet.probe import part10_bytes, probe_instance

TEST_PATIENT = ("ZZPROBE^ROUNDTRIP", "CC-PROBE-RT")
POLL_SECONDS = 0.5


@dataclass
class Leg:
    ok: bool
    seconds: float | None
    detail: str


def test_study(salt):
    """(StudyInstanceUID, [Part-10 bytes]): one small instance of a test patient (the
    probe instance of `dicomnet.probe`), dated today, with UIDs of its own; `salt` makes
    the accession number differ per probe and leg."""
    ds = probe_instance()
    ds.PatientName, ds.PatientID = TEST_PATIENT
    ds.StudyDate = ds.SeriesDate = timezone.localdate().strftime("%Y%m%d")
    ds.StudyTime = timezone.localtime().strftime("%H%M%S")
    ds.AccessionNumber = f"CCRT{salt % 10**12:012d}"
    ds.StudyDescription = "ROUND-TRIP PROBE"
    return str(ds.StudyInstanceUID), [part10_bytes(ds)]


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
