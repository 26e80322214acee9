"""Association set-up, once for both DIMSE layers: where a peer listens and who we say we
are (`Peer`, with its DICOM TLS context), a reachability check in plain words, a
pynetdicom association (`associate`) and a lean one (`lean_association`, on
`dicomnet.lean`), each raising the errors of `dicomnet.errors` and nothing else.

pynetdicom's associations come from `QuickAE`, whose sockets send and acknowledge at
once (`dicomnet.sockets`); the lean layer opens its own socket with the same options.
"""

import contextlib
import functools
import socket
import ssl
import time
from contextlib import contextmanager
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.transport import AssociationSocket

from dicomnet import lean, sockets, tls
from dicomnet.errors import (
    ConnectError,
    DroppedError,
    HandshakeError,
    RefusedError,
    RejectedError,
)

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Peer:
    """Where a PACS listens and who we say we are; `tls_files` None: plain DICOM."""

    host: str
    port: int
    called_aet: str
    calling_aet: str
    timeout: float = 30.0
    tls_files: tls.TlsFiles | None = None

    @classmethod
    def of(cls, source, timeout=30.0):
        """The peer of a PACS source (`inventory.PacsSource`)."""
        files = tls.TlsFiles.of(source) if source.tls else None
        return cls(
            source.host, source.port, source.ae_title, source.calling_ae_title, timeout, files
        )

    @property
    def connect_timeout(self):
        return min(self.timeout, CONNECT_TIMEOUT)

    def ssl_context(self):
        """The SSLContext of DICOM TLS (None without); TlsError when its files are wrong."""
        if self.tls_files is None:
            return None
        return _client_context(self.tls_files)

    def __str__(self):
        return f"{self.called_aet}@{self.host}:{self.port}"


@functools.cache
def _client_context(files):
    return tls.client_context(files)


# --- is it there ----------------------------------------------------------------------


def check_reachable(peer):
    """Raise ConnectError unless a TCP connection to the peer opens (its message says
    why in plain words: refused, timeout, DNS) and, with TLS, HandshakeError unless the
    handshake passes (pynetdicom would only say the association closed)."""
    wait = peer.connect_timeout
    try:
        with socket.create_connection((peer.host, peer.port), timeout=wait) as s:
            _check_handshake(peer, s)
    except OSError as exc:
        raise ConnectError(_not_connected(exc, wait), exc) from None


def _not_connected(exc, wait):
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {wait:g} s (timeout)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    return f"cannot connect ({exc.strerror or exc})"


def _check_handshake(peer, sock):
    context = peer.ssl_context()
    if context is None:
        return
    try:
        with context.wrap_socket(sock, server_hostname=peer.host) as secured:
            secured.settimeout(0.5)  # TLS 1.3: a refused client certificate shows on first read
            with contextlib.suppress(TimeoutError):
                secured.recv(1)
    except ssl.SSLError as exc:
        raise HandshakeError(exc) from None


# --- pynetdicom's associations --------------------------------------------------------


class NoDelayAE(AE):
    """An AE whose association sockets send at once (`sockets.send_at_once`)."""

    def _create_socket(self, assoc, address, tls_args):
        sock = super()._create_socket(assoc, address, tls_args)
        sockets.send_at_once(sock.socket)
        return sock


class _QuickSocket(AssociationSocket):
    """An association socket that also acknowledges at once (`dicomnet.sockets`)."""

    def recv(self, nr_bytes):
        sockets.acknowledge_at_once(self.socket)
        return super().recv(nr_bytes)


class QuickAE(NoDelayAE):
    """pynetdicom's AE with sockets that send and acknowledge at once."""

    def _create_socket(self, assoc, address, tls_args):
        sock = _QuickSocket(assoc, address=address)
        sock.tls_args = tls_args
        sockets.send_at_once(sock.socket)
        return sock


def associate(peer, contexts, ext_neg=None, handlers=None, max_pdu=None, ae_class=QuickAE):
    """An established pynetdicom association proposing `contexts` [(abstract syntax,
    transfer syntaxes or None)], or the error of `dicomnet.errors` saying why not.

    An association the peer closes at once without an answer pynetdicom could read is
    asked for once more: a PACS that rejects and closes at the same moment sometimes
    has its rejection lost in the close (about 3 in 100 with dcmqrscp), which would
    otherwise pass for an abort and hide the reason."""
    check_reachable(peer)
    for attempt in (1, 2):
        start = time.monotonic()
        assoc = _request(peer, contexts, ext_neg, handlers, max_pdu, ae_class)
        if assoc.is_established:
            _requeue_stray_responses(assoc)
            return assoc
        elapsed = time.monotonic() - start
        lost_answer = assoc.is_aborted and not assoc.is_rejected and elapsed < 1.0
        if attempt == 2 or not lost_answer:
            raise _not_established(peer, assoc, elapsed)


def _request(peer, contexts, ext_neg, handlers, max_pdu, ae_class):
    ae = ae_class(ae_title=peer.calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = peer.timeout
    ae.connection_timeout = peer.connect_timeout
    if max_pdu is not None:
        ae.maximum_pdu_size = max_pdu
    for abstract, proposed in contexts:
        ae.add_requested_context(abstract, proposed)
    context = peer.ssl_context()
    return ae.associate(
        peer.host,
        peer.port,
        ae_title=peer.called_aet,
        ext_neg=ext_neg,
        evt_handlers=handlers or [],
        tls_args=(context, peer.host) if context is not None else None,
    )


@contextmanager
def association(peer, contexts, **kwargs):
    """`associate`, released on leaving."""
    assoc = associate(peer, contexts, **kwargs)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


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


def _not_established(peer, assoc, elapsed):
    rejection = assoc.acceptor.primitive if assoc.is_rejected else None
    if rejection is not None:
        return RejectedError(rejection.result, rejection.result_source, rejection.diagnostic)
    if elapsed >= peer.timeout * 0.9:
        return DroppedError(
            f"no answer to the association request within {peer.timeout:g} s (timeout)",
            timeout=True,
        )
    if assoc.is_aborted:
        return RefusedError("association aborted by the PACS")
    return ConnectError("no association (the connection closed)")


# --- the lean layer's associations ----------------------------------------------------


@contextmanager
def lean_association(peer, storage=(), model=lean.GET_MODEL, max_pdu=0):
    """An association on `dicomnet.lean` for `model` (with `storage` contexts for the
    instances a C-GET brings), released on leaving; over DICOM TLS when the peer has it."""
    with lean.association(
        peer.host, peer.port, peer.calling_aet, peer.called_aet, list(storage),
        peer.timeout, peer.connect_timeout, max_pdu=max_pdu, model=model,
        tls=peer.ssl_context(),
    ) as assoc:  # fmt: skip
        yield assoc


def describe(peer, exc):
    """A failure of `dicomnet.errors` in plain words, naming the peer (no PHI)."""
    if isinstance(exc, HandshakeError):
        return tls.handshake_reason(exc.error, str(peer))
    if isinstance(exc, RejectedError):
        return f"{peer}: association rejected ({exc})"
    return f"{peer}: {exc}"
