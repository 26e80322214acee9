"""Deciding a conflict: "use the second copy" swaps the copies in SeaweedFS, the manifest
rows, the manifest object and the record, audited, and a re-run still verifies."""

import json

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from devstack import synthetic
from migration import actions, engine, ledger
from migration.models import Conflict, StoredInstance, StudyState, Wave, WaveState
from migration.storage import sha256_hex
from tests.migration import support

pytestmark = pytest.mark.django_db(transaction=True)


def running_wave(name, source, destination):
    wave, _info = actions.create_wave(name=name, source=source, destination=destination)
    Wave.objects.filter(pk=wave.pk).update(state=WaveState.RUNNING, started_at=timezone.now())
    return wave


def run_in_process(wave, owner="in-process"):
    states = []
    while (row := ledger.claim_next([wave.pk], owner)) is not None:
        states.append(engine.migrate_study(row, owner))
    return states


def object_sha(client, bucket, key):
    return sha256_hex(client.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture
def conflicted(orthanc_factory, migration_s3, bucket):
    """A study migrated to S3 whose first instance came twice with different pixels."""
    orthanc = orthanc_factory(aet="TWINPACS")
    (datasets,) = synthetic.iter_studies(studies=1, instances=2, rows=16, cols=16, seed=530)
    twin = synthetic.duplicate_sop_different_content(datasets[0])
    twin.PatientID = "OTHER-PATIENT"
    studies = {str(datasets[0].StudyInstanceUID): datasets}
    support.upload(orthanc, {"twin": [twin], **studies})
    source = support.make_source(orthanc)
    support.make_inventory(source, studies)
    destination = support.s3_destination(migration_s3, bucket)
    wave = running_wave("twins", source, destination)
    assert run_in_process(wave) == [StudyState.DONE]
    return source, destination, wave, Conflict.objects.get()


def test_using_the_second_copy_makes_it_canonical_and_keeps_the_first_aside(
    conflicted, migration_s3, bucket, cast
):
    _source, _destination, wave, conflict = conflicted
    first_sha, second_sha, second_key = (
        conflict.kept_sha256,
        conflict.other_sha256,
        conflict.other_key,
    )
    client = migration_s3.client()

    actions.decide_conflict(conflict, Conflict.Decision.USE_SECOND, cast.engineer, "newer scan")

    conflict.refresh_from_db()
    assert conflict.decision == Conflict.Decision.USE_SECOND
    assert object_sha(client, bucket, conflict.kept_key) == second_sha
    assert conflict.kept_sha256 == second_sha and conflict.other_sha256 == first_sha
    assert object_sha(client, bucket, conflict.other_key) == first_sha
    assert "/conflicts/" in f"/{conflict.other_key}" and conflict.other_key != second_key
    assert second_key not in support.listed_keys(client, bucket)
    rows = {r.role: r for r in StoredInstance.objects.filter(sop_uid=conflict.sop_uid)}
    assert (rows["stored"].key, rows["stored"].sha256) == (conflict.kept_key, second_sha)
    assert (rows["conflict"].key, rows["conflict"].sha256) == (conflict.other_key, first_sha)
    # the canonical copy is where the study's key format places it; the conflict copy is not
    assert rows["stored"].own_key == "" and rows["conflict"].own_key == conflict.other_key


def test_the_manifest_object_follows_the_swap_and_the_swap_is_audited(
    conflicted, migration_s3, bucket, cast
):
    _source, _destination, wave, conflict = conflicted
    client = migration_s3.client()

    actions.decide_conflict(conflict, Conflict.Decision.USE_SECOND, cast.engineer)

    row = wave.ledger.get()
    body = client.get_object(Bucket=bucket, Key=row.manifest_key)["Body"].read()
    assert sha256_hex(body) == row.manifest_sha256
    listed = {(i["key"], i["sha256"], i["role"]) for i in json.loads(body)["instances"]}
    rows = {(i.key, i.sha256, i.role) for i in row.instances.all()}
    assert listed == rows
    swaps = [e for e in LogEntry.objects.get_for_object(conflict) if "other_key" in e.changes_dict]
    assert cast.engineer in [e.actor for e in swaps]


def test_a_study_whose_second_copy_was_chosen_migrates_again_verified(
    conflicted, migration_s3, bucket, cast
):
    source, destination, _wave, conflict = conflicted
    actions.decide_conflict(conflict, Conflict.Decision.USE_SECOND, cast.engineer)
    client = migration_s3.client()
    objects = support.listed_keys(client, bucket)

    again = running_wave("again", source, destination)

    assert run_in_process(again) == [StudyState.DONE]
    after = support.listed_keys(client, bucket)
    assert {k for k in after if k.endswith(".dcm")} == {k for k in objects if k.endswith(".dcm")}
    assert (
        object_sha(client, bucket, conflict.kept_key)
        == Conflict.objects.get(pk=conflict.pk).kept_sha256
    )
