"""Connectivity probes for integrations: DICOM C-ECHO / C-FIND, HL7 v2 over MLLP, HTTP(S)/FHIR.

Each probe takes plain arguments and returns an `Outcome(ok, detail, ms)`; it never
raises for a network problem, it says what went wrong. The HL7 probe sends a test
message with the `hl7` library's MLLP streams and requires an AA (or CA) acknowledgement
whose MSA-2 echoes the message control id.
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import hl7
import requests
from hl7.mllp import InvalidBlockError, open_hl7_connection

from commandcenter.services import dicomnet

DEFAULT_TIMEOUT = 10.0
ACK_TEXT = {
    "AA": "application accept",
    "CA": "commit accept",
    "AE": "application error",
    "AR": "application reject",
    "CE": "commit error",
    "CR": "commit reject",
}
ACCEPTED = {"AA", "CA"}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str
    ms: float


def _timed(func):
    """Run `func() -> (ok, detail)` and time it; an unexpected exception is a failure."""
    started = time.perf_counter()
    try:
        ok, detail = func()
    except Exception as exc:  # a probe reports, it does not crash its caller
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Outcome(ok, detail[:500], round((time.perf_counter() - started) * 1000, 1))


def dicom_echo(host, port, called_aet, calling_aet="CCPROBE"):
    def run():
        if dicomnet.echo(host, port, called_aet, calling_aet):
            return True, f"C-ECHO to {called_aet}@{host}:{port} succeeded"
        return False, f"C-ECHO to {called_aet}@{host}:{port} failed: no association or no Success"

    return _timed(run)


def dicom_find(host, port, called_aet, calling_aet="CCPROBE"):
    """A study-level C-FIND for today's date: proves query works without listing the PACS."""

    def run():
        query = dicomnet.study_query(StudyDate=time.strftime("%Y%m%d"))
        try:
            matches = dicomnet.find(host, port, called_aet, query, calling_aet)
        except dicomnet.FindTruncatedError as exc:
            matches = exc.matches
        except dicomnet.DicomNetError as exc:
            return False, f"C-FIND on {called_aet}@{host}:{port} failed: {exc}"
        return True, f"C-FIND on {called_aet}@{host}:{port} answered ({len(matches)} matches today)"

    return _timed(run)


def hl7_test_message(control_id, sending=("CMDCENTER", "MIGRATION"), receiving=("", "")):
    """A network-management query (NMQ^N01): asks for an acknowledgement, changes nothing."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    msh = [
        "MSH",
        "^~\\&",
        sending[0],
        sending[1],
        receiving[0],
        receiving[1],
        stamp,
        "",
        "NMQ^N01^NMQ_N01",
        control_id,
        "P",
        "2.5.1",
    ]
    return hl7.parse("|".join(msh) + "\rNCK|" + stamp)


async def _exchange(host, port, message, timeout):
    reader, writer = await asyncio.wait_for(open_hl7_connection(host, port), timeout)
    try:
        writer.writemessage(message)
        await writer.drain()
        return await asyncio.wait_for(reader.readmessage(), timeout)
    finally:
        writer.close()


def _run(coroutine):
    """asyncio.run, also from a thread whose event loop is already running (an async view,
    a Playwright session): then the coroutine runs in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def judge_ack(ack, control_id):
    """(ok, detail) for an acknowledgement message."""
    try:
        msa = ack.segment("MSA")
    except KeyError:
        return False, "the answer has no MSA segment: not an acknowledgement"
    code = str(msa(1)).upper()
    text = str(msa(3)) if len(msa) > 3 else ""
    name = ACK_TEXT.get(code, "unknown acknowledgement code")
    answered = str(msa(2))
    if answered != control_id:
        return False, f"acknowledgement {code} refers to message {answered!r}, not {control_id!r}"
    if code in ACCEPTED:
        return True, f"HL7 {code} ({name})"
    return False, f"HL7 {code} ({name})" + (f": {text}" if text else "")


def hl7_mllp(host, port, timeout=DEFAULT_TIMEOUT, receiving=("", "")):
    """Send a test message over MLLP and require an AA/CA acknowledgement within `timeout`."""

    def run():
        control_id = hl7.generate_message_control_id()
        message = hl7_test_message(control_id, receiving=receiving)
        try:
            ack = _run(_exchange(host, port, message, timeout))
        except TimeoutError:
            return False, f"no acknowledgement from {host}:{port} within {timeout:g} s"
        except (ConnectionError, OSError) as exc:
            return False, f"cannot reach MLLP listener {host}:{port}: {exc}"
        except asyncio.IncompleteReadError:
            return False, f"{host}:{port} closed the connection without acknowledging"
        except (InvalidBlockError, ValueError, hl7.ParseException) as exc:
            return False, f"{host}:{port} answered something that is not an HL7 message: {exc}"
        return judge_ack(ack, control_id)

    return _timed(run)


def http_get(url, timeout=DEFAULT_TIMEOUT, expect_status=200):
    """GET a health or FHIR capability endpoint (`[base]/metadata`) and expect a status."""

    def run():
        try:
            response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        except requests.Timeout:
            return False, f"GET {url}: no answer within {timeout:g} s"
        except requests.RequestException as exc:
            return False, f"GET {url} failed: {type(exc).__name__}"
        detail = f"GET {url}: HTTP {response.status_code}"
        kind = _resource_type(response)
        if kind:
            detail += f" ({kind})"
        return response.status_code == expect_status, detail

    return _timed(run)


def _resource_type(response):
    if "json" not in response.headers.get("Content-Type", ""):
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    return body.get("resourceType", "") if isinstance(body, dict) else ""
