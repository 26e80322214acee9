"""Interrupted at any point, a study is reclaimed and finishes with every instance exactly
once: a worker killed with SIGKILL mid-study, an S3 store that goes away mid-wave."""

import json
import os
import signal

import pytest

from migration import actions
from migration.models import StudyState, Wave, WaveState
from tests.migration import support
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def seeded_source(orthanc_factory, aet, mix, seed):
    orthanc = orthanc_factory(aet=aet)
    studies = support.mixed_studies(seed=seed, mix=mix)
    support.upload(orthanc, studies)
    source = support.make_source(orthanc, name=aet.lower())
    support.make_inventory(source, studies)
    return source, studies


def wave_done(wave):
    return Wave.objects.get(pk=wave.pk).state == WaveState.DONE


def test_a_worker_killed_mid_study_leaves_it_to_the_next_worker_which_stores_each_instance_once(
    orthanc_factory, migration_s3, bucket, start_worker, settings, engine_settings
):
    queue = f"{engine_settings['MIGRATION_QUEUE']}-kill"
    settings.MIGRATION_QUEUE = queue
    mix = (("CT", "explicit", "ISO_IR 100", 1, 250, 16), ("MR", "explicit", "ISO_IR 192", 3, 2, 16))
    source, studies = seeded_source(orthanc_factory, "KILLPACS", mix, seed=900)
    big_uid = next(uid for uid, datasets in studies.items() if len(datasets) == 250)
    client = migration_s3.client()
    prefix = f"studies/{big_uid}/series/"
    first = start_worker("doomed", MIGRATION_QUEUE=queue)
    wave, _info = actions.create_wave(
        name="killed", source=source, destination=support.s3_destination(migration_s3, bucket)
    )
    actions.change_wave(wave, "start")

    wait_for(
        lambda: len(support.listed_keys(client, bucket, prefix)) >= 20,
        interval=0.05, message="the big study to be half-way",
    )  # fmt: skip
    big = wave.ledger.get(study__study_uid=big_uid)
    assert big.state in (StudyState.RETRIEVING, StudyState.UPLOADING)
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    assert len(support.listed_keys(client, bucket, prefix)) < 250

    start_worker("successor", MIGRATION_QUEUE=queue)
    wait_for(lambda: wave_done(wave), timeout=180, message="the wave to finish")

    big.refresh_from_db()
    assert big.state == StudyState.DONE and big.attempts == 2
    assert set(wave.ledger.values_list("state", flat=True)) == {StudyState.DONE}
    keys = support.listed_keys(client, bucket, prefix)
    assert len(keys) == 250
    manifest = json.loads(client.get_object(Bucket=bucket, Key=big.manifest_key)["Body"].read())
    assert sorted(e["key"] for e in manifest["instances"]) == sorted(keys)
    assert {e["sop_instance_uid"] for e in manifest["instances"]} == {
        str(ds.SOPInstanceUID) for ds in studies[big_uid]
    }


def test_an_s3_outage_mid_wave_makes_studies_retry_and_finish_once_it_is_back(
    orthanc_factory, migration_s3, bucket, migration_worker
):
    mix = (("CT", "explicit", "ISO_IR 100", 14, 3, 16),)
    source, studies = seeded_source(orthanc_factory, "OUTAGEPACS", mix, seed=910)
    wave, _info = actions.create_wave(
        name="outage", source=source, destination=support.s3_destination(migration_s3, bucket)
    )
    actions.change_wave(wave, "start")
    wait_for(
        lambda: wave.ledger.filter(state=StudyState.DONE).count() >= 2,
        interval=0.05, message="two studies done",
    )  # fmt: skip

    migration_s3.stop()
    try:
        failed = wait_for(
            lambda: wave.ledger.filter(error_class="destination_error").first(),
            message="a study to fail on the destination",
        )
        assert "S3" in failed.last_error
    finally:
        migration_s3.start()

    wait_for(lambda: wave_done(wave), timeout=180, message="the wave to finish")
    assert set(wave.ledger.values_list("state", flat=True)) == {StudyState.DONE}
    assert wave.ledger.filter(attempts__gt=1).exists()
    keys = support.listed_keys(migration_s3.client(), bucket, "studies/")
    instances = [k for k in keys if k.endswith(".dcm")]
    assert len(instances) == sum(len(d) for d in studies.values()) == 42
