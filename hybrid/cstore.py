"""C-STORE of Part-10 bytes to a legacy PACS, on the engine's association helpers
(`migration.dicom`: TLS, rejection reasons and error classes, no PHI in messages).

Each instance goes out in the transfer syntax it is stored in (one presentation context
per SOP class and syntax, uncompressed syntaxes offered as alternatives to each other).
"""

from io import BytesIO

from pydicom import dcmread
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.status import code_to_category

from inventory.dicom import PacsError, Peer, check_reachable
from migration.dicom import NoDelayAE, Pacs, RetrieveError, association

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
MAX_CONTEXTS = 128


def _pair(ds):
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return UID(ds.SOPClassUID), UID(syntax or ExplicitVRLittleEndian)


def _ae(pacs, pairs):
    ae = NoDelayAE(ae_title=pacs.calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = pacs.timeout
    for sop_class, syntax in sorted(pairs)[:MAX_CONTEXTS]:
        offered = [syntax, *[ts for ts in UNCOMPRESSED if ts != syntax]]
        ae.add_requested_context(sop_class, offered if syntax in UNCOMPRESSED else [syntax])
    return ae


def store(source, instances):
    """C-STORE every instance (bytes) to the source's PACS; returns how many it accepted.
    Raises RetrieveError (error class, message without PHI) on the first failure."""
    datasets = [dcmread(BytesIO(data)) for data in instances]
    if not datasets:
        return 0
    pacs = Pacs.from_source(source)
    try:  # pynetdicom would only say the association was aborted
        check_reachable(Peer.of(source, timeout=pacs.timeout))
    except PacsError as exc:
        raise RetrieveError("pacs_connection", str(exc)) from None
    sent = 0
    with association(_ae(pacs, {_pair(ds) for ds in datasets}), pacs) as assoc:
        for ds in datasets:
            try:
                status = assoc.send_c_store(ds)
            except ValueError as exc:  # no accepted context for it
                raise RetrieveError("configuration", f"C-STORE refused: {exc}"[:300]) from None
            category = code_to_category(status.Status) if status else "No response"
            if category not in ("Success", "Warning"):
                raise RetrieveError(
                    "pacs_refused", f"C-STORE of {ds.SOPInstanceUID} answered {category}"
                )
            sent += 1
    return sent
