"""The Storage SCP's associations on a plain socket (the acceptor's side of
`dicomnet.lean`): pynetdicom's server spent about 4 ms of the SCP process's CPU per
512 KB instance (4 KB reads, a PDU object, a state machine, a DIMSE primitive per PDU),
which made a C-MOVE cost more CPU than a C-GET. Here one thread per association reads
through lean's 256 KB buffer, C-STOREs arrive as DICOM files (lean.read_message) and are
answered from pre-encoded command elements.

pynetdicom still decodes the A-ASSOCIATE-RQ, negotiates the presentation contexts and
roles (`negotiate_as_acceptor`) and encodes the A-ASSOCIATE-AC/RJ.
"""

import functools
import logging
import socket
import ssl
import threading

from pydicom.uid import UID
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.presentation import (
    AllStoragePresentationContexts,
    build_context,
    negotiate_as_acceptor,
)
from pynetdicom.sop_class import Verification

from dicomnet import lean, sockets
from dicomnet.errors import (
    CALLED_AE_UNKNOWN,
    LIMIT_EXCEEDED,
    PERMANENT,
    TRANSIENT,
    DroppedError,
    HandshakeError,
)

log = logging.getLogger(__name__)
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030


@functools.cache
def supported(syntaxes):
    """The acceptor's presentation contexts: Verification and every storage SOP class
    with every syntax of `syntaxes` (a tuple)."""
    contexts = [build_context(Verification)]
    contexts += [
        build_context(cx.abstract_syntax, list(syntaxes)) for cx in AllStoragePresentationContexts
    ]
    for context in contexts[1:]:
        context.scu_role, context.scp_role = True, True
    return contexts


class LeanScp:
    """Accepts associations called `aet` on `address` (at most `limit` at once), each
    C-STORE's DICOM file going to `on_store(data, fields, calling_aet)`, which returns
    the C-STORE status. Over DICOM TLS with `ssl_context`."""

    def __init__(self, aet, address, on_store, syntaxes, limit=32, timeout=60.0,
                 ssl_context=None):  # fmt: skip
        self.aet = aet
        self.on_store = on_store
        self.contexts = supported(tuple(syntaxes))
        self.limit = limit
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.active = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listener = socket.create_server(address, reuse_port=False, backlog=64)
        self.listener.settimeout(0.5)

    def serve_forever(self):
        while not self.stopping.is_set():
            try:
                conn, _peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def shutdown(self):
        self.stopping.set()
        self.listener.close()

    def _serve(self, conn):
        try:
            sockets.send_at_once(conn)
            conn.settimeout(self.timeout)
            if self.ssl_context is not None:
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
            self._associate(lean.Association(conn, {}, 0))
        except (DroppedError, HandshakeError, ssl.SSLError, OSError) as exc:
            log.warning("storescp: association ended: %s", exc)
        finally:
            conn.close()

    def _associate(self, link):
        pdu_type, body = link.read_pdu()
        if pdu_type != lean.ASSOCIATE_RQ:
            return
        request = A_ASSOCIATE_RQ()
        request.decode(lean.PDU_HEADER.pack(pdu_type, len(body)) + body)
        primitive = request.to_primitive()
        if primitive.called_ae_title.strip() != self.aet:
            return _reject(link, PERMANENT, CALLED_AE_UNKNOWN)
        with self.lock:
            full = self.active >= self.limit
            self.active += 0 if full else 1
        if full:
            return _reject(link, TRANSIENT, LIMIT_EXCEEDED)
        try:
            self._accept(link, primitive)
            self._receive(link, primitive.calling_ae_title.strip())
        finally:
            with self.lock:
                self.active -= 1

    def _accept(self, link, primitive):
        roles, max_pdu = lean.negotiation_items(primitive.user_information)
        results, answered_roles = negotiate_as_acceptor(
            primitive.presentation_context_definition_list, self.contexts, roles or None
        )
        link.contexts = lean.accepted_contexts(results)
        link.peer_max_pdu = max_pdu or (1 << 31)
        answer = A_ASSOCIATE()
        answer.application_context_name = UID(lean.APPLICATION_CONTEXT)
        answer.calling_ae_title = primitive.calling_ae_title
        answer.called_ae_title = primitive.called_ae_title
        answer.result, answer.result_source = 0x00, 0x01
        answer.presentation_context_definition_results_list = results
        answer.user_information = [*lean.user_information(), *answered_roles]
        pdu = A_ASSOCIATE_AC()
        pdu.from_primitive(answer)
        link.sock.sendall(pdu.encode())

    def _receive(self, link, calling_aet):
        while True:
            try:
                context, fields, data = link.read_message()
            except DroppedError as exc:
                if exc.pdu_type == lean.RELEASE_RQ:
                    link.sock.sendall(lean.PDU_HEADER.pack(lean.RELEASE_RP, 4) + bytes(4))
                    return
                raise
            field = lean.us(fields, lean.COMMAND_FIELD)
            if field == lean.C_STORE_RQ and data is not None:
                status = self.on_store(data, fields, calling_aet)
                link.send_message(context, lean.command_set(lean.store_response(fields, status)))
            elif field == C_ECHO_RQ:
                link.send_message(context, lean.command_set(_echo_response(fields)))
            else:
                raise DroppedError(f"the PACS sent an unexpected command 0x{field:04X}")


MOVE_ORIGINATOR = 0x00001030


def move_originator(fields):
    return lean.uid(fields, MOVE_ORIGINATOR).decode(errors="replace").strip()


def _echo_response(fields):
    return {
        lean.AFFECTED_CLASS: lean.uid(fields, lean.AFFECTED_CLASS),
        lean.COMMAND_FIELD: C_ECHO_RSP,
        lean.RESPONDED_TO: lean.us(fields, lean.MESSAGE_ID),
        lean.DATASET_TYPE: lean.NO_DATASET,
        lean.STATUS: 0x0000,
    }


def _reject(link, result, reason):
    primitive = A_ASSOCIATE()
    primitive.result, (primitive.result_source, primitive.diagnostic) = result, reason
    pdu = A_ASSOCIATE_RJ()
    pdu.from_primitive(primitive)
    link.sock.sendall(pdu.encode())
