"""DIMSE retrieval for the engine: ask the PACS what a study holds (C-FIND), then fetch it
with C-GET, or with C-MOVE to this host's Storage SCP (`manage.py storescp`, which routes
the study's instances back here: `migration.storescp`), over DICOM TLS when the source
says so.

Each received instance is handed, still encoded, to `on_instance(data: bytes)`, which
may block (that is the back-pressure that keeps a worker's memory flat: the PACS waits
while the uploaders are busy). Failures raise `RetrieveError` with an error class from
`migration.models.ERROR_CLASSES` and a message without PHI.
"""

import functools
import re
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO

from django.conf import settings
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, _config
from pynetdicom.dsutils import decode, encode
from pynetdicom.presentation import StoragePresentationContexts
from pynetdicom.status import code_to_category

from dicomnet import lean, syntaxes, tls
from inventory.crawler import instance_query
from migration import storescp

TRANSFER_SYNTAXES = list(syntaxes.UIDS)
MAX_CONTEXTS = 128
OUT_OF_RESOURCES = 0xA700
SUCCESS = 0x0000
# A-ASSOCIATE-RJ from the service provider (ACSE source 3), reason 2: local limit exceeded.
LIMIT_REASONS = {(3, 2), (2, 2)}
PERMANENT = 1  # A-ASSOCIATE-RJ result: 1 rejected-permanent, 2 rejected-transient
REJECT_REASONS = {  # (source, reason) -> words (PS3.8 9.3.4)
    (1, 1): "no reason given", (1, 2): "application context not supported",
    (1, 3): "calling AE title not recognized", (1, 7): "called AE title not recognized",
    (2, 1): "no reason given", (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion", (3, 2): "local limit exceeded",
}  # fmt: skip

# pynetdicom binds logging handlers to every PDU and DIMSE message by default: a handful
# of handler calls per 16 KB PDU, ~0.2 ms of CPU per received instance, and they would log
# C-FIND identifiers (PHI) at DEBUG. The engine logs what it needs itself.
_config.LOG_HANDLER_LEVEL = "none"


class RetrieveError(RuntimeError):
    def __init__(self, error_class, message):
        super().__init__(message)
        self.error_class = error_class


@dataclass
class Expected:
    """What the PACS says the study holds: a count and the SOP classes (study level), and
    instance by instance when it was asked (IMAGE level)."""

    instances: dict = field(default_factory=dict)  # SOP UID -> (series UID, SOP class)
    duplicates: int = 0  # extra matches for a SOP UID listed more than once
    latency_ms: float = 0.0
    reported: int | None = None  # NumberOfStudyRelatedInstances, summed
    classes: set = field(default_factory=set)  # SOPClassesInStudy
    syntaxes: dict = field(default_factory=dict)  # SOP UID -> AvailableTransferSyntaxUID

    @property
    def listed(self):
        return bool(self.instances)

    @property
    def count(self):
        if self.listed:
            return len(self.instances) + self.duplicates
        return self.reported or 0

    @property
    def sop_classes(self):
        listed = {sop_class for _series, sop_class in self.instances.values() if sop_class}
        return sorted(listed | self.classes)


@dataclass
class Retrieved:
    completed: int = 0
    failed: int = 0
    warning: int = 0
    first_byte_ms: float | None = None


@dataclass
class Pacs:
    """Where and how to reach one legacy PACS (built from inventory.PacsSource)."""

    host: str
    port: int
    called_aet: str
    calling_aet: str
    method: str = "get"
    move_destination: str = ""
    timeout: float = 60.0
    tls_files: tls.TlsFiles | None = None  # None: plain DICOM

    @classmethod
    def from_source(cls, source):
        return cls(
            host=source.host,
            port=source.port,
            called_aet=source.ae_title,
            calling_aet=source.calling_ae_title,
            method=source.retrieve_method,
            move_destination=source.move_destination or settings.MIGRATION_STORAGE_SCP_AET,
            timeout=float(settings.MIGRATION_DIMSE_TIMEOUT),
            tls_files=tls.TlsFiles.of(source) if source.tls else None,
        )

    def tls_context(self):
        """The SSLContext of DICOM TLS (None without); RetrieveError when its files are
        wrong."""
        if self.tls_files is None:
            return None
        try:
            return _tls_context(self.tls_files)
        except tls.TlsError as exc:
            raise RetrieveError("configuration", f"{_where(self)}: {exc}") from None


@functools.cache
def _tls_context(files):
    return tls.client_context(files)


class NoDelayAE(AE):
    """An AE whose association sockets send at once (TCP_NODELAY).

    pynetdicom writes a request's command and its identifier as two PDUs; with Nagle's
    algorithm the second waits for the PACS to acknowledge the first, which it delays by
    up to 40 ms, so every C-FIND and C-GET took 40 ms longer than the PACS needed (a
    study-level C-FIND on Orthanc: 46 ms, 4 ms with TCP_NODELAY)."""

    def _create_socket(self, assoc, address, tls_args):
        sock = super()._create_socket(assoc, address, tls_args)
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def associate(ae, pacs, **kwargs):
    """An established association or RetrieveError naming why not (no PHI)."""
    context = pacs.tls_context()
    if context is not None:
        kwargs["tls_args"] = (context, pacs.host)
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.called_aet, **kwargs)
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        rj = assoc.acceptor.primitive
        found = (rj.result, rj.result_source, rj.diagnostic) if rj is not None else None
        raise _rejected(pacs, found)
    if assoc.is_aborted:
        raise RetrieveError("pacs_refused", f"{_where(pacs)} aborted the association request")
    raise RetrieveError("pacs_connection", f"cannot connect to {_where(pacs)}")


def _where(pacs):
    return f"{pacs.called_aet}@{pacs.host}:{pacs.port}"


def _rejected(pacs, rejection):
    """RetrieveError for an A-ASSOCIATE-RJ (result, source, diagnostic): a permanent one
    (an unknown AE title) is a configuration error, not retried; a transient one (busy)
    is retried."""
    result, *reason = rejection or (None, None, None)
    reason = tuple(reason)
    words = (
        f"{REJECT_REASONS.get(reason, 'reason unknown')} (source {reason[0]}, reason {reason[1]})"
    )
    if result == PERMANENT:
        return RetrieveError(
            "configuration", f"{_where(pacs)} rejected the association permanently: {words}"
        )
    if reason in LIMIT_REASONS:
        return RetrieveError("association_limit", f"{_where(pacs)} refused: too many associations")
    return RetrieveError(
        "pacs_refused", f"{_where(pacs)} rejected the association for now: {words}"
    )


@contextmanager
def association(ae, pacs, **kwargs):
    assoc = associate(ae, pacs, **kwargs)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


# --- what the PACS holds --------------------------------------------------------------


def _series_query(study_uid):
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = ""
    return query


def _find(assoc, query):
    """Matches of one C-FIND (on a `dicomnet.lean` association) as datasets; None when
    the SCP answers with a failure (e.g. it does not take relational queries)."""
    found = lean.c_find(assoc, encode(query, True, True))
    return None if found is None else [decode(BytesIO(match), True, True) for match in found]


def _study_count_query(study_uid):
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    query.NumberOfStudyRelatedInstances = ""
    query.SOPClassesInStudy = ""
    return query


def query_study(pacs, study_uid, listed=False):
    """What the PACS holds for the study. A study-level C-FIND gives the instance count and
    SOP classes (cheap for the PACS); when it does not answer them, or `listed` is asked,
    an IMAGE-level C-FIND lists every instance (hierarchically, series by series, when the
    PACS refuses the relational query). Raises RetrieveError."""
    started = time.perf_counter()
    expected = Expected()
    with _lean(pacs, "C-FIND", model=lean.FIND_MODEL) as assoc:
        if not listed:
            _count(expected, _find(assoc, _study_count_query(study_uid)) or [])
        if expected.reported is None:
            _list(expected, _instance_matches(assoc, study_uid))
    expected.latency_ms = (time.perf_counter() - started) * 1000
    if not expected.count:
        raise RetrieveError("not_found", f"the PACS lists no instance for study {study_uid}")
    return expected


def _count(expected, matches):
    """Sum NumberOfStudyRelatedInstances over the matches (a PACS may file one Study UID
    under two patients); leave `reported` None when any match lacks it."""
    counts = [str(m.get("NumberOfStudyRelatedInstances", "") or "").strip() for m in matches]
    if matches and all(count.isdigit() for count in counts):
        expected.reported = sum(int(count) for count in counts)
        for match in matches:
            expected.classes |= set(_values(match.get("SOPClassesInStudy")))


def _values(value):
    """A DICOM value as a list of strings (one value is a str, several a MultiValue)."""
    if value is None or value == "":
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def _image_query(study_uid, series_uid=""):
    """The inventory's IMAGE-level query, also asking the syntax the PACS stores each
    instance in (Available Transfer Syntax UID: few PACS answer it, some do)."""
    query = instance_query(study_uid, series_uid)
    query.AvailableTransferSyntaxUID = ""
    return query


def _instance_matches(assoc, study_uid):
    matches = _find(assoc, _image_query(study_uid))
    if matches is None:
        matches = []
        for series in _find(assoc, _series_query(study_uid)) or []:
            matches += _find(assoc, _image_query(study_uid, series.SeriesInstanceUID)) or []
    return matches


def _list(expected, matches):
    for match in matches:
        sop = str(match.get("SOPInstanceUID", "") or "")
        if sop in expected.instances:
            expected.duplicates += 1
        elif sop:
            expected.instances[sop] = (
                str(match.get("SeriesInstanceUID", "")),
                str(match.get("SOPClassUID", "") or ""),
            )
            stored = _values(match.get("AvailableTransferSyntaxUID"))
            if len(stored) == 1:
                expected.syntaxes[sop] = stored[0]


# --- retrieval ------------------------------------------------------------------------


def storage_contexts(sop_classes, first=None, budget=MAX_CONTEXTS - 1):
    """(SOP class, [transfer syntaxes]) pairs to propose for C-GET, every syntax an
    archive may hold, the syntax `first[class]` seen stored with a context of its own
    (`dicomnet.syntaxes.contexts`), so the PACS can send each instance as stored."""
    classes = list(sop_classes) or [cx.abstract_syntax for cx in StoragePresentationContexts]
    return syntaxes.contexts(classes, first, budget)


def _study_identifier(study_uid):
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    return identifier


def image_identifier(study_uid, series_uid, sop_uid):
    """The C-GET identifier of one instance."""
    identifier = _study_identifier(study_uid)
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.SeriesInstanceUID = series_uid
    identifier.SOPInstanceUID = sop_uid
    return identifier


def sop_instance_uid(data):
    """The SOP Instance UID of a received instance's bytes (header only is parsed)."""
    ds = dcmread(BytesIO(data), stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
    return str(ds.get("SOPInstanceUID", "") or "")


PLAIN_UID = re.compile(r"^[0-9][0-9.]{0,63}$")


def part10_bytes(event):
    """A pynetdicom-received instance (C-MOVE's Storage SCP) as a DICOM file: the same
    bytes as `event.encoded_dataset()`, whose pydicom-built file meta cost 0.3 ms of CPU
    per instance, ten times this. UIDs that are not plain digits and dots take
    pynetdicom's way (its encoding rules)."""
    request = event.request
    uids = (
        str(request.AffectedSOPClassUID),
        str(request.AffectedSOPInstanceUID),
        str(event.context.transfer_syntax),
    )
    if not all(PLAIN_UID.match(uid) for uid in uids):
        return event.encoded_dataset()
    header = lean.part10_header(*(uid.encode() for uid in uids))
    with request.DataSet.getbuffer() as dataset:
        return b"".join((header, dataset))


class _Receiver:
    """The C-STORE handler: hands bytes on and times the first one."""

    def __init__(self, on_instance):
        self.on_instance = on_instance
        self.started = time.perf_counter()
        self.first_byte_ms = None
        self.last_activity = time.monotonic()
        self.error = None

    def receive(self, instance):
        """Hand on `instance()`, the received file's bytes; the C-STORE status."""
        self.last_activity = time.monotonic()
        if self.first_byte_ms is None:
            self.first_byte_ms = (time.perf_counter() - self.started) * 1000
        if self.error is not None:
            return OUT_OF_RESOURCES
        try:
            self.on_instance(instance())
        except Exception as exc:  # the pipeline stopped: refuse the rest
            self.error = exc
            return OUT_OF_RESOURCES
        self.last_activity = time.monotonic()
        return SUCCESS


def _outcome(status, completed, failed, warning, receiver, verb):
    """Retrieved from the final response's status and counts; RetrieveError on failure."""
    result = Retrieved(completed, failed, warning, receiver.first_byte_ms)
    category = code_to_category(status)
    if category not in ("Success", "Warning"):
        error_class = "pacs_refused" if completed == 0 else "pacs_connection"
        raise RetrieveError(error_class, f"{verb} ended with status 0x{status:04X} ({category})")
    return result


def c_get(pacs, study_uid, sop_classes, on_instance, identifier=None, first=None):
    """Retrieve a study (or what `identifier` names) by C-GET on one association, by
    `dicomnet.lean`; instances go to `on_instance`. `first`: {SOP class: [syntaxes
    it is stored in]}, proposed first."""
    receiver = _Receiver(on_instance)
    query = encode(identifier or _study_identifier(study_uid), True, True)
    storage = storage_contexts(sop_classes, first)
    with _lean(pacs, "C-GET", storage, receiver=receiver) as assoc:
        final = lean.c_get(assoc, query, lambda data: receiver.receive(lambda: data))
    if receiver.error is not None:
        raise receiver.error
    counts = (lean.us(final, tag) for tag in lean.SUBOPERATIONS.values())
    return _outcome(lean.us(final, lean.STATUS), *counts, receiver, "C-GET")


@contextmanager
def _lean(pacs, verb, storage=(), model=lean.GET_MODEL, receiver=None):
    """A `dicomnet.lean` association to the PACS; its failures as RetrieveError with
    an error class and no PHI (the receiver's own error, when it stopped the C-GET)."""
    address = (pacs.host, pacs.port, pacs.calling_aet, pacs.called_aet)
    timeouts = (pacs.timeout, min(10.0, pacs.timeout))
    context = pacs.tls_context()
    try:
        with lean.association(
            *address, list(storage), *timeouts, model=model, tls=context
        ) as assoc:
            yield assoc
    except lean.RejectedError as exc:
        raise _rejected(pacs, (exc.result, exc.source, exc.reason)) from None
    except lean.RefusedError as exc:
        raise RetrieveError("pacs_refused", f"{_where(pacs)}: {exc}") from None
    except lean.HandshakeError as exc:
        raise RetrieveError(
            "configuration", tls.handshake_reason(exc.error, _where(pacs))
        ) from None
    except lean.DroppedError as exc:
        if receiver is not None and receiver.error is not None:
            raise receiver.error from None
        if exc.timeout:
            raise RetrieveError("timeout", f"{verb}: {exc.reason} ({pacs.timeout:.0f}s)") from None
        raise RetrieveError("pacs_connection", f"{verb}: {exc.reason}") from None
    except OSError as exc:
        where = f"{_where(pacs)} ({type(exc).__name__})"
        raise RetrieveError("pacs_connection", f"cannot connect to {where}") from None


# --- C-MOVE to our own Storage SCP ----------------------------------------------------


def c_move(pacs, study_uid, on_instance):
    """Retrieve a study by C-MOVE (on a `dicomnet.lean` association) to this host's
    Storage SCP (`manage.py storescp`, AE `pacs.move_destination`), which routes the
    study's instances to us (`storescp`)."""
    receiver = _Receiver(on_instance)
    aborting = []
    route = storescp.Receiving(
        study_uid, pacs.calling_aet, lambda data: receiver.receive(lambda: data) == SUCCESS,
        on_stop=lambda: [assoc.abort() for assoc in aborting], timeout=pacs.timeout,
    )  # fmt: skip
    query = encode(_study_identifier(study_uid), True, True)
    try:
        with route:
            receiver.started = time.perf_counter()
            with _lean(pacs, "C-MOVE", model=lean.MOVE_MODEL, receiver=receiver) as assoc:
                aborting.append(assoc)
                final = lean.c_move(assoc, query, pacs.move_destination, _arriving(receiver, pacs))
            route.finish()
    except storescp.RouteError as exc:
        raise RetrieveError("configuration", str(exc)) from None
    return _moved(final, route, receiver, pacs)


def _arriving(receiver, pacs):
    """Are instances still arriving (the C-MOVE is alive without answering)?"""
    return lambda: time.monotonic() - receiver.last_activity < pacs.timeout


def _moved(final, route, receiver, pacs):
    """Retrieved from the final C-MOVE response's fields and what the route delivered; a
    clear RetrieveError when the PACS could not reach our Storage SCP."""
    if receiver.error is not None:
        raise receiver.error
    if route.broken:
        raise RetrieveError("internal", f"C-MOVE: {route.broken}")
    status = lean.us(final, lean.STATUS)
    completed, failed, warning = (lean.us(final, tag) for tag in lean.SUBOPERATIONS.values())
    if not route.received and (completed or code_to_category(status) == "Failure"):
        raise RetrieveError("pacs_refused", _undelivered(status, completed, pacs))
    return _outcome(status, completed, failed, warning, receiver, "C-MOVE")


def _undelivered(status, completed, pacs):
    where = f"{settings.MIGRATION_STORAGE_SCP_BIND}:{settings.MIGRATION_STORAGE_SCP_PORT}"
    said = (
        f"the PACS reported {completed} instance(s) sent to {pacs.move_destination}"
        if completed
        else f"the C-MOVE ended with status 0x{status:04X} ({code_to_category(status)})"
    )
    return (
        f"C-MOVE: {said} but none reached this host's Storage SCP ({where}, AE "
        f"{settings.MIGRATION_STORAGE_SCP_AET}): check that the PACS knows "
        f"{pacs.move_destination} at this host's address and port {where.split(':')[-1]}"
    )


def retrieve(pacs, study_uid, sop_classes, on_instance, first=None):
    if pacs.method == "move":
        return c_move(pacs, study_uid, on_instance)
    return c_get(pacs, study_uid, sop_classes, on_instance, first=first)


def fetch_one(pacs, study_uid):
    """The first instance the PACS lists for a study, as bytes (for the mapping preview)."""
    expected = query_study(pacs, study_uid, listed=True)
    sop, (series, sop_class) = sorted(expected.instances.items())[0]
    identifier = image_identifier(study_uid, series, sop)
    received = []
    c_get(pacs, study_uid, [sop_class] if sop_class else [], received.append, identifier)
    if not received:
        raise RetrieveError("not_found", f"the PACS sent nothing for instance {sop}")
    return received[0]
