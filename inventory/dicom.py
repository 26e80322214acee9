"""DIMSE for the inventory: C-FIND sessions and sample C-GETs (the C-ECHO is
`dicomnet.scu.echo`).

A crawl asks thousands of small questions, so a `FindSession` keeps one association open
for all of them, on the lean DIMSE layer (`dicomnet.lean`: one thread decodes the
responses). The sample C-GET is pynetdicom's (`dicomnet.association.associate`, whose
sockets send and acknowledge at once). Failures of either come as the errors of
`dicomnet.errors` and leave here as PacsError, in plain words.
"""

import collections
import contextlib
import queue
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

from pydicom.dataset import Dataset
from pynetdicom import build_role, evt
from pynetdicom.dsutils import decode, encode
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)
from pynetdicom.status import code_to_category

from dicomnet import lean, syntaxes
from dicomnet.association import (
    Peer,  # the crawl's peer: dicom.Peer.of(source)
    associate,
    check_reachable,
    describe,
    lean_association,
)
from dicomnet.errors import ConnectError, DicomNetError, DroppedError, RefusedError
from inventory.crawler import Flat

FIND_MODEL = lean.FIND_MODEL
PATIENT_MODEL = PatientRootQueryRetrieveInformationModelFind
GET_MODEL = StudyRootQueryRetrieveInformationModelGet
__all__ = ["FindSession", "GetSession", "PacsError", "Peer", "as_dataset"]


class PacsError(DicomNetError):
    """The PACS could not be reached or refused us; the message says how, in plain words."""


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


@contextlib.contextmanager
def _plain_words(peer):
    """Raise dicomnet's failures inside the block as PacsError, in plain words."""
    try:
        yield
    except PacsError:
        raise
    except DicomNetError as exc:
        raise PacsError(describe(peer, exc)) from None


class FindSession(_Session):
    """C-FINDs over one kept-open association on the engine's lean DIMSE layer
    (`dicomnet.lean`: one thread reads the socket, no per-PDU machinery), re-opened once
    if the PACS drops it. One association at a time, so the crawl never holds more than
    one of the source's association slots; switching information model (Study Root,
    Patient Root) closes the other first.

    `find(query, model=FIND_MODEL)` returns `(matches, truncated)`: truncated is True when
    the PACS ended with Cancel (Orthanc's LimitFindResults). `pause` seconds pass before
    each query (the source's C-FIND pause).
    """

    def __init__(self, peer, pause=0.0):
        super().__init__(peer)
        self.pause = pause
        self.queries = 0
        self.model = None
        self._stack = None
        self._assoc = None

    def close(self):
        stack, self._stack, self._assoc, self.model = self._stack, None, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()

    def _association(self, model):
        if self._assoc is not None and self.model == model:
            return self._assoc
        self.close()
        with _plain_words(self.peer):
            check_reachable(self.peer)
        stack = contextlib.ExitStack()
        try:
            self._assoc = stack.enter_context(lean_association(self.peer, model=model))
        except (RefusedError, DroppedError, ConnectError) as exc:
            stack.close()
            raise PacsError(f"{self.peer}: no association ({exc})") from None
        except DicomNetError as exc:
            stack.close()
            raise PacsError(describe(self.peer, exc)) from None
        self._stack, self.model = stack, model
        return self._assoc

    def find(self, query, model=FIND_MODEL):
        if self.pause:
            time.sleep(self.pause)
        self.queries += 1
        for _attempt in range(2):
            try:
                return self._find(query, model)
            except (DroppedError, OSError):
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
        found, status = lean.c_find_status(assoc, encode(query, True, True))
        category = code_to_category(status)
        if category not in ("Success", "Cancel"):
            raise PacsError(f"{self.peer}: C-FIND failed (status 0x{status:04X})")
        return [identifier(match) for match in found], category == "Cancel"


class FindPool:
    """Several `FindSession`s, for a crawl's nodes that do not wait on each other: up to
    `size` C-FINDs in flight at once, one per association (the caller holds that many of
    the source's association slots). With `size` 1 it is a FindSession.

    `answers(items, ask, key)` yields `(item, (matches, truncated) or None)` in the order
    of `items`; `ask(item)` gives the `(query, model or None)` to ask, or None when the
    item needs no C-FIND. It asks ahead: up to `ahead` × `size` items are asked before
    the caller reads the first answer, queued for the next free association. When the
    caller stops reading (`close()` of the generator, or `break`), the answers still in
    flight are kept by `key(item)` and not asked again when a later call brings the same
    items: the PACS goes on answering while the caller stores what it has read.
    `find()` asks on the first association (the series and sample phases).
    """

    ahead = 2

    def __init__(self, peer, pause=0.0, size=1):
        self.sessions = [FindSession(peer, pause) for _ in range(max(1, size))]
        self._free = queue.SimpleQueue()
        for session in self.sessions:
            self._free.put(session)
        self._threads = ThreadPoolExecutor(size) if size > 1 else None
        self._kept = {}  # key -> future: answers asked ahead, not read yet

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def queries(self):
        return sum(session.queries for session in self.sessions)

    def close(self):
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        for session in self.sessions:
            session.close()

    def find(self, query, model=FIND_MODEL):
        return self.sessions[0].find(query, model)

    def answers(self, items, ask, key=id):
        if self._threads is None:
            for item in items:
                yield item, self._find(ask(item))
            return
        waiting = collections.deque()  # (item, future or None), in order
        try:
            for item in items:
                future = self._kept.pop(key(item), None) or self._submit(ask(item))
                waiting.append((item, future))
                while len(waiting) > self.ahead * len(self.sessions):
                    done = waiting.popleft()
                    yield done[0], _result(done[1])
            while waiting:
                done = waiting.popleft()
                yield done[0], _result(done[1])
        finally:
            self._kept.update((key(item), f) for item, f in waiting if f is not None)

    def _submit(self, asked):
        return None if asked is None else self._threads.submit(self._find, asked)

    def _find(self, asked):
        if asked is None:
            return None
        query, model = asked
        session = self._free.get()
        try:
            return session.find(query, model or FIND_MODEL)
        finally:
            self._free.put(session)


def _result(future):
    return None if future is None else future.result()


_ELEMENT = struct.Struct("<HHI")
UNDEFINED = 0xFFFFFFFF


def as_dataset(answer):
    """A C-FIND answer as a pydicom Dataset, whether `identifier` kept it flat or not
    (for callers outside the crawl, which read a few answers, not millions)."""
    return decode(BytesIO(answer.data), True, True) if isinstance(answer, Flat) else answer


def identifier(data):
    """One encoded C-FIND identifier (Implicit VR Little Endian) as a `crawler.Flat`:
    {tag: raw value bytes}.

    A crawl reads tens of thousands of these flat identifiers; pydicom's reader costs
    several times this walk over (tag, length, value). Anything but a flat list of
    defined-length elements (a sequence of undefined length, an item tag, a length past
    the end) goes to pydicom's reader and comes back as a Dataset.
    """
    elements, at, end = {}, 0, len(data)
    unpack = _ELEMENT.unpack_from
    while at < end:
        if end - at < 8:
            return decode(BytesIO(data), True, True)
        group, number, length = unpack(data, at)
        start = at + 8
        at = start + length
        if length == UNDEFINED or at > end or group == 0xFFFE:
            return decode(BytesIO(data), True, True)
        elements[group << 16 | number] = data[start:at]
    return Flat(elements, data)


class GetSession(_Session):
    """C-GETs of single sample instances over one association per SOP class.

    When the instance's SOP class is known (the C-FIND gave it), each syntax an archive
    may hold gets a presentation context of its own (`dicomnet.syntaxes`), so the PACS
    sends the instance as it stores it and the sample records that syntax; otherwise the
    storage SOP classes are offered with the common syntaxes (`syntaxes.storage_contexts`).
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
            storage = syntaxes.storage_contexts([sop_class] if sop_class else [])
            contexts = [(GET_MODEL, None), *storage]
            classes = dict.fromkeys(abstract for abstract, _ in contexts[1:])
            roles = [build_role(abstract, scp_role=True) for abstract in classes]
            handlers = [(evt.EVT_C_STORE, self._on_store)]
            with _plain_words(self.peer):
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
