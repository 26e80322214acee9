"""Connectivity probes for integrations: DICOM C-ECHO / C-FIND, HL7 v2 over MLLP, HTTP(S)/FHIR.

Each probe takes plain arguments and returns an `Outcome(ok, detail, ms)`; it never
raises for a network problem, it says what went wrong. Every target passes the egress
policy (core/egress.py) first, so a refused host is never contacted; HTTP
follows no redirect and reads at most `max_body` bytes. The HL7 probe sends a test
message with the `hl7` library's MLLP streams and requires an AA (or CA) acknowledgement
whose MSA-2 echoes the message control id.
"""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import hl7
import requests
from hl7.mllp import InvalidBlockError, open_hl7_connection

from core import egress
from dicomnet import scu as dicomnet

DEFAULT_TIMEOUT = 10.0
MLLP_MAX_BYTES = 64 * 1024  # a longer answer is a ValueError: "not an HL7 message"
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


def _timed(func, host=None, port=None, url=None):
    """Run `func() -> (ok, detail)` and time it, once the egress policy allows the
    target; a refusal or an unexpected exception is a failure."""
    started = time.perf_counter()
    try:
        _allowed(host, port, url)
        ok, detail = func()
    except egress.EgressError as exc:
        ok, detail = False, str(exc)
    except Exception as exc:  # a probe reports, it does not crash its caller
        ok, detail = False, f"{type(exc).__name__}"
    return Outcome(ok, detail[:500], round((time.perf_counter() - started) * 1000, 1))


def _allowed(host, port, url):
    policy = egress.current_policy()
    if url is not None:
        egress.check_url(url, policy)
    else:
        egress.check_host(host, port, policy)


def dicom_echo(host, port, called_aet, calling_aet="CCPROBE"):
    def run():
        if dicomnet.echo(host, port, called_aet, calling_aet):
            return True, f"C-ECHO to {called_aet}@{host}:{port} succeeded"
        return False, f"C-ECHO to {called_aet}@{host}:{port} failed: no association or no Success"

    return _timed(run, host, port)


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

    return _timed(run, host, port)


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
    connecting = open_hl7_connection(host, port, limit=MLLP_MAX_BYTES)
    reader, writer = await asyncio.wait_for(connecting, timeout)
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

    return _timed(run, host, port)


def http_get(url, timeout=DEFAULT_TIMEOUT, expect_status=200, max_body=64 * 1024):
    """GET a health or FHIR capability endpoint (`[base]/metadata`) and expect a status.
    A redirect is reported as its status, not followed."""
    shown = egress.mask_url(url)

    def run():
        try:
            status, content_type, body = _get(url, timeout, max_body)
        except requests.Timeout:
            return False, f"GET {shown}: no answer within {timeout:g} s"
        except requests.RequestException as exc:
            return False, f"GET {shown} failed: {type(exc).__name__}"
        detail = f"GET {shown}: HTTP {status}"
        kind = _resource_type(content_type, body)
        if kind:
            detail += f" ({kind})"
        return status == expect_status, detail

    return _timed(run, url=url)


def _get(url, timeout, max_body):
    """(status, content type, the first `max_body` bytes of the body)."""
    session = requests.Session()
    session.trust_env = False
    with session.get(
        url,
        timeout=timeout,
        headers={"Accept": "application/json"},
        allow_redirects=False,
        stream=True,
    ) as response:
        body = response.raw.read(max_body + 1, decode_content=True)
        return response.status_code, response.headers.get("Content-Type", ""), body


def _resource_type(content_type, body):
    """A FHIR answer's resourceType; "" for a body that is not (whole) JSON."""
    if "json" not in content_type:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    return str(parsed.get("resourceType", ""))[:60] if isinstance(parsed, dict) else ""
