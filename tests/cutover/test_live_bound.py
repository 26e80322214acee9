"""Live-bound tasks: % complete follows real rows of the migration ledger, the training
app and the cutover plans."""

import pytest

from cutover import actions, binding
from cutover.models import Task
from tests.cutover import world
from tests.cutover.factories import task, worked_example

pytestmark = pytest.mark.django_db


def bind(roadmap, code, measure, **params):
    Task.objects.filter(roadmap=roadmap, code=code).update(measure=measure, measure_params=params)


def test_a_task_bound_to_waves_follows_the_share_of_studies_done_in_them(cast):
    roadmap = worked_example()
    wave, rows = world.migration_ledger(studies=4, done=3, name="wave-1")
    world.migration_ledger(studies=5, done=0, name="wave-2")  # another wave: not counted
    bind(roadmap, "E", "migration.waves", waves=[wave.pk])
    assert actions.refresh_live_tasks(roadmap) == 1
    e = task(roadmap, "E")
    assert (e.percent_complete, e.status) == (75, Task.Status.IN_PROGRESS)
    world.finish_ledger(rows)
    actions.refresh_live_tasks(roadmap)
    e = task(roadmap, "E")
    assert (e.percent_complete, e.status) == (100, Task.Status.DONE)
    assert actions.refresh_live_tasks(roadmap) == 0, "nothing changed, nothing announced"


def test_a_task_bound_to_all_waves_counts_every_study(cast):
    world.migration_ledger(studies=4, done=3, name="wave-1")
    world.migration_ledger(studies=4, done=1, name="wave-2")
    assert binding.percent("migration.waves", {}) == 50


def test_a_task_bound_to_training_follows_the_share_of_clinicians_trained(cast):
    roadmap = worked_example()
    world.clinicians({"Radiology": 4, "Cardiology": 4}, {"Radiology": 4, "Cardiology": 1})
    bind(roadmap, "B", "training.clinicians", department="Cardiology")
    bind(roadmap, "C", "training.clinicians")
    actions.refresh_live_tasks(roadmap)
    assert task(roadmap, "B").percent_complete == 25
    # 5 of 9 clinicians: cast.clinician has no training either
    assert task(roadmap, "C").percent_complete == 55


def test_a_task_bound_to_cutover_stages_follows_the_gates_opened(cast, integration):
    roadmap = worked_example()
    plan = actions.create_plan(integration, cast.pm)
    bind(roadmap, "F", "cutover.stages")
    stage = plan.stages.get(kind="prepare")
    for item in stage.items.all():
        actions.sign_item(item, cast.pm)
    actions.open_gate(stage, cast.pm)
    actions.refresh_live_tasks(roadmap)
    assert task(roadmap, "F").percent_complete == 20


def test_a_measure_with_nothing_to_count_leaves_the_task_alone(cast):
    roadmap = worked_example()
    Task.objects.filter(roadmap=roadmap, code="A").update(percent_complete=40)
    bind(roadmap, "A", "validation.waves")
    assert actions.refresh_live_tasks(roadmap) == 0
    assert task(roadmap, "A").percent_complete == 40


def test_an_unknown_or_missing_measure_is_not_available():
    assert binding.percent("no.such.measure") is None
    assert binding.MEASURES["migration.waves"]["compute"]


def test_a_bound_measure_that_crashes_raises_instead_of_reading_as_nothing(monkeypatch):
    def broken(params):
        raise KeyError("done")

    monkeypatch.setitem(binding.MEASURES, "broken", {"label": "", "params": "", "compute": broken})
    with pytest.raises(KeyError):
        binding.percent("broken")
