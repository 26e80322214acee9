"""C-STORE of Part-10 bytes to a legacy PACS, on the one DICOM network layer
(`dicomnet.scu.store`: each instance in the transfer syntax it is stored in, TLS and
rejection reasons as for every other association), with the engine's error classes.
"""

from io import BytesIO

from django.conf import settings
from pydicom import dcmread

from dicomnet import scu
from dicomnet.association import Peer
from dicomnet.errors import ConnectError, DicomNetError
from migration.dicom import RetrieveError


def store(source, instances):
    """C-STORE every instance (bytes) to the source's PACS; returns how many it accepted.
    Raises RetrieveError (error class, message without PHI) on the first failure."""
    datasets = [dcmread(BytesIO(data)) for data in instances]
    if not datasets:
        return 0
    peer = Peer.of(source, timeout=float(settings.MIGRATION_DIMSE_TIMEOUT))
    try:
        return scu.store(peer, datasets)
    except ConnectError as exc:
        raise RetrieveError("pacs_connection", str(exc)[:300]) from None
    except DicomNetError as exc:
        raise RetrieveError("pacs_refused", str(exc)[:300]) from None
