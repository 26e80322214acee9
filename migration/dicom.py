"""DIMSE retrieval for the engine: ask the PACS what a study holds (C-FIND), then fetch it
with C-GET, or with C-MOVE to this host's Storage SCP (`manage.py storescp`, which routes
the study's instances back here: `migration.storescp`), over DICOM TLS when the source
says so.

Each received instance is handed, still encoded, to `on_instance(data: bytes)`, which
may block (that is the back-pressure that keeps a worker's memory flat: the PACS waits
while the uploaders are busy). Failures raise `RetrieveError` with an error class from
`migration.models.ERROR_CLASSES` and a message without PHI.

The network is `dicomnet`'s: the association (`dicomnet.association`), the lean
C-FIND/C-GET/C-MOVE (`dicomnet.lean`), the contexts proposed (`dicomnet.syntaxes`) and the
error classes (`dicomnet.errors`) that `_retrieve_error` turns into RetrieveError; what
stays here is the engine's bookkeeping (Expected, Retrieved) and the C-MOVE's route.
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO

from django.conf import settings
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode
from pynetdicom.status import code_to_category

from dicomnet import lean, tls
from dicomnet.association import Peer, lean_association
from dicomnet.errors import (
    DicomNetError,
    DroppedError,
    HandshakeError,
    RefusedError,
    RejectedError,
)
from dicomnet.syntaxes import storage_contexts
from inventory.crawler import instance_query
from migration import storescp

OUT_OF_RESOURCES = 0xA700
SUCCESS = 0x0000


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


@dataclass(frozen=True)
class Pacs(Peer):
    """Where and how to reach one legacy PACS (built from inventory.PacsSource), and how
    the engine retrieves from it."""

    timeout: float = 60.0
    method: str = "get"
    move_destination: str = ""

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
    try:
        with lean_association(pacs, storage, model) as assoc:
            yield assoc
    except (DicomNetError, OSError) as exc:
        if isinstance(exc, DroppedError) and receiver is not None and receiver.error is not None:
            raise receiver.error from None
        raise _retrieve_error(pacs, verb, exc) from None


def _retrieve_error(pacs, verb, exc):
    """RetrieveError for a `dicomnet.errors` failure: an error class and words, no PHI."""
    if isinstance(exc, RejectedError):
        return _rejected(pacs, exc)
    if isinstance(exc, tls.TlsError):
        return RetrieveError("configuration", f"{pacs}: {exc}")
    if isinstance(exc, HandshakeError):
        return RetrieveError("configuration", tls.handshake_reason(exc.error, str(pacs)))
    if isinstance(exc, RefusedError):
        return RetrieveError("pacs_refused", f"{pacs}: {exc}")
    if isinstance(exc, DroppedError) and exc.timeout:
        return RetrieveError("timeout", f"{verb}: {exc.reason} ({pacs.timeout:.0f}s)")
    if isinstance(exc, DroppedError):
        return RetrieveError("pacs_connection", f"{verb}: {exc.reason}")
    cause = getattr(exc, "error", None) or exc
    return RetrieveError("pacs_connection", f"cannot connect to {pacs} ({type(cause).__name__})")


def _rejected(pacs, rejection):
    """RetrieveError for an A-ASSOCIATE-RJ: a permanent one (an unknown AE title) is a
    configuration error, not retried; a transient one (busy) is retried."""
    if rejection.permanent:
        return RetrieveError(
            "configuration", f"{pacs} rejected the association permanently: {rejection.words}"
        )
    if rejection.limit:
        return RetrieveError("association_limit", f"{pacs} refused: too many associations")
    return RetrieveError(
        "pacs_refused", f"{pacs} rejected the association for now: {rejection.words}"
    )


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
