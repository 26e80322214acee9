"""The study locator against a real Orthanc (legacy), SeaweedFS (cloud) and a real Celery
worker: a study found by accession number and by Study UID in each state (only legacy,
in flight, in cloud, discrepant), the `locate --json` contract, the live C-FIND, and
Migrate now putting a queued study at the head of the queue."""

import io
import json

import pytest
from django.core.management import call_command

from core.models import PHIAccess
from hybrid import actions as hybrid_actions
from hybrid import locate
from inventory.models import Study
from migration import actions, discrepancies, ledger
from migration.models import StudyState, ValidationRun, Wave, WaveState, WaveStudy
from tests.migration import support
from tests.migration import validation_support as vs
from tests.waiting import wait_for

CONTRACT = ["study", "on_legacy", "in_cloud", "verified", "wave", "state", "discrepancies"]


def run_wave(wave):
    actions.change_wave(wave, "start")
    wait_for(
        lambda: Wave.objects.get(pk=wave.pk).state == WaveState.DONE,
        timeout=180, message="the wave to finish",
    )  # fmt: skip


def located(key, value):
    (found,) = locate.locate(key, value)
    return found


def locate_json(**option):
    out = io.StringIO()
    call_command("locate", *[f"--{k.replace('_', '-')}={v}" for k, v in option.items()],
                 "--json", stdout=out)  # fmt: skip
    return json.loads(out.getvalue())


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_locator_finds_a_study_by_accession_and_by_uid_in_each_state(
    mixed_pacs, migration_s3, bucket, migration_worker
):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies, ("CT", "MR", "OT", "US"))
    legacy_only, in_cloud, discrepant, in_flight = list(chosen)
    wave = vs.new_wave(
        "located", orthanc, {u: chosen[u] for u in (in_cloud, discrepant)}, migration_s3, bucket
    )
    source = wave.source
    run_wave(wave)
    support.make_inventory(source, {u: chosen[u] for u in (legacy_only, in_flight)})
    damaged = WaveStudy.objects.get(wave=wave, study__study_uid=discrepant)
    vs.delete_object(migration_s3, wave, damaged.instances.first().key)
    run = discrepancies.start_run(wave, "reconcile")
    wait_for(
        lambda: ValidationRun.objects.filter(pk=run.pk, state="done").exists(),
        timeout=120, message="the reconciliation",
    )  # fmt: skip
    later, _info = actions.create_wave(
        name="later",
        source=source,
        destination=wave.destination,
        modalities=[str(chosen[in_flight][0].Modality)],
    )
    claimed = ledger.claim_next([later.pk], "test-worker")  # as a worker starting it would
    assert claimed.study.study_uid == in_flight

    expected = {
        legacy_only: ("only_legacy", False, False, None),
        in_flight: ("in_flight", False, False, "later"),
        in_cloud: ("in_cloud", True, True, "located"),
        discrepant: ("discrepant", True, True, "located"),
    }
    for uid, (state, in_the_cloud, verified, wave_name) in expected.items():
        accession = str(chosen[uid][0].AccessionNumber)
        for key, value in (("accession", accession), ("study", uid)):
            found = located(key, value)
            assert found["study"] == uid and found["on_legacy"], (key, uid)
            assert (found["state"], found["in_cloud"], found["verified"], found["wave"]) == (
                state, in_the_cloud, verified, wave_name,
            ), (key, uid)  # fmt: skip
        (answer,) = locate_json(accession=accession)
        assert list(answer)[: len(CONTRACT)] == CONTRACT
        assert answer["state"] == state and "patient" not in answer

    cloud = located("study", in_cloud)
    assert cloud["manifest"]["key"] and cloud["manifest"]["instances"] == len(chosen[in_cloud])
    assert cloud["discrepancies"] == [] and cloud["history"][0]["state"] == "done"
    bad = located("study", discrepant)
    assert [d["kind"] for d in bad["discrepancies"]] == ["missing"]
    assert located("study", legacy_only)["history"] == []


@pytest.mark.django_db(transaction=True)
def test_the_live_c_find_asks_the_legacy_pacs_now(mixed_pacs):
    orthanc, studies = mixed_pacs
    uid, datasets = next(iter(studies.items()))
    source = support.make_source(orthanc, name="live")
    answer = locate.live_find(source, uid)
    assert answer["ok"] and answer["found"] and answer["instances"] == len(datasets)
    missing = locate.live_find(source, "1.2.826.0.1.3680043.2.1125.999.1")
    assert missing["ok"] and not missing["found"]
    source.port = 1  # nothing listens there
    down = locate.live_find(source, uid)
    assert not down["ok"] and "connection refused" in down["detail"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_migrate_now_moves_a_queued_study_to_the_head_of_the_queue(
    cast, mixed_pacs, migration_s3, bucket, migration_worker
):
    orthanc, studies = mixed_pacs
    chosen = dict(list(studies.items())[:8])
    source = support.make_source(orthanc, name="queue", max_associations=1)
    support.make_inventory(source, chosen)
    wave, _info = actions.create_wave(
        name="bulk", source=source, destination=support.s3_destination(migration_s3, bucket)
    )
    last = wave.ledger.order_by("-pk").first()
    actions.set_paused(True, reason="test: queue the wave before it runs")
    actions.change_wave(wave, "start")
    outcome = hybrid_actions.migrate_now(last.study, cast.engineer)
    urgent = Wave.objects.get(source=source, name__startswith="urgent-")
    assert outcome == f"moved to the head of wave {urgent.name}"
    actions.set_paused(False)
    wait_for(
        lambda: not Wave.objects.filter(source=source, state=WaveState.RUNNING).exists(),
        timeout=180, message="the waves to finish",
    )  # fmt: skip
    rows = WaveStudy.objects.filter(study__source=source).order_by("started_at")
    order = list(rows.exclude(state=StudyState.CANCELLED).values_list("study_id", "state"))
    assert order[0] == (last.study_id, StudyState.DONE), order
    assert {state for _pk, state in order} == {StudyState.DONE} and len(order) == 8
    moved = WaveStudy.objects.get(pk=last.pk)  # the same ledger row, moved: it ran once, ahead
    assert (moved.wave_id, moved.state) == (urgent.pk, StudyState.DONE)


@pytest.mark.django_db(transaction=True)
def test_migrate_now_takes_a_study_of_no_running_wave_into_the_expedite_wave(
    cast, mixed_pacs, migration_s3, bucket
):
    orthanc, studies = mixed_pacs
    uid = next(iter(studies))
    source = support.make_source(orthanc, name="draft")
    support.make_inventory(source, {uid: studies[uid]})
    draft, _info = actions.create_wave(
        name="drafted", source=source, destination=support.s3_destination(migration_s3, bucket)
    )
    study = Study.objects.get(study_uid=uid, source=source)
    outcome = hybrid_actions.migrate_now(study, cast.lead)
    urgent = Wave.objects.get(source=source, name__startswith="urgent-")
    assert outcome == f"moved to the head of wave {urgent.name}"
    rows = {r.wave.name: r.state for r in WaveStudy.objects.filter(study=study)}
    assert rows == {urgent.name: StudyState.QUEUED}  # moved out of the draft, not copied
    assert urgent.state == WaveState.RUNNING and urgent.priority > draft.priority
    assert located("study", uid)["state"] == "queued"
    assert located("study", uid)["wave"] == urgent.name
    assert not PHIAccess.objects.exists()
    # the worker takes it at once; the test ends with nothing in flight (a study still
    # being recorded when the database is flushed deadlocks the flush)
    wait_for(
        lambda: Wave.objects.get(pk=urgent.pk).state == WaveState.DONE,
        timeout=180, message="the expedited study to arrive",
    )  # fmt: skip
    assert located("study", uid)["state"] == "in_cloud"
