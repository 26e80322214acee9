"""The roadmap in the database: dates over weekends and holidays, slack, go-live shifts,
cycle refusal, and the standard template."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from cutover import actions, template
from cutover.models import Dependency, Task
from tests.cutover.factories import task, worked_example

pytestmark = pytest.mark.django_db

D = date


def dates(roadmap, field):
    return {t.code: getattr(t, field) for t in roadmap.tasks.order_by("code")}


def test_dates_follow_fs_and_ss_links_over_weekends_and_the_holiday():
    roadmap = worked_example()
    assert dates(roadmap, "early_start") == {
        "A": D(2026, 3, 2),
        "B": D(2026, 3, 10),  # A ends Thu 5.3; lag 2 = Fri 6.3 and Mon 9.3
        "C": D(2026, 3, 3),  # SS+1
        "D": D(2026, 3, 11),  # its manual date
        "E": D(2026, 3, 16),  # D ends Thu 12.3, Fri 13.3 is a holiday
        "F": D(2026, 3, 19),  # FS+3 after D: Mon 16, Tue 17, Wed 18
        "G": D(2026, 3, 6),
        "M": D(2026, 3, 20),
    }
    assert dates(roadmap, "early_finish") == {
        "A": D(2026, 3, 5),
        "B": D(2026, 3, 12),
        "C": D(2026, 3, 9),
        "D": D(2026, 3, 12),
        "E": D(2026, 3, 19),
        "F": D(2026, 3, 19),
        "G": D(2026, 3, 9),
        "M": D(2026, 3, 20),
    }


def test_late_dates_and_slack_match_the_hand_computation():
    roadmap = worked_example()
    assert dates(roadmap, "total_slack") == {
        "A": 0,
        "B": 0,
        "C": 1,
        "D": 0,
        "E": 0,
        "F": 0,
        "G": 7,
        "M": 0,
    }
    assert dates(roadmap, "free_slack")["G"] == 7
    assert task(roadmap, "G").late_start == D(2026, 3, 18)
    assert task(roadmap, "G").late_finish == D(2026, 3, 19)
    assert {t.code for t in roadmap.tasks.filter(critical=True)} == {"A", "B", "D", "E", "F", "M"}


def test_a_go_live_deadline_that_cannot_be_met_shows_negative_slack():
    roadmap = worked_example(go_live_deadline=D(2026, 3, 19))
    slack = dates(roadmap, "total_slack")
    assert slack == {"A": -1, "B": -1, "C": 0, "D": -1, "E": -1, "F": -1, "G": 6, "M": -1}
    assert task(roadmap, "A").late_start == D(2026, 2, 27)  # the Friday before the start
    summary = actions.roadmap_summary(roadmap)
    assert summary["go_live_slack"] == -1 and summary["late"] == 6


def test_a_deadline_on_a_holiday_counts_from_the_working_day_before():
    roadmap = worked_example(go_live_deadline=D(2026, 3, 21))  # a Saturday: Fri 20.3 counts
    assert task(roadmap, "M").total_slack == 0


def test_a_longer_task_on_the_critical_path_moves_go_live_and_says_so(cast):
    roadmap = worked_example()
    b = task(roadmap, "B")
    preview = actions.preview_task_change(b, {"duration": 6})
    assert preview["message"] == "this moves go-live by 3 working days"
    assert (preview["before"], preview["after"]) == (D(2026, 3, 20), D(2026, 3, 25))
    assert task(roadmap, "B").duration == 3, "a preview saves nothing"
    shift = actions.save_task(b, {"duration": 6}, cast.pm)
    assert shift["shift"] == 3
    assert task(roadmap, "M").early_start == D(2026, 3, 25)


def test_a_change_off_the_critical_path_within_its_slack_does_not_move_go_live():
    roadmap = worked_example()
    preview = actions.preview_task_change(task(roadmap, "G"), {"duration": 9})
    assert preview["shift"] == 0 and preview["message"] == "this does not move go-live"
    preview = actions.preview_task_change(task(roadmap, "G"), {"duration": 11})
    assert preview["message"] == "this moves go-live by 2 working days"


def test_shortening_the_critical_path_brings_go_live_forward():
    roadmap = worked_example()
    actions.save_task(task(roadmap, "B"), {"duration": 6})
    preview = actions.preview_task_change(task(roadmap, "B"), {"duration": 4})
    # B ends at idx 10 instead of 12; E then waits for B (10), not D (9)
    assert preview["message"] == "this brings go-live forward by 2 working days"


def test_a_dependency_that_closes_a_cycle_is_refused_with_the_cycle_named(cast):
    roadmap = worked_example()
    with pytest.raises(ValidationError) as caught:
        actions.add_dependency(task(roadmap, "M"), task(roadmap, "A"), user=cast.pm)
    text = " ".join(caught.value.messages)
    assert text.startswith("refused: dependency cycle:")
    assert "M Task M" in text and "A Task A" in text and "→" in text
    assert not Dependency.objects.filter(predecessor__code="M").exists()


def test_a_valid_dependency_reschedules_and_reports_its_effect(cast):
    roadmap = worked_example()
    _dep, shift = actions.add_dependency(task(roadmap, "C"), task(roadmap, "G"), "FS", 0, cast.pm)
    assert shift["shift"] == 0
    assert task(roadmap, "G").early_start == D(2026, 3, 10)


def test_a_self_dependency_and_a_cross_roadmap_link_are_refused():
    one, two = worked_example(name="one"), worked_example(name="two")
    with pytest.raises(ValidationError, match="itself"):
        actions.add_dependency(task(one, "A"), task(one, "A"))
    with pytest.raises(ValidationError, match="same roadmap"):
        actions.add_dependency(task(one, "A"), task(two, "B"))


def test_holidays_reschedule_the_roadmap():
    roadmap = worked_example()
    actions.set_holidays(roadmap, {D(2026, 3, 13): "Holiday", D(2026, 3, 16): "Bridge day"})
    assert task(roadmap, "E").early_start == D(2026, 3, 17)
    assert task(roadmap, "M").early_start == D(2026, 3, 23)


def test_the_template_creates_the_standard_pacs_to_cloud_roadmap(cast):
    roadmap = actions.create_from_template("Hospital", D(2026, 1, 5), cast.pm)
    names = list(roadmap.workstreams.values_list("name", flat=True))
    assert names == [name for name, _tasks in template.WORKSTREAMS]
    assert names[0] == "Assess the environment" and names[-1] == "Support go-live and optimise"
    assert roadmap.tasks.count() == sum(len(tasks) for _n, tasks in template.WORKSTREAMS)
    assert roadmap.go_live.code == "GL1" and roadmap.go_live.kind == Task.Kind.MILESTONE
    # 91 working days after Mon 5 Jan 2026: the assess-design-infrastructure-migrate path
    assert roadmap.go_live.early_start == D(2026, 5, 12)
    assert roadmap.go_live.total_slack == 0
    critical = set(roadmap.tasks.filter(critical=True).values_list("code", flat=True))
    assert {"AS2", "AS4", "DE1", "IN1", "IN2", "MG1", "MG2", "MG4", "GL0", "GL1"} <= critical
    assert not {"AS3", "RM1", "VW1", "TR2", "IC1"} & critical
    assert roadmap.tasks.get(code="GL0").kind == Task.Kind.BUFFER
    assert roadmap.tasks.get(code="MG2").measure == "migration.waves"
