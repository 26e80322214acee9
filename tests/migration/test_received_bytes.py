"""What the engine hands on for each received instance: the DICOM file pynetdicom would
write (`event.encoded_dataset()`), byte for byte, whatever the modality, transfer syntax
or character set; only its file meta is built more cheaply."""

from migration import dicom
from tests.fixtures_services import TEST_AET


def test_received_instances_are_the_bytes_pynetdicom_encodes(mixed_pacs, monkeypatch):
    orthanc, studies = mixed_pacs
    pacs = dicom.Pacs("127.0.0.1", orthanc.dicom_port, orthanc.aet, TEST_AET)
    ours = dicom.part10_bytes
    pairs = []

    def both(event):
        pairs.append((ours(event), event.encoded_dataset()))
        return pairs[-1][0]

    monkeypatch.setattr(dicom, "part10_bytes", both)
    by_modality = {}
    for uid, datasets in studies.items():
        by_modality.setdefault(datasets[0].Modality, uid)
    received = []
    for uid in by_modality.values():
        expected = dicom.query_study(pacs, uid)
        dicom.c_get(pacs, uid, expected.sop_classes, received.append)

    assert len(received) == len(pairs) == sum(len(studies[uid]) for uid in by_modality.values())
    assert all(mine == theirs for mine, theirs in pairs)
    syntaxes = {dicom.dcmread(dicom.BytesIO(data)).file_meta.TransferSyntaxUID for data in received}
    assert len(syntaxes) >= 4
