"""Baselines: freeze the schedule, change the plan, see the slips per task and milestone."""

from datetime import date

import pytest

from cutover import actions, gantt, planning
from cutover.models import Task
from tests.cutover.factories import task, worked_example

pytestmark = pytest.mark.django_db


def slips(rows):
    return {r["task"].code: r["finish_slip"] for r in rows}


def test_slips_are_counted_in_working_days_per_task_and_milestone(cast):
    roadmap = worked_example()
    baseline = actions.save_baseline(roadmap, "Approved plan", cast.pm)
    assert baseline.entries.count() == 8
    actions.save_task(task(roadmap, "B"), {"duration": 6}, cast.pm)
    rows = planning.compare(roadmap, baseline)
    assert slips(rows) == {"A": 0, "B": 3, "C": 0, "D": 0, "E": 3, "F": 0, "G": 0, "M": 3}
    slipped = {r["task"].code for r in rows if r["slipped"]}
    assert slipped == {"B", "E", "M"}
    m = next(r for r in rows if r["task"].code == "M")
    assert (m["baseline_finish"], m["task"].early_finish) == (date(2026, 3, 20), date(2026, 3, 25))


def test_a_task_added_after_the_baseline_has_no_baseline_dates(cast):
    roadmap = worked_example()
    baseline = actions.save_baseline(roadmap, "Approved plan", cast.pm)
    new = Task(roadmap=roadmap)
    actions.save_task(
        new, {"name": "Extra", "workstream": roadmap.workstreams.get(), "duration": 2}
    )
    row = next(r for r in planning.compare(roadmap, baseline) if r["task"].pk == new.pk)
    assert row["baseline_start"] is None and not row["slipped"]


def test_an_earlier_finish_is_a_negative_slip_not_a_slip(cast):
    roadmap = worked_example()
    actions.save_task(task(roadmap, "B"), {"duration": 6}, cast.pm)
    baseline = actions.save_baseline(roadmap, "Late plan", cast.pm)
    actions.save_task(task(roadmap, "B"), {"duration": 3}, cast.pm)
    rows = {r["task"].code: r for r in planning.compare(roadmap, baseline)}
    assert rows["M"]["finish_slip"] == -3 and not rows["M"]["slipped"]


def test_the_gantt_draws_ghost_bars_for_the_chosen_baseline(cast):
    roadmap = worked_example()
    baseline = actions.save_baseline(roadmap, "Approved plan", cast.pm)
    actions.save_task(task(roadmap, "B"), {"duration": 6}, cast.pm)
    rows, links = planning.gantt_data(roadmap, baseline)
    svg = gantt.render(rows, links, zoom="week", today=date(2026, 3, 4))
    assert svg.count('class="ghost"') == 8
    without = gantt.render(*planning.gantt_data(roadmap), zoom="week", today=date(2026, 3, 4))
    assert 'class="ghost"' not in without
