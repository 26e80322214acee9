"""The one-shot DIMSE operations: C-ECHO with a verdict in plain words, C-STORE and
C-FIND, each on an association of its own to a `dicomnet.association.Peer`. Used by the
inventory's echo, the desk's monitoring and intake, the cutover probes, the dev stack's
services and their seeding, and the tests.

`store()` proposes one presentation context per (SOP Class, transfer syntax) pair that
the instances actually use, so compressed instances go out as they are and every SCP
accepts what it is offered; more than 128 pairs are split over several associations.
"""

import time
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification
from pynetdicom.status import code_to_category

from dicomnet.association import associate, association, describe
from dicomnet.errors import DicomNetError, FindTruncatedError
from dicomnet.syntaxes import MAX_CONTEXTS

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    ms: float | None
    message: str


def echo(peer):
    """C-ECHO with the round-trip time and a verdict in plain words; never raises for
    network trouble (nor for wrong TLS files)."""
    start = time.perf_counter()
    try:
        assoc = associate(peer, [(Verification, None)])
    except DicomNetError as exc:
        return EchoResult(False, None, describe(peer, exc))
    try:
        status = assoc.send_c_echo()
        ms = round((time.perf_counter() - start) * 1000, 1)
    finally:
        assoc.release()
    if status and status.Status == 0x0000:
        return EchoResult(True, ms, f"{peer} answered C-ECHO in {ms:g} ms")
    code = f"0x{status.Status:04X}" if status else "no response"
    return EchoResult(False, None, f"{peer}: C-ECHO failed ({code})")


def _syntaxes(ds):
    meta = getattr(ds, "file_meta", None)
    syntax = getattr(meta, "TransferSyntaxUID", None) or ExplicitVRLittleEndian
    return UID(ds.SOPClassUID), UID(syntax)


def _load(item):
    """A Dataset as given; a path read whole (it is sent right away, then dropped)."""
    if isinstance(item, Dataset):
        return item
    return dcmread(Path(item))


def _header(item):
    if isinstance(item, Dataset):
        return item
    return dcmread(Path(item), stop_before_pixels=True)


def _context_batches(items):
    """Group items so that each group needs at most MAX_CONTEXTS presentation contexts."""
    batches = []
    for item in items:
        pair = _syntaxes(_header(item))
        if not batches or (pair not in batches[-1][0] and len(batches[-1][0]) == MAX_CONTEXTS):
            batches.append(([], []))
        pairs, members = batches[-1]
        if pair not in pairs:
            pairs.append(pair)
        members.append(item)
    return batches


def _offered(pairs):
    """A context per (SOP class, syntax): an uncompressed syntax offers the other too."""
    for sop_class, syntax in pairs:
        offered = [syntax, *[ts for ts in UNCOMPRESSED if ts != syntax]]
        yield sop_class, offered if syntax in UNCOMPRESSED else [syntax]


def _store_batch(peer, pairs, items):
    with association(peer, list(_offered(pairs))) as assoc:
        for item in items:
            ds = _load(item)
            try:
                status = assoc.send_c_store(ds)
            except ValueError as exc:
                raise DicomNetError(f"{peer} cannot take {ds.SOPInstanceUID}: {exc}") from exc
            category = code_to_category(status.Status) if status else "No response"
            if category not in ("Success", "Warning"):
                raise DicomNetError(f"C-STORE of {ds.SOPInstanceUID} to {peer} failed: {category}")


def store(peer, datasets_or_paths):
    """C-STORE every Dataset or DICOM file to the SCP; raise DicomNetError on any failure.

    Returns the number of instances sent.
    """
    items = list(datasets_or_paths)
    for pairs, batch in _context_batches(items):
        _store_batch(peer, pairs, batch)
    return len(items)


def study_query(**keys):
    """A study-level C-FIND identifier returning StudyInstanceUID plus the given keys."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def find(peer, query, model=StudyRootQueryRetrieveInformationModelFind):
    """Run a C-FIND and return the matching identifiers.

    Raises FindTruncatedError when the SCP cancels the response part-way (a capped PACS) and
    DicomNetError on any failure status.
    """
    matches = []
    with association(peer, [(model, None)]) as assoc:
        for status, identifier in assoc.send_c_find(query, model):
            category = code_to_category(status.Status) if status else "No response"
            if category == "Pending" and identifier is not None:
                matches.append(identifier)
            elif category == "Cancel":
                raise FindTruncatedError(peer.called_aet, matches)
            elif category not in ("Pending", "Success"):
                raise DicomNetError(f"C-FIND on {peer.called_aet} failed: {category}")
    return matches


def find_study_uids(peer):
    """Every StudyInstanceUID an SCP reports to a universal study-level C-FIND."""
    return [str(ds.StudyInstanceUID) for ds in find(peer, study_query())]
