"""`migration.expedite.expedite`: studies go to the head of the engine's queue, moved out
of a bulk wave's queue by a guarded update, never lost, duplicated or taken from a
worker; the engine claims them first."""

import pytest
from django.db.models.signals import post_save

from inventory.models import PacsSource, Study
from migration import expedite, ledger
from migration.models import Destination, StudyState, Wave, WaveState, WaveStudy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    source = PacsSource.objects.create(name="pacs", ae_title="PACS", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="cloud", kind="filesystem", path="/tmp/cc-x")
    studies = [
        Study.objects.create(source=source, study_uid=f"1.2.840.9.{n}", num_instances=1)
        for n in range(6)
    ]
    bulk = Wave.objects.create(
        name="bulk", source=source, destination=destination, state=WaveState.RUNNING
    )
    rows = [WaveStudy.objects.create(wave=bulk, study=s) for s in studies]
    return source, bulk, studies, rows


def test_queued_studies_move_to_the_urgent_wave_and_are_claimed_first_in_the_order_asked(world):
    source, bulk, studies, rows = world
    asked = [studies[4].study_uid, studies[2].study_uid, "9.9.9"]
    placed = expedite.expedite(source, asked, reason="test")
    assert placed.outcomes == {asked[0]: "moved", asked[1]: "moved", "9.9.9": "unknown"}
    urgent = placed.wave
    assert urgent.state == WaveState.RUNNING and urgent.priority > bulk.priority
    assert WaveStudy.objects.count() == 6  # moved, not copied
    assert set(urgent.ledger.values_list("pk", flat=True)) == {rows[4].pk, rows[2].pk}
    waves = ledger.running_waves(source.pk)
    assert waves[0] == urgent.pk
    first = ledger.claim_next(waves, "host:1:a")
    second = ledger.claim_next(waves, "host:1:b")
    third = ledger.claim_next(waves, "host:1:c")
    assert [first.pk, second.pk] == [rows[4].pk, rows[2].pk]  # the order asked
    assert third.wave_id == bulk.pk


def test_studies_in_flight_done_or_already_urgent_are_left_as_they_are(world):
    source, bulk, studies, rows = world
    WaveStudy.objects.filter(pk=rows[0].pk).update(state=StudyState.RETRIEVING)
    WaveStudy.objects.filter(pk=rows[1].pk).update(state=StudyState.DONE)
    expedite.expedite(source, [studies[2].study_uid], reason="first")
    placed = expedite.expedite(
        source, [s.study_uid for s in studies[:3]], reason="again", actor=None
    )
    assert placed.outcomes == {
        studies[0].study_uid: "in_flight",
        studies[1].study_uid: "done",
        studies[2].study_uid: "queued",
    }
    assert WaveStudy.objects.count() == 6
    assert WaveStudy.objects.get(pk=rows[0].pk).wave_id == bulk.pk


def test_a_row_claimed_while_being_moved_stays_with_its_worker(world):
    """The move is one conditional UPDATE: a worker that claims the row between the
    look-up and the move wins, and the study is not queued a second time."""
    source, bulk, studies, rows = world
    target = rows[3]

    def claim_first(sender, instance, created, **kwargs):
        if created and instance.name.startswith("urgent-"):
            ledger.claim_next([bulk.pk], "host:2:z")  # the oldest queued row: rows[0]…

    WaveStudy.objects.filter(pk__in=[r.pk for r in rows if r.pk != target.pk]).update(
        state=StudyState.DONE
    )
    post_save.connect(claim_first, sender=Wave)
    try:
        placed = expedite.expedite(source, [studies[3].study_uid], reason="race")
    finally:
        post_save.disconnect(claim_first, sender=Wave)
    assert placed.outcomes == {studies[3].study_uid: "in_flight"}
    row = WaveStudy.objects.get(pk=target.pk)
    assert (row.wave_id, row.state, row.lease_owner) == (bulk.pk, "retrieving", "host:2:z")
    assert WaveStudy.objects.count() == 6


def test_a_study_in_no_wave_is_added_with_the_sync_or_latest_destination(world):
    source, bulk, studies, rows = world
    lone = Study.objects.create(source=source, study_uid="1.2.840.9.77", num_instances=2)
    placed = expedite.expedite(source, [lone.study_uid], reason="new")
    assert placed.outcomes == {lone.study_uid: "added"}
    row = WaveStudy.objects.get(study=lone)
    assert row.wave.destination == bulk.destination and row.state == StudyState.QUEUED
    assert expedite.is_managed(row.wave) and not expedite.is_managed(bulk)
