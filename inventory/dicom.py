"""DIMSE for the inventory: C-ECHO with a plain-language verdict, C-FIND sessions and
sample C-GETs.

A crawl asks thousands of small questions, so a `FindSession` keeps one association open
for all of them, on the migration engine's lean DIMSE layer (`migration.cget`: its
socket sets TCP_NODELAY, one thread decodes the responses). The pynetdicom associations
(C-ECHO, the sample C-GET) set TCP_NODELAY and TCP_QUICKACK: without them each exchange
waits on Nagle's algorithm meeting a delayed ACK, about 90 ms on loopback.
"""

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    RLELossless,
)
from pynetdicom import AE, StoragePresentationContexts, _config, build_role, evt
from pynetdicom.dsutils import decode, encode
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)
from pynetdicom.status import code_to_category
from pynetdicom.transport import AssociationSocket

from dicomnet.scu import DicomNetError
from inventory import syntaxes
from inventory import tls as dicom_tls
from migration import cget

# pynetdicom formats every identifier for its debug log by default: patient names in logs,
# and a third of a crawl's CPU time. Neither is wanted.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False

FIND_MODEL = StudyRootQueryRetrieveInformationModelFind
PATIENT_MODEL = PatientRootQueryRetrieveInformationModelFind
GET_MODEL = StudyRootQueryRetrieveInformationModelGet
SAMPLE_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]


class PacsError(DicomNetError):
    """The PACS could not be reached or refused us; the message says how, in plain words."""


@dataclass(frozen=True)
class Peer:
    """Where a PACS listens and who we say we are."""

    host: str
    port: int
    called_aet: str
    calling_aet: str
    tls: bool = False
    timeout: float = 30.0
    tls_files: dicom_tls.TlsFiles = dicom_tls.TlsFiles()

    @classmethod
    def of(cls, source, timeout=30.0):
        return cls(
            source.host, source.port, source.ae_title, source.calling_ae_title, source.tls,
            timeout, dicom_tls.TlsFiles.of(source),
        )  # fmt: skip

    def tls_args(self):
        """pynetdicom's (SSLContext, server name), or None without TLS; PacsError when
        the TLS files are wrong."""
        if not self.tls:
            return None
        try:
            return (dicom_tls.client_context(self.tls_files), self.host)
        except dicom_tls.TlsError as exc:
            raise PacsError(f"{self}: {exc}") from None

    def __str__(self):
        return f"{self.called_aet}@{self.host}:{self.port}"


class _QuickSocket(AssociationSocket):
    """An association socket that acknowledges at once (see the module docstring)."""

    def recv(self, nr_bytes):
        with contextlib.suppress(OSError, AttributeError):
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return super().recv(nr_bytes)


class _QuickAE(AE):
    def _create_socket(self, assoc, address, tls_args):
        sock = _QuickSocket(assoc, address=address)
        sock.tls_args = tls_args
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    ms: float | None
    message: str


def check_reachable(peer):
    """Raise PacsError unless a TCP connection to the peer opens (refused, timeout, DNS)
    and, with TLS, the handshake passes (pynetdicom would only say the association
    closed)."""
    try:
        with socket.create_connection((peer.host, peer.port), timeout=min(peer.timeout, 10)) as s:
            _check_handshake(peer, s)
            return
    except ConnectionRefusedError:
        raise PacsError(f"{peer}: connection refused (nothing listens on that port)") from None
    except TimeoutError:
        raise PacsError(f"{peer}: no answer within {min(peer.timeout, 10):g} s (timeout)") from None
    except socket.gaierror as exc:
        raise PacsError(f"{peer}: unknown host ({exc.strerror})") from None
    except OSError as exc:
        raise PacsError(f"{peer}: cannot connect ({exc.strerror or exc})") from None


def _check_handshake(peer, sock):
    args = peer.tls_args()
    if args is None:
        return
    try:
        with args[0].wrap_socket(sock, server_hostname=args[1]) as secured:
            secured.settimeout(0.5)  # TLS 1.3: a refused client certificate shows on first read
            with contextlib.suppress(TimeoutError):
                secured.recv(1)
    except ssl.SSLError as exc:
        raise PacsError(dicom_tls.handshake_reason(exc, str(peer))) from None


def associate(peer, contexts, ext_neg=None, handlers=None):
    """An established association, or PacsError with the PACS's own reason."""
    check_reachable(peer)
    ae = _QuickAE(ae_title=peer.calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = peer.timeout
    ae.connection_timeout = min(peer.timeout, 10)
    for abstract, proposed in contexts:
        ae.add_requested_context(abstract, proposed)
    replies = []
    handlers = [*(handlers or []), (evt.EVT_ACSE_RECV, lambda event: replies.append(event))]
    tls_args = peer.tls_args()
    start = time.monotonic()
    assoc = ae.associate(
        peer.host,
        peer.port,
        ae_title=peer.called_aet,
        ext_neg=ext_neg,
        evt_handlers=handlers,
        tls_args=tls_args,
    )
    if assoc.is_established:
        _requeue_stray_responses(assoc)
        return assoc
    raise PacsError(_why_not_established(peer, assoc, replies, time.monotonic() - start))


def _requeue_stray_responses(assoc):
    """Give back a response that pynetdicom's reactor thread took off the queue.

    Between two operations on one association the reactor may wake just as the next
    request is sent and take its first response, which pynetdicom then drops ("Received
    unexpected C-FIND service message") while the sender waits out the DIMSE timeout.
    Back-to-back C-FINDs hit that window now and then; putting the message back at the
    head of the queue closes it.
    """
    serve = assoc._serve_request

    def serve_requests_only(msg, context_id):
        if msg.is_valid_request:
            return serve(msg, context_id)
        queue = assoc.dimse.msg_queue
        with queue.mutex:
            queue.queue.appendleft((context_id, msg))
            queue.not_empty.notify()
        return None

    assoc._serve_request = serve_requests_only


def _why_not_established(peer, assoc, replies, elapsed):
    if assoc.is_rejected:
        reason = _rejection_reason(replies)
        return f"{peer}: association rejected ({reason})"
    if elapsed >= peer.timeout * 0.9:
        return f"{peer}: no answer to the association request within {peer.timeout:g} s (timeout)"
    if assoc.is_aborted:
        return f"{peer}: association aborted by the PACS"
    return f"{peer}: no association (the connection closed)"


def _rejection_reason(replies):
    for event in replies:
        primitive = getattr(event, "primitive", None)
        reason = getattr(primitive, "reason_str", None)
        if reason:
            return f"{primitive.result_str}, {primitive.source_str}: {reason}"
    return "no reason given"


def echo(peer):
    """C-ECHO with the round-trip time; never raises for network trouble."""
    start = time.perf_counter()
    try:
        assoc = associate(peer, [(Verification, None)])
    except PacsError as exc:
        return EchoResult(False, None, str(exc))
    try:
        status = assoc.send_c_echo()
        ms = round((time.perf_counter() - start) * 1000, 1)
    finally:
        assoc.release()
    if status and status.Status == 0x0000:
        return EchoResult(True, ms, f"{peer} answered C-ECHO in {ms:g} ms")
    code = f"0x{status.Status:04X}" if status else "no response"
    return EchoResult(False, None, f"{peer}: C-ECHO failed ({code})")


class _Session:
    """One association kept open for many operations; closed on exit."""

    def __init__(self, peer):
        self.peer = peer
        self.assoc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.assoc is not None and self.assoc.is_established:
            with contextlib.suppress(Exception):
                self.assoc.release()
        self.assoc = None


class FindSession:
    """C-FINDs over one kept-open association on the engine's lean DIMSE layer
    (`migration.cget`: one thread reads the socket, no per-PDU machinery), re-opened once
    if the PACS drops it. One association at a time, so the crawl never holds more than
    one of the source's association slots; switching information model (Study Root,
    Patient Root) closes the other first.

    `find(query, model=FIND_MODEL)` returns `(matches, truncated)`: truncated is True when
    the PACS ended with Cancel (Orthanc's LimitFindResults). `pause` seconds pass before
    each query (the source's C-FIND pause).
    """

    def __init__(self, peer, pause=0.0):
        self.peer = peer
        self.pause = pause
        self.queries = 0
        self.model = None
        self._stack = None
        self._assoc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        stack, self._stack, self._assoc, self.model = self._stack, None, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()

    def _association(self, model):
        if self._assoc is not None and self.model == model:
            return self._assoc
        self.close()
        check_reachable(self.peer)
        tls_args = self.peer.tls_args()
        stack = contextlib.ExitStack()
        try:
            self._assoc = stack.enter_context(
                cget.association(
                    self.peer.host, self.peer.port, self.peer.calling_aet, self.peer.called_aet,
                    [], self.peer.timeout, min(self.peer.timeout, 10), model=model,
                    tls=tls_args[0] if tls_args else None,
                )
            )  # fmt: skip
        except cget.HandshakeError as exc:
            stack.close()
            raise PacsError(dicom_tls.handshake_reason(exc.error, str(self.peer))) from None
        except cget.RejectedError as exc:
            stack.close()
            raise PacsError(f"{self.peer}: association rejected ({exc})") from None
        except (cget.RefusedError, cget.DroppedError, OSError) as exc:
            stack.close()
            raise PacsError(f"{self.peer}: no association ({exc})") from None
        self._stack, self.model = stack, model
        return self._assoc

    def find(self, query, model=FIND_MODEL):
        if self.pause:
            time.sleep(self.pause)
        self.queries += 1
        for _attempt in range(2):
            try:
                return self._find(query, model)
            except (cget.DroppedError, OSError):
                self._drop()
        raise PacsError(
            f"{self.peer}: the PACS ended the C-FIND without an answer twice (does it let "
            f"{self.peer.calling_aet} query?)"
        )

    def _drop(self):
        """Forget a broken association without the release handshake it cannot do."""
        if self._assoc is not None:
            with contextlib.suppress(Exception):
                self._assoc.abort()
        self.close()

    def _find(self, query, model):
        assoc = self._association(model)
        found, status = cget.c_find_status(assoc, encode(query, True, True))
        category = code_to_category(status)
        if category not in ("Success", "Cancel"):
            raise PacsError(f"{self.peer}: C-FIND failed (status 0x{status:04X})")
        matches = [decode(BytesIO(match), True, True) for match in found]
        return matches, category == "Cancel"


class GetSession(_Session):
    """C-GETs of single sample instances over one association per SOP class.

    When the instance's SOP class is known (the C-FIND gave it), each syntax an archive
    may hold gets a presentation context of its own (`inventory.syntaxes`), so the PACS
    sends the instance as it stores it and the sample records that syntax; otherwise the
    SOP classes of StoragePresentationContexts are offered with the common syntaxes.
    `sample()` returns its SOP class, transfer syntax, character set and size.
    """

    def __init__(self, peer):
        super().__init__(peer)
        self.received = []
        self.sop_class = None

    def _association(self, sop_class=""):
        if self.assoc is not None and self.sop_class != sop_class:
            self.close()
        if self.assoc is None or not self.assoc.is_established:
            contexts = [(GET_MODEL, None)]
            if sop_class:
                contexts += syntaxes.contexts([sop_class])
            else:
                contexts += [
                    (cx.abstract_syntax, SAMPLE_SYNTAXES) for cx in StoragePresentationContexts
                ]
            contexts = contexts[:128]
            classes = dict.fromkeys(abstract for abstract, _ in contexts[1:])
            roles = [build_role(abstract, scp_role=True) for abstract in classes]
            handlers = [(evt.EVT_C_STORE, self._on_store)]
            self.assoc = associate(self.peer, contexts, ext_neg=roles, handlers=handlers)
            self.sop_class = sop_class
        return self.assoc

    def _on_store(self, event):
        ds = event.dataset
        self.received.append(
            {
                "sop_class": str(event.context.abstract_syntax),
                "transfer_syntax": str(event.context.transfer_syntax),
                "charset": _charset_of(ds),
                "bytes": len(event.request.DataSet.getvalue()),
                "values": {keyword: _stored_text(ds, keyword) for keyword in STORED_TEXT},
            }
        )
        return 0x0000

    def sample(self, study_uid, series_uid, sop_uid, sop_class=""):
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        query.SOPInstanceUID = sop_uid
        self.received = []
        for _status, _identifier in self._association(sop_class).send_c_get(query, GET_MODEL):
            pass
        if not self.received:
            raise PacsError(f"{self.peer}: C-GET of a sample instance returned nothing")
        return self.received[0]


STORED_TEXT = ("PatientName", "PatientID", "AccessionNumber", "StudyDescription")


def _stored_text(ds, keyword):
    """A text attribute of a received instance, decoded with its own character set."""
    try:
        value = ds.get(keyword)
    except (ValueError, TypeError, LookupError):
        return None
    return None if value is None else str(value).strip()


def _charset_of(ds):
    value = ds.get("SpecificCharacterSet", "")
    if isinstance(value, str):
        return value
    return "\\".join(str(v) for v in value)
