"""How the engine talks to the PACS: associations that send each PDU at once."""

import socket

from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from migration import dicom


def test_associations_to_the_pacs_send_without_waiting_for_acknowledgements(orthanc_pacs):
    pacs = dicom.Pacs(orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet, "CCTEST")
    ae = dicom.NoDelayAE(ae_title="CCTEST")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)

    with dicom.association(ae, pacs) as assoc:
        raw = assoc.dul.socket.socket
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    study_uid, datasets = next(iter(orthanc_pacs.studies.items()))
    assert dicom.query_study(pacs, study_uid).count == len(datasets)
