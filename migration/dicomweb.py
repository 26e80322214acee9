"""A minimal DICOMweb client: STOW-RS of Part-10 instances and WADO-RS of one instance.

Both speak `multipart/related; type="application/dicom"`. WADO-RS asks for
`transfer-syntax=*` so the server returns each instance as stored instead of transcoding
it to Explicit VR Little Endian, which would defeat a byte-level comparison.
"""

import json
import secrets
from email.message import Message

import requests

DICOM_PART = "application/dicom"
STOW_ACCEPT = "application/dicom+json"
WADO_ACCEPT = f'multipart/related; type="{DICOM_PART}"; transfer-syntax=*'
FAILED_SOP_SEQUENCE = "00081198"
STOW_ANSWER_LIMIT = 16 * 1024 * 1024
WADO_LIMIT = 2 * 1024**3 + 1024 * 1024


class DicomWebError(RuntimeError):
    """The DICOMweb server refused a request or rejected some instances."""


def new_session():
    """A session that ignores proxy variables. Every request here passes
    `allow_redirects=False`: a redirect would take the request, and its Authorization
    header, past the egress check."""
    session = requests.Session()
    session.trust_env = False
    return session


def _session(session):
    return new_session() if session is None else session


def get_capped(session, url, headers, max_bytes, timeout=60):
    """(status, body) of a GET that follows no redirect and reads at most `max_bytes`;
    a longer body is a DicomWebError, not a silent truncation."""
    with session.get(
        url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
    ) as response:
        return response.status_code, read_capped(response, max_bytes)


def read_capped(response, max_bytes):
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise DicomWebError(f"the answer exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def multipart_body(parts, boundary):
    """Join Part-10 byte strings into one multipart/related body."""
    chunks = []
    for data in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {DICOM_PART}\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def stow(base_url, datasets_bytes, headers=None, session=None, timeout=120):
    """POST instances to `{base_url}/studies`; return the server's JSON answer.

    Raises DicomWebError on an HTTP error or when the answer lists failed instances.
    """
    boundary = f"cc-{secrets.token_hex(16)}"
    content_type = f'multipart/related; type="{DICOM_PART}"; boundary={boundary}'
    request_headers = {"Content-Type": content_type, "Accept": STOW_ACCEPT, **(headers or {})}
    body = multipart_body(datasets_bytes, boundary)
    response = _session(session).post(
        f"{base_url.rstrip('/')}/studies",
        data=body,
        headers=request_headers,
        timeout=timeout,
        allow_redirects=False,
        stream=True,
    )
    with response:
        content = read_capped(response, STOW_ANSWER_LIMIT)
    if response.status_code >= 300:
        raise DicomWebError(f"STOW-RS answered {response.status_code}")
    try:
        answer = json.loads(content) if content else {}
    except ValueError as exc:
        raise DicomWebError("STOW-RS answered something that is not JSON") from exc
    failed = answer.get(FAILED_SOP_SEQUENCE, {}).get("Value", [])
    if failed:
        raise DicomWebError(f"STOW-RS rejected {len(failed)} instance(s)")
    return answer


def boundary_of(content_type):
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not boundary:
        raise DicomWebError(f"no multipart boundary in {content_type!r}")
    return boundary.encode()


def split_multipart(body, content_type):
    """The payloads of a multipart body, in order (part headers dropped)."""
    delimiter = b"--" + boundary_of(content_type)
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        _headers, _, payload = chunk.partition(b"\r\n\r\n")
        parts.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    return parts


def wado_instance(
    base_url, study, series, sop, headers=None, session=None, timeout=120, max_bytes=WADO_LIMIT
):
    """GET one instance by WADO-RS; return its Part-10 bytes (at most `max_bytes`)."""
    url = f"{base_url.rstrip('/')}/studies/{study}/series/{series}/instances/{sop}"
    request_headers = {"Accept": WADO_ACCEPT, **(headers or {})}
    response = _session(session).get(
        url, headers=request_headers, timeout=timeout, allow_redirects=False, stream=True
    )
    with response:
        content = read_capped(response, max_bytes)
    if response.status_code >= 300:
        raise DicomWebError(f"WADO-RS answered {response.status_code} for instance {sop}")
    parts = split_multipart(content, response.headers.get("Content-Type", ""))
    if len(parts) != 1:
        raise DicomWebError(f"WADO-RS returned {len(parts)} parts for instance {sop}")
    return parts[0]
