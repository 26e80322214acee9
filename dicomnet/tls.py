"""DICOM TLS (PS3.15 B.1): the TLS contexts of our associations to a PACS and of this
host's Storage SCP, from files named by path, and plain-language reasons when a handshake
fails (which side refused whom)."""

import ssl
from dataclasses import dataclass
from pathlib import Path

from dicomnet.errors import DicomNetError


class TlsError(DicomNetError):
    """TLS is misconfigured or a handshake failed; the message says which and why."""


@dataclass(frozen=True)
class TlsFiles:
    """The CA that signs the peer's certificate, and our own certificate and key (PEM
    paths; blank: the system's CAs, no client certificate)."""

    ca: str = ""
    cert: str = ""
    key: str = ""

    @classmethod
    def of(cls, source):
        return cls(source.tls_ca_file, source.tls_cert_file, source.tls_key_file)


def _check_files(files):
    for label, path in (("CA", files.ca), ("certificate", files.cert), ("key", files.key)):
        if path and not Path(path).is_file():
            raise TlsError(f"TLS {label} file {path} does not exist")
    if bool(files.cert) != bool(files.key):
        raise TlsError("TLS needs both a certificate and its key (or neither)")


def client_context(files):
    """An SSLContext for an association to a PACS: verifies its certificate against the
    CA (and its host name), presents our certificate when one is named."""
    _check_files(files)
    try:
        context = ssl.create_default_context(cafile=files.ca or None)
        if files.cert:
            context.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"TLS files cannot be loaded: {exc}") from None
    return context


def server_context(files, require_client=True):
    """An SSLContext for this host's Storage SCP: our certificate, and the CA whose
    client certificates (the PACS's) we accept."""
    _check_files(files)
    if not files.cert:
        raise TlsError("the Storage SCP needs a TLS certificate and key to accept TLS")
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=files.ca or None)
        context.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"TLS files cannot be loaded: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED if require_client else ssl.CERT_OPTIONAL
    return context


def handshake_reason(exc, where):
    """What a failed TLS handshake means, in words (no secrets)."""
    text = str(getattr(exc, "reason", "") or exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = getattr(exc, "verify_message", "") or text
        return (
            f"TLS: the certificate of {where} was refused ({detail}): is it signed by the "
            f"CA named in the source's settings?"
        )
    if "ALERT" in text.upper() or "alert" in text:
        return (
            f"TLS: {where} refused our client certificate ({text}): does the PACS trust "
            f"the CA that signed it?"
        )
    return f"TLS handshake with {where} failed ({text})"
