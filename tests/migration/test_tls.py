"""DICOM TLS against Orthanc with TLS switched on (its DICOM port speaks TLS only and
asks for our certificate): C-ECHO, the inventory's C-FIND and C-GET sample, the engine's
C-FIND and C-GET, and C-MOVE into this host's Storage SCP over TLS; a certificate the
other side does not trust is refused with a message that says which side and why."""

import os

import pytest

from devstack.services.base import free_port
from devstack.services.orthanc import Orthanc, modality_entry
from inventory import actions as inventory
from inventory import engine
from inventory.models import Series
from migration.models import StoredInstance, StudyState
from tests.fixtures_engine import worker_env
from tests.fixtures_processes import StorageScp
from tests.fixtures_services import TEST_AET, start_service
from tests.migration import support
from tests.migration.test_engine import run_in_process, running_wave
from tests.pki import Authority

pytestmark = pytest.mark.django_db(transaction=True)
TLS_SCP_AET = "CCTLSSCP"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca, rogue = Authority(folder, "hospital-ca"), Authority(folder, "rogue-ca")
    return {
        "ca": ca.cert,
        "rogue_ca": rogue.cert,
        "orthanc": ca.issue("orthanc"),
        "client": ca.issue("migrator"),
        "scp": ca.issue("storescp"),
        "intruder": rogue.issue("intruder"),
    }


@pytest.fixture(scope="module")
def tls_scp_port():
    return free_port()


@pytest.fixture(scope="module")
def tls_pacs(pki, tls_scp_port, tmp_path_factory):
    """Orthanc with DICOM TLS on, trusting only the hospital CA, and knowing our TLS
    Storage SCP as a modality it reaches over TLS; seeded with four small studies."""
    cert, key = pki["orthanc"]
    scp = {**modality_entry(TLS_SCP_AET, "127.0.0.1", tls_scp_port), "UseDicomTls": True}
    orthanc = Orthanc(
        aet="TLSPACS", workdir=tmp_path_factory.mktemp("tls-orthanc"),
        config_overrides={
            "DicomTlsEnabled": True, "DicomTlsCertificate": cert, "DicomTlsPrivateKey": key,
            "DicomTlsTrustedCertificates": pki["ca"], "DicomTlsRemoteCertificateRequired": True,
            "DicomModalities": {TEST_AET: modality_entry(TEST_AET, "127.0.0.1", 9),
                                TLS_SCP_AET: scp},
        },
    )  # fmt: skip
    start_service(orthanc)
    studies = support.mixed_studies(seed=1700, mix=(("CT", "explicit", "ISO_IR 100", 4, 2, 16),))
    support.upload(orthanc, studies)
    yield orthanc, studies
    orthanc.stop()


@pytest.fixture(scope="module")
def tls_scp(pki, tls_scp_port, engine_settings, migration_s3, django_db_setup, tmp_path_factory):
    """A second `manage.py storescp` of this host, speaking DICOM TLS."""
    cert, key = pki["scp"]
    socket_path = f"/tmp/cc-migtest-tlsscp-{os.getpid()}.sock"
    env = worker_env(
        engine_settings, migration_s3, MIGRATION_STORAGE_SCP_PORT=str(tls_scp_port),
        MIGRATION_STORAGE_SCP_AET=TLS_SCP_AET, MIGRATION_STORAGE_SCP_SOCKET=socket_path,
        MIGRATION_STORAGE_SCP_TLS_CERT=cert, MIGRATION_STORAGE_SCP_TLS_KEY=key,
        MIGRATION_STORAGE_SCP_TLS_CA=pki["ca"],
    )  # fmt: skip
    scp = StorageScp(tmp_path_factory.mktemp("tlsscp") / "storescp.log", env=env).start()
    yield socket_path
    scp.stop()


def tls_source(orthanc, pki, name, client="client", ca="ca", **fields):
    cert, key = pki[client]
    return support.make_source(
        orthanc, name=name, tls=True, tls_ca_file=pki[ca], tls_cert_file=cert,
        tls_key_file=key, **fields,
    )  # fmt: skip


def test_echo_find_get_and_move_work_over_dicom_tls(
    tls_pacs, tls_scp, pki, migration_s3, bucket, settings
):
    orthanc, studies = tls_pacs
    source = tls_source(orthanc, pki, "tls-get")
    settings.INVENTORY_SAMPLE_SERIES = 50

    echoed = inventory.echo_source(source)
    crawl = engine.execute_crawl(inventory.start_crawl(source, enqueue=False).pk)

    assert echoed.ok, echoed.message
    assert crawl["complete"] is True and crawl["studies"] == len(studies)
    sampled = Series.objects.filter(study__source=source).exclude(transfer_syntax="")
    assert sampled.count() == len(studies)
    destination = support.s3_destination(migration_s3, bucket)
    by_get = running_wave("tls-by-get", source, destination)
    assert set(run_in_process(by_get).values()) == {StudyState.DONE}

    settings.MIGRATION_STORAGE_SCP_SOCKET = tls_scp
    moving = tls_source(
        orthanc, pki, "tls-move", retrieve_method="move", move_destination=TLS_SCP_AET
    )
    support.make_inventory(moving, studies)
    by_move = running_wave("tls-by-move", moving, destination)
    assert set(run_in_process(by_move).values()) == {StudyState.DONE}
    for wave in (by_get, by_move):
        stored = StoredInstance.objects.filter(ledger__wave=wave)
        assert stored.count() == sum(len(datasets) for datasets in studies.values())


@pytest.mark.parametrize(
    ("client", "ca", "expected"),
    [
        ("intruder", "ca", "refused our client certificate"),
        ("client", "rogue_ca", "was refused (self-signed certificate in certificate chain)"),
    ],
)
def test_a_certificate_the_other_side_does_not_trust_is_refused_with_a_clear_message(
    tls_pacs, pki, migration_s3, bucket, client, ca, expected
):
    orthanc, studies = tls_pacs
    source = tls_source(orthanc, pki, f"tls-{client}-{ca}", client=client, ca=ca)
    support.make_inventory(source, dict(list(studies.items())[:1]))

    echoed = inventory.echo_source(source)
    wave = running_wave(
        f"wrong-{client}-{ca}", source, support.s3_destination(migration_s3, bucket)
    )
    states = run_in_process(wave)

    assert not echoed.ok and expected in echoed.message and "TLS" in echoed.message
    assert set(states.values()) == {StudyState.QUARANTINED}
    row = wave.ledger.get()
    assert row.error_class == "configuration"
    assert (
        expected in row.last_error and f"TLSPACS@127.0.0.1:{orthanc.dicom_port}" in row.last_error
    )
