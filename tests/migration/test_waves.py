"""Waves end to end through a real Celery worker: 50 studies of mixed modalities,
transfer syntaxes and character sets to S3 (C-GET and C-MOVE) and to DICOMweb, every
instance verified; and never more than one association when the PACS allows one."""

import json
import threading
import time
from io import StringIO

import psutil
import pytest
from django.core.management import call_command

from migration import actions
from migration import dicomweb as dicomweb_client
from migration.models import Destination, StoredInstance, StudyState, Wave, WaveState
from migration.storage import sha256_hex
from tests.migration import support
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def run_waves(waves, timeout=300):
    for wave in waves:
        actions.change_wave(wave, "start")
    wait_for(
        lambda: (
            set(Wave.objects.filter(pk__in=[w.pk for w in waves]).values_list("state", flat=True))
            == {WaveState.DONE}
        ),
        timeout=timeout,
        message="the waves to finish",
    )
    for wave in waves:
        wave.refresh_from_db()
    return waves


def assert_every_instance_is_in_the_manifest(wave, studies):
    rows = {row.study.study_uid: row for row in wave.ledger.select_related("study")}
    assert {uid: row.state for uid, row in rows.items()} == dict.fromkeys(studies, StudyState.DONE)
    for uid, datasets in studies.items():
        stored = StoredInstance.objects.filter(ledger=rows[uid])
        assert {s.sop_uid for s in stored} == {str(ds.SOPInstanceUID) for ds in datasets}
        assert rows[uid].instances_reported == rows[uid].instances_stored == len(datasets)


def test_fifty_mixed_studies_reach_s3_and_dicomweb_by_c_get_and_s3_by_c_move_all_verified(
    mixed_pacs, migration_s3, bucket, dicomweb_store, migration_worker, move_scp
):
    """Three waves at once over the same 50 studies (six modalities, five transfer
    syntaxes, two character sets): C-GET to S3, C-GET to DICOMweb, C-MOVE to S3."""
    orthanc, studies = mixed_pacs
    by_get = support.make_source(orthanc, name="by-get", max_associations=3)
    by_move = support.make_source(orthanc, name="by-move", retrieve_method="move")
    support.make_inventory(by_get, studies)
    support.make_inventory(by_move, studies)
    to_s3 = support.s3_destination(migration_s3, bucket, prefix="get")
    to_web = Destination.objects.create(
        name="web", kind="dicomweb", url=dicomweb_store.dicomweb_url
    )
    to_s3_by_move = support.s3_destination(migration_s3, bucket, name="moved", prefix="move")
    waves = [
        actions.create_wave(name=name, source=source, destination=destination)[0]
        for name, source, destination in (
            ("get-to-s3", by_get, to_s3), ("get-to-web", by_get, to_web),
            ("move-to-s3", by_move, to_s3_by_move),
        )
    ]  # fmt: skip
    assert [w.ledger.count() for w in waves] == [50, 50, 50]

    run_waves(waves)

    for wave in waves:
        assert_every_instance_is_in_the_manifest(wave, studies)
    client = migration_s3.client()
    for wave in (waves[0], waves[2]):
        prefix = wave.destination.prefix
        objects = support.listed_keys(client, bucket, f"{prefix}/studies/")
        stored = StoredInstance.objects.filter(ledger__wave=wave)
        assert {s.key for s in stored} == {k for k in objects if k.endswith(".dcm")}
        for item in stored:
            body = client.get_object(Bucket=bucket, Key=item.key)["Body"].read()
            assert (len(body), sha256_hex(body)) == (item.size, item.sha256)
        for row in wave.ledger.all():
            manifest = json.loads(
                client.get_object(Bucket=bucket, Key=row.manifest_key)["Body"].read()
            )
            assert manifest["stored"] == row.instances_stored and manifest["quarantined"] == []
    for item in StoredInstance.objects.filter(ledger__wave=waves[1]).select_related(
        "ledger__study"
    ):
        body = dicomweb_client.wado_instance(
            dicomweb_store.dicomweb_url, item.ledger.study.study_uid, item.series_uid, item.sop_uid
        )
        assert sha256_hex(body) == item.sha256
    stored = StoredInstance.objects.filter(ledger__wave=waves[0])
    assert len({str(d[0].Modality) for d in studies.values()}) == 6
    assert len(set(stored.values_list("transfer_syntax", flat=True))) == 5
    assert {str(d[0].SpecificCharacterSet) for d in studies.values()} == {
        "ISO_IR 100",
        "ISO_IR 192",
    }


class AssociationSampler(threading.Thread):
    """Counts the PACS process's established TCP connections on its DICOM port (its side
    of each association), as often as it can, until stopped."""

    def __init__(self, pid, port):
        super().__init__(daemon=True)
        self.pacs = psutil.Process(pid)
        self.port = port
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            open_now = sum(
                1
                for c in self.pacs.net_connections(kind="tcp")
                if c.laddr and c.laddr.port == self.port and c.status == psutil.CONN_ESTABLISHED
            )
            self.samples.append(open_now)
            time.sleep(0.001)


def test_with_a_limit_of_one_association_the_pacs_never_sees_two(
    orthanc_factory, migration_s3, bucket, migration_worker
):
    orthanc = orthanc_factory(aet="ONEASSOC")
    studies = support.mixed_studies(seed=800, mix=(("CT", "explicit", "ISO_IR 100", 12, 3, 16),))
    support.upload(orthanc, studies)
    source = support.make_source(orthanc, max_associations=1)
    support.make_inventory(source, studies)
    wave, _info = actions.create_wave(
        name="gentle", source=source, destination=support.s3_destination(migration_s3, bucket)
    )
    sampler = AssociationSampler(orthanc.proc.pid, orthanc.dicom_port)
    sampler.start()
    try:
        run_waves([wave])
    finally:
        sampler.halt.set()
        sampler.join()

    assert wave.ledger.filter(state=StudyState.DONE).count() == 12
    # watched from before the first association and while they were open (how many samples
    # fit in the wave depends on the machine's load, not on the engine)
    assert sampler.samples[0] == 0 and 1 in sampler.samples, "the PACS was watched"
    assert max(sampler.samples) == 1


def test_the_wave_commands_create_start_wait_and_report_status_as_json(
    mixed_pacs, migration_s3, bucket, migration_worker
):
    orthanc, studies = mixed_pacs
    source = support.make_source(orthanc, name="cli-pacs")
    support.make_inventory(source, studies)
    support.s3_destination(migration_s3, bucket, name="cli-cloud")
    out = StringIO()

    call_command("wave", "create", "cli-wave", "--pacs", "cli-pacs", "--destination", "cli-cloud",
                 "--modality", "MR", "--modality", "US", "--from", "2010-01-01",
                 "--to", "2020-12-31", stdout=out)  # fmt: skip
    call_command(
        "wave", "start", "cli-wave", "--wait", "--timeout", "240", stdout=out, stderr=StringIO()
    )
    status_out = StringIO()
    call_command("wave", "status", "cli-wave", "--json", stdout=status_out)

    wanted = {u for u, d in studies.items() if str(d[0].Modality) in ("MR", "US")}
    assert "created wave cli-wave: 18 studies" in out.getvalue()
    status = json.loads(status_out.getvalue().strip().splitlines()[-1])
    assert status["state"] == "done" and status["total"] == len(wanted) == 18
    assert status["counts"]["done"] == 18 and status["percent"] == 100.0
    assert status["instances_stored"] == sum(len(studies[u]) for u in wanted)
    assert status["bytes_stored"] > 0 and status["eta_seconds"] == 0
