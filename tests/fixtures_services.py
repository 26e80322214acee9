"""Session fixtures for the real local services: legacy PACS (Orthanc, dcmqrscp), a
DICOMweb store (Orthanc with its DICOMweb plugin) and an S3 server (SeaweedFS).

Loaded from tests/conftest.py through `pytest_plugins`. A service that cannot start
fails the tests that need it with the ServiceError message; it is never skipped.
Every PACS knows the test's AE title TEST_AET and routes C-MOVEs to it at
127.0.0.1:`storage_scp_port`, where a test may run its own Storage SCP.
"""

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from devstack import synthetic
from devstack.services.base import LOOPBACK, ManagedProcess, ServiceError, free_port
from devstack.services.dcmtk import DcmQrScp
from devstack.services.moto import MotoS3
from devstack.services.orthanc import Orthanc
from devstack.services.seaweedfs import SeaweedS3

TEST_AET = "CCTEST"
SEED_SHAPE = {"studies": 3, "series": 2, "instances": 2, "rows": 32, "cols": 32}


@dataclass
class LegacyPacs:
    """A running, seeded legacy PACS, the same shape whatever its software."""

    service: ManagedProcess
    host: str
    port: int
    aet: str
    storage_scp_port: int
    studies: dict = field(default_factory=dict)
    calling_aet: str = TEST_AET
    storage_scp_aet: str = TEST_AET

    @property
    def study_uids(self):
        return sorted(self.studies)


def start_service(service):
    """Start `service`, or fail the requesting test loudly with the reason."""
    try:
        return service.start()
    except ServiceError as exc:
        pytest.fail(str(exc))


def seed_studies(seed, **shape):
    """Synthetic studies as {StudyInstanceUID: [Dataset, ...]}."""
    studies = synthetic.iter_studies(seed=seed, **{**SEED_SHAPE, **shape})
    return {str(datasets[0].StudyInstanceUID): datasets for datasets in studies}


def seed_orthanc(orthanc, studies):
    for datasets in studies.values():
        for ds in datasets:
            orthanc.upload(synthetic.dataset_bytes(ds))


@pytest.fixture(scope="session")
def storage_scp_port():
    """The port every PACS fixture sends C-MOVEs for TEST_AET to."""
    return free_port()


@pytest.fixture(scope="session")
def orthanc_factory(storage_scp_port):
    """Start extra Orthancs: `orthanc_factory(limit_find_results=50)`; all stop at the end.

    Unless `modalities` is given, TEST_AET is registered with C-MOVEs to storage_scp_port.
    """
    started = []

    def start(**kwargs):
        kwargs.setdefault("modalities", {TEST_AET: (LOOPBACK, storage_scp_port)})
        orthanc = Orthanc(**kwargs)
        started.append(orthanc)
        return start_service(orthanc)

    yield start
    with ThreadPoolExecutor(max_workers=len(started) or 1) as pool:
        list(pool.map(Orthanc.stop, started))


@pytest.fixture(scope="session")
def orthanc_pacs(orthanc_factory, storage_scp_port):
    """An uncapped Orthanc legacy PACS seeded with three small CT studies."""
    orthanc = orthanc_factory(aet="LEGACYPACS")
    studies = seed_studies(seed=101)
    seed_orthanc(orthanc, studies)
    return LegacyPacs(orthanc, LOOPBACK, orthanc.dicom_port, orthanc.aet, storage_scp_port, studies)


@pytest.fixture(scope="session")
def dcmqrscp_pacs(storage_scp_port):
    """dcmtk's dcmqrscp seeded with three small MR studies (stored by C-STORE)."""
    archive = DcmQrScp(aet="DCMQRSCP", peers={TEST_AET: (LOOPBACK, storage_scp_port)})
    try:
        start_service(archive)
        studies = seed_studies(seed=102, modality="MR")
        archive.store_datasets(ds for datasets in studies.values() for ds in datasets)
        yield LegacyPacs(archive, LOOPBACK, archive.port, archive.aet, storage_scp_port, studies)
    finally:
        archive.stop()


@pytest.fixture(scope="session")
def dicomweb_store(orthanc_factory):
    """An empty Orthanc with the DICOMweb plugin: STOW-RS/WADO-RS at `.dicomweb_url`."""
    return orthanc_factory(aet="DICOMWEB", dicomweb=True, modalities={})


@pytest.fixture(scope="session")
def s3_server():
    """SeaweedFS's S3 API on loopback: `.endpoint_url`, `.access_key`, `.client()`."""
    server = SeaweedS3()
    try:
        yield start_service(server)
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """The name of a fresh, empty bucket on s3_server, deleted afterwards."""
    name = f"cc-test-{uuid.uuid4().hex[:16]}"
    s3_server.create_bucket(name)
    yield name
    with contextlib.suppress(BotoCoreError, ClientError):
        s3_server.client().delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def moto_s3():
    """moto's S3 server as a real process on loopback, for the bucket configuration calls
    SeaweedFS lacks: `.endpoint_url`, `.access_key`, `.secret_key`, `.client()`."""
    server = MotoS3()
    try:
        yield start_service(server)
    finally:
        server.stop()
