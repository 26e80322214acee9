"""Small DIMSE client helpers shared by the local services, their seeding and the tests.

`store()` proposes one presentation context per (SOP Class, transfer syntax) pair that
the instances actually use, so compressed instances go out as they are and every SCP
accepts what it is offered; more than 128 pairs are split over several associations.
"""

from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification
from pynetdicom.status import code_to_category

MAX_CONTEXTS = 128
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


class DicomNetError(RuntimeError):
    """An association was refused or a DIMSE operation answered with a failure status."""


class FindTruncatedError(DicomNetError):
    """The SCP ended a C-FIND with Cancel after some matches: it caps its results
    (Orthanc's LimitFindResults does this). `matches` holds what it did return."""

    def __init__(self, called_aet, matches):
        super().__init__(f"C-FIND on {called_aet} was cut off after {len(matches)} matches")
        self.matches = matches


def _client(calling_aet, timeout=30):
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    return ae


def _associate(ae, host, port, called_aet):
    """An established association, or DicomNetError saying whether it was rejected.

    Rejection usually means the calling AE title is unknown to the SCP or none of the
    proposed presentation contexts was accepted.
    """
    assoc = ae.associate(host, port, ae_title=called_aet)
    if assoc.is_established:
        return assoc
    how = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not established"
    raise DicomNetError(f"association with {called_aet}@{host}:{port} {how}")


def echo(host, port, called_aet, calling_aet="CCECHO", timeout=30):
    """True when the SCP accepts an association and answers a C-ECHO with Success."""
    ae = _client(calling_aet, timeout)
    ae.connection_timeout = timeout
    ae.add_requested_context(Verification)
    assoc = ae.associate(host, port, ae_title=called_aet)
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and status.Status == 0x0000
    finally:
        assoc.release()


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


def _store_batch(host, port, called_aet, calling_aet, pairs, items):
    ae = _client(calling_aet)
    for sop_class, syntax in pairs:
        offered = [syntax, *[ts for ts in UNCOMPRESSED if ts != syntax]]
        ae.add_requested_context(sop_class, offered if syntax in UNCOMPRESSED else [syntax])
    assoc = _associate(ae, host, port, called_aet)
    try:
        for item in items:
            ds = _load(item)
            try:
                status = assoc.send_c_store(ds)
            except ValueError as exc:
                raise DicomNetError(f"{called_aet} cannot take {ds.SOPInstanceUID}: {exc}") from exc
            category = code_to_category(status.Status) if status else "No response"
            if category not in ("Success", "Warning"):
                raise DicomNetError(
                    f"C-STORE of {ds.SOPInstanceUID} to {called_aet} failed: {category}"
                )
    finally:
        assoc.release()


def store(host, port, called_aet, datasets_or_paths, calling_aet="CCSEED"):
    """C-STORE every Dataset or DICOM file to the SCP; raise DicomNetError on any failure.

    Returns the number of instances sent.
    """
    items = list(datasets_or_paths)
    for pairs, batch in _context_batches(items):
        _store_batch(host, port, called_aet, calling_aet, pairs, batch)
    return len(items)


def study_query(**keys):
    """A study-level C-FIND identifier returning StudyInstanceUID plus the given keys."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def find(host, port, called_aet, query, calling_aet="CCFIND", model=None):
    """Run a C-FIND and return the matching identifiers.

    Raises FindTruncatedError when the SCP cancels the response part-way (a capped PACS) and
    DicomNetError on any failure status.
    """
    model = model or StudyRootQueryRetrieveInformationModelFind
    ae = _client(calling_aet)
    ae.add_requested_context(model)
    assoc = _associate(ae, host, port, called_aet)
    matches = []
    try:
        for status, identifier in assoc.send_c_find(query, model):
            category = code_to_category(status.Status) if status else "No response"
            if category == "Pending" and identifier is not None:
                matches.append(identifier)
            elif category == "Cancel":
                raise FindTruncatedError(called_aet, matches)
            elif category not in ("Pending", "Success"):
                raise DicomNetError(f"C-FIND on {called_aet} failed: {category}")
    finally:
        assoc.release()
    return matches


def find_study_uids(host, port, called_aet, calling_aet="CCFIND"):
    """Every StudyInstanceUID an SCP reports to a universal study-level C-FIND."""
    identifiers = find(host, port, called_aet, study_query(), calling_aet)
    return [str(ds.StudyInstanceUID) for ds in identifiers]
