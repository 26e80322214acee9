"""C-MOVE at full speed: one long-lived Storage SCP per host (`manage.py storescp`)
routes each instance to the study run that asked for it, so several C-MOVEs run at once
within the PACS's association limit (measured at the PACS); what nobody asked for is
kept aside with its reason; a PACS that cannot reach us fails the attempt clearly; a
worker killed mid-C-MOVE loses nothing."""

import json
import os
import signal
import threading
import time

import psutil
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove, Verification

from dicomnet import scu as dicomnet
from migration import actions, dispatch, storescp, throttle
from migration.models import StoredInstance, StudyState, Wave, WaveState
from tests.fixtures_services import TEST_AET
from tests.migration import support
from tests.migration.test_engine import run_in_process, running_wave

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class PacsAssociations(threading.Thread):
    """Samples, at the PACS process, its associations: established TCP connections on
    its DICOM port (ours to it) plus those it opened to our Storage SCP (its C-STOREs
    back); `stores` keeps the second kind alone (C-MOVEs delivering at once); `studies`
    the engine's association slots in use for the source (studies in flight)."""

    def __init__(self, pid, dicom_port, scp_port, source_id):
        super().__init__(daemon=True)
        self.pacs = psutil.Process(pid)
        self.ports = (dicom_port, scp_port)
        self.slots = throttle.Slots(source_id)
        self.samples, self.stores, self.studies = [], [], []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            inbound = outbound = 0
            for c in self.pacs.net_connections(kind="tcp"):
                if c.status != psutil.CONN_ESTABLISHED:
                    continue
                inbound += bool(c.laddr and c.laddr.port == self.ports[0])
                outbound += bool(c.raddr and c.raddr.port == self.ports[1])
            self.samples.append(inbound + outbound)
            self.stores.append(outbound)
            self.studies.append(self.slots.in_use())
            time.sleep(0.001)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join()


def move_source(orthanc_factory, aet, mix, seed, **fields):
    orthanc = orthanc_factory(aet=aet, config_overrides={"DicomThreadsCount": 12})
    studies = support.mixed_studies(seed=seed, mix=mix)
    support.upload(orthanc, studies)
    source = support.make_source(orthanc, name=aet.lower(), retrieve_method="move", **fields)
    support.make_inventory(source, studies)
    return orthanc, source, studies


def run_wave(wave, timeout=300):
    actions.change_wave(wave, "start")
    support.wait_for(
        lambda: Wave.objects.get(pk=wave.pk).state == WaveState.DONE,
        timeout=timeout,
        message="the wave to finish",
    )


def assert_all_stored(wave, studies):
    rows = {row.study.study_uid: row for row in wave.ledger.select_related("study")}
    assert {uid: row.state for uid, row in rows.items()} == dict.fromkeys(studies, StudyState.DONE)
    for uid, datasets in studies.items():
        stored = StoredInstance.objects.filter(ledger=rows[uid])
        assert {s.sop_uid for s in stored} == {str(ds.SOPInstanceUID) for ds in datasets}
        assert rows[uid].instances_reported == rows[uid].instances_stored == len(datasets)


def test_twenty_studies_migrate_by_c_move_four_at_once_and_the_pacs_never_exceeds_its_limit(
    orthanc_factory, migration_s3, bucket, move_scp, migration_worker, storage_scp_port
):
    mix = (("CT", "explicit", "ISO_IR 100", 20, 30, 256),)
    orthanc, source, studies = move_source(
        orthanc_factory, "MOVE8", mix, seed=1600, max_associations=8
    )
    destination = support.s3_destination(migration_s3, bucket)
    wave, _info = actions.create_wave(name="by-move", source=source, destination=destination)
    assert dispatch.streams(source, [(wave.pk, None)]) == 4

    watched = (orthanc.proc.pid, orthanc.dicom_port, storage_scp_port, source.pk)
    with PacsAssociations(*watched) as pacs:
        run_wave(wave)

    assert_all_stored(wave, studies)
    assert len(pacs.samples) > 100, "the PACS was watched throughout the wave"
    assert max(pacs.samples) <= 8
    assert max(pacs.studies) == 4, "four studies in flight at once"
    assert max(pacs.stores) >= 3, "the PACS delivered several C-MOVEs at once"
    assert not storescp.kept_aside()


def test_an_instance_nobody_asked_for_is_kept_aside_with_its_reason(
    orthanc_pacs, move_scp, engine_settings
):
    uid = orthanc_pacs.study_uids[0]
    ae = AE(ae_title=TEST_AET)  # a C-MOVE nobody on this host registered a route for
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate(orthanc_pacs.host, orthanc_pacs.port, ae_title=orthanc_pacs.aet)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = uid
    responses = assoc.send_c_move(query, TEST_AET, StudyRootQueryRetrieveInformationModelMove)
    statuses = [status.Status for status, _identifier in responses]
    assoc.release()

    assert statuses[-1] == 0x0000
    notes = [n for n in storescp.kept_aside() if n["study_instance_uid"] == uid]
    assert len(notes) == len(orthanc_pacs.studies[uid])
    for note in notes:
        assert note["reason"] == f"no study run on this host asked for study {uid} as {TEST_AET}"
        kept = os.path.join(engine_settings["MIGRATION_STORAGE_SCP_ASIDE"], f"{note['sha256']}.dcm")
        assert os.path.getsize(kept) == note["size"]


def test_a_pacs_that_sends_to_the_wrong_port_or_an_unknown_ae_fails_the_attempt_clearly(
    orthanc_factory, migration_s3, bucket, move_scp, storage_scp_port
):
    orthanc = orthanc_factory(aet="WRONGPORT", modalities={TEST_AET: ("127.0.0.1", 9)})
    studies = support.mixed_studies(seed=1601, mix=(("CT", "explicit", "ISO_IR 100", 1, 2, 16),))
    support.upload(orthanc, studies)
    source = support.make_source(orthanc, name="wrong-port", retrieve_method="move")
    support.make_inventory(source, studies)
    unknown = support.make_source(
        orthanc, name="unknown-ae", retrieve_method="move", move_destination="NOSUCHAE"
    )
    support.make_inventory(unknown, studies)
    destination = support.s3_destination(migration_s3, bucket)

    for name, src in (("to-wrong-port", source), ("to-unknown-ae", unknown)):
        wave = running_wave(name, src, destination)
        assert set(run_in_process(wave).values()) == {StudyState.FAILED}
        row = wave.ledger.get()
        assert row.error_class == "pacs_refused"
        assert "none reached this host's Storage SCP" in row.last_error
        assert f"check that the PACS knows {src.move_destination}" in row.last_error
        assert f"port {storage_scp_port}" in row.last_error


def test_a_worker_killed_mid_c_move_loses_nothing(
    orthanc_factory, migration_s3, bucket, move_scp, start_worker, settings, engine_settings
):
    queue = f"{engine_settings['MIGRATION_QUEUE']}-killmove"
    settings.MIGRATION_QUEUE = queue
    mix = (("CT", "explicit", "ISO_IR 100", 1, 250, 16), ("MR", "explicit", "ISO_IR 192", 3, 2, 16))
    _orthanc, source, studies = move_source(orthanc_factory, "KILLMOVE", mix, seed=1602)
    big_uid = next(uid for uid, datasets in studies.items() if len(datasets) == 250)
    client = migration_s3.client()
    prefix = f"studies/{big_uid}/series/"
    first = start_worker("doomed-move", MIGRATION_QUEUE=queue)
    wave, _info = actions.create_wave(
        name="killed-move", source=source, destination=support.s3_destination(migration_s3, bucket)
    )
    actions.change_wave(wave, "start")

    support.wait_for(
        lambda: len(support.listed_keys(client, bucket, prefix)) >= 20,
        interval=0.05, message="the big study to be half-way",
    )  # fmt: skip
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    assert len(support.listed_keys(client, bucket, prefix)) < 250

    start_worker("successor-move", MIGRATION_QUEUE=queue)
    support.wait_for(
        lambda: Wave.objects.get(pk=wave.pk).state == WaveState.DONE,
        timeout=180,
        message="the wave to finish",
    )

    assert_all_stored(wave, studies)
    big = wave.ledger.get(study__study_uid=big_uid)
    assert big.attempts >= 2
    manifest = json.loads(client.get_object(Bucket=bucket, Key=big.manifest_key)["Body"].read())
    assert sorted(e["key"] for e in manifest["instances"]) == sorted(
        support.listed_keys(client, bucket, prefix)
    )
    aside = [n for n in storescp.kept_aside() if n["study_instance_uid"] in studies]
    assert {n["study_instance_uid"] for n in aside} <= {big_uid}  # after the kill: kept, not lost


def test_the_storage_scp_answers_c_echo_as_its_ae_and_rejects_another_called_ae(
    move_scp, storage_scp_port
):
    assert dicomnet.echo("127.0.0.1", storage_scp_port, TEST_AET)
    ae = AE(ae_title="CCPROBE")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", storage_scp_port, ae_title="NOTTHESCP")
    assert assoc.is_rejected
    rejection = assoc.acceptor.primitive
    assert (rejection.result, rejection.result_source, rejection.diagnostic) == (1, 1, 7)
