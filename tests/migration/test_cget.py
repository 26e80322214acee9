"""The engine's C-GET and C-FIND (`dicomnet.lean`): what the C-GET hands on for each
instance is the DICOM file pynetdicom would write, byte for byte, whatever the modality,
transfer syntax or character set, from Orthanc and from dcmtk's dcmqrscp, in PDUs of any
size; the C-FIND lists what the PACS holds; a PACS that refuses, is not there or ends the
association says so in the RetrieveError."""

import socket

import pytest
from pydicom.dataset import Dataset
from pynetdicom import build_role, evt
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GetModel

from dicomnet import lean, syntaxes
from dicomnet.association import association
from migration import dicom
from migration.dicom import RetrieveError
from tests.fixtures_services import TEST_AET


def pynetdicom_get(pacs, study_uid, sop_classes):
    """{SOP UID: (event.encoded_dataset(), lean.event_part10_bytes(event))} by pynetdicom's own
    C-GET: the reference for the engine's C-GET and for the C-MOVE SCP's file bytes."""
    contexts = syntaxes.storage_contexts(sop_classes)
    received = {}

    def on_store(event):
        sop = str(event.request.AffectedSOPInstanceUID)
        received[sop] = (event.encoded_dataset(), lean.event_part10_bytes(event))
        return 0x0000

    classes = dict.fromkeys(sop_class for sop_class, _syntaxes in contexts)
    roles = [build_role(sop_class, scp_role=True) for sop_class in classes]
    handlers = [(evt.EVT_C_STORE, on_store)]
    proposed = [(GetModel, None), *contexts]
    with association(pacs, proposed, ext_neg=roles, handlers=handlers, max_pdu=0) as assoc:
        query = Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study_uid
        list(assoc.send_c_get(query, GetModel))
    return received


def lean_get(pacs, study_uid, sop_classes, max_pdu=0):
    """{SOP UID: file bytes} by the engine's C-GET, taking PDUs of at most `max_pdu`."""
    received = {}

    def on_store(data):
        received[dicom.sop_instance_uid(data)] = data
        return dicom.SUCCESS

    address = (pacs.host, pacs.port, pacs.calling_aet, pacs.called_aet)
    contexts = syntaxes.storage_contexts(sop_classes)
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study_uid
    with lean.association(*address, contexts, 30, 5, max_pdu=max_pdu) as assoc:
        final = lean.c_get(assoc, encode(query, True, True), on_store)
    assert lean.us(final, lean.STATUS) == 0x0000
    return received


def test_instances_are_the_files_pynetdicom_writes_for_every_modality_and_syntax(mixed_pacs):
    orthanc, studies = mixed_pacs
    pacs = dicom.Pacs("127.0.0.1", orthanc.dicom_port, orthanc.aet, TEST_AET)
    by_modality = {}
    for uid, datasets in studies.items():
        by_modality.setdefault(datasets[0].Modality, uid)
    syntaxes = set()
    for uid in by_modality.values():
        expected = dicom.query_study(pacs, uid)
        received = []
        dicom.c_get(pacs, uid, expected.sop_classes, received.append)
        reference = pynetdicom_get(pacs, uid, expected.sop_classes)

        ours = {dicom.sop_instance_uid(data): data for data in received}
        assert len(received) == len(ours) == len(reference) == len(studies[uid])
        assert all(ours[sop] == theirs for sop, (theirs, _scp) in reference.items())
        assert all(scp == theirs for theirs, scp in reference.values())
        syntaxes |= {dicom.dcmread(dicom.BytesIO(d)).file_meta.TransferSyntaxUID for d in received}
    assert len(by_modality) >= 5
    assert len(syntaxes) >= 4


def test_small_pdus_from_dcmqrscp_arrive_whole(dcmqrscp_pacs, monkeypatch):
    """dcmtk's archive, asked for 1 KB PDUs: every data set comes in several fragments."""
    fragments = []
    read_fragment = lean.Association._next_pdv

    def counted(assoc, out, command):
        fragments.append("command" if command else "data set")
        return read_fragment(assoc, out, command)

    monkeypatch.setattr(lean.Association, "_next_pdv", counted)
    pacs = dicom.Pacs(dcmqrscp_pacs.host, dcmqrscp_pacs.port, dcmqrscp_pacs.aet, TEST_AET)
    study_uid, datasets = next(iter(dcmqrscp_pacs.studies.items()))
    classes = dicom.query_study(pacs, study_uid).sop_classes

    small = lean_get(pacs, study_uid, classes, max_pdu=1024)
    reference = pynetdicom_get(pacs, study_uid, classes)

    assert len(small) == len(datasets)
    assert small == {sop: theirs for sop, (theirs, _scp) in reference.items()}
    assert fragments.count("data set") >= 3 * len(datasets)


def test_the_store_response_is_the_command_set_pynetdicom_encodes():
    request = {lean.AFFECTED_CLASS: b"1.2.840.10008.5.1.4.1.1.2", lean.MESSAGE_ID: b"\x07\x00",
               lean.AFFECTED_INSTANCE: b"1.2.3.4.5"}  # fmt: skip
    ours = lean.command_set(lean.store_response(request, 0xA700))

    primitive = C_STORE()
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    primitive.AffectedSOPInstanceUID = "1.2.3.4.5"
    primitive.MessageIDBeingRespondedTo = 7
    primitive.Status = 0xA700
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    assert ours == encode(message.command_set, True, True)
    assert lean.us(lean.read_command(ours), lean.STATUS) == 0xA700


def test_a_pacs_that_does_not_know_its_own_name_rejects_with_the_reason(dcmqrscp_pacs):
    pacs = dicom.Pacs(dcmqrscp_pacs.host, dcmqrscp_pacs.port, "NOTTHISPACS", TEST_AET)
    study_uid = next(iter(dcmqrscp_pacs.studies))

    with pytest.raises(RetrieveError) as raised:
        dicom.c_get(pacs, study_uid, [], lambda data: None)

    assert raised.value.error_class == "configuration"  # permanent: not retried
    assert "NOTTHISPACS@" in str(raised.value)
    assert "rejected the association permanently: called AE title not recognized" in str(
        raised.value
    )


def test_a_pacs_that_is_not_listening_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pacs = dicom.Pacs("127.0.0.1", port, "GONE", TEST_AET, timeout=5)

    with pytest.raises(RetrieveError) as raised:
        dicom.c_get(pacs, "1.2.3", [], lambda data: None)

    assert raised.value.error_class == "pacs_connection"
    assert f"cannot connect to GONE@127.0.0.1:{port}" in str(raised.value)


def test_a_refused_instance_ends_the_retrieval_with_the_receivers_error(orthanc_pacs):
    """The pipeline stops (its error is raised); the PACS is answered "out of resources"
    for the rest and the association is released, not left hanging."""
    pacs = dicom.Pacs(orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet, TEST_AET)
    study_uid, datasets = next(iter(orthanc_pacs.studies.items()))
    classes = dicom.query_study(pacs, study_uid).sop_classes
    calls = []

    def refuse(data):
        calls.append(len(data))
        raise RuntimeError("the pipeline stopped")

    with pytest.raises(RuntimeError, match="the pipeline stopped"):
        dicom.c_get(pacs, study_uid, classes, refuse)

    assert len(calls) == 1
    assert dicom.query_study(pacs, study_uid).count == len(datasets)


@pytest.mark.parametrize("archive", ["orthanc_pacs", "dcmqrscp_pacs"])
def test_the_c_find_lists_every_instance_with_its_series(archive, request):
    """Orthanc also returns each instance's SOP class; dcmqrscp leaves it empty."""
    legacy = request.getfixturevalue(archive)
    pacs = dicom.Pacs(legacy.host, legacy.port, legacy.aet, TEST_AET)
    study_uid, datasets = next(iter(legacy.studies.items()))
    by_sop = {str(ds.SOPInstanceUID): ds for ds in datasets}

    counted = dicom.query_study(pacs, study_uid)
    listed = dicom.query_study(pacs, study_uid, listed=True)

    assert counted.count == listed.count == len(datasets)
    assert {sop: series for sop, (series, _class) in listed.instances.items()} == {
        sop: str(ds.SeriesInstanceUID) for sop, ds in by_sop.items()
    }
    classes = {sop: sop_class for sop, (_series, sop_class) in listed.instances.items()}
    expected = {sop: str(ds.SOPClassUID) for sop, ds in by_sop.items()}
    assert classes == expected if archive == "orthanc_pacs" else set(classes.values()) == {""}
