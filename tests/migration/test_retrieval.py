"""How the engine talks to the PACS: associations that send each PDU at once."""

import socket

from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from dicomnet.association import association
from migration import dicom


def test_associations_to_the_pacs_send_without_waiting_for_acknowledgements(orthanc_pacs):
    pacs = dicom.Pacs(orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet, "CCTEST")
    with association(pacs, [(StudyRootQueryRetrieveInformationModelFind, None)]) as assoc:
        raw = assoc.dul.socket.socket
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    study_uid, datasets = next(iter(orthanc_pacs.studies.items()))
    assert dicom.query_study(pacs, study_uid).count == len(datasets)
