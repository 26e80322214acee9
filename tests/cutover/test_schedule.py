"""Critical-path scheduling against a worked example computed by hand.

Calendar: Monday 2 March 2026 is day 0, weekends off, Friday 13 March a holiday.

    idx: 0 Mo 2.3 | 1 Tu 3.3 | 2 We 4.3 | 3 Th 5.3 | 4 Fr 6.3 | 5 Mo 9.3 | 6 Tu 10.3
         7 We 11.3 | 8 Th 12.3 | (Fr 13.3 holiday) | 9 Mo 16.3 | 10 Tu 17.3 | 11 We 18.3
         12 Th 19.3 | 13 Fr 20.3

    A 4d                      ES 0  EF 4
    B 3d  A FS+2              ES 6  EF 9    (lag over the weekend: Fr 6.3, Mo 9.3)
    C 5d  A SS+1              ES 1  EF 6
    D 2d  C FS, not before 11.3 (idx 7)  ES 7  EF 9
    E 4d  B FS, D FS          ES 9  EF 13   (starts Mo 16.3: holiday and weekend skipped)
    F 1d  D FS+3              ES 12 EF 13
    G 2d  A FS                ES 4  EF 6
    M milestone  E FS, F FS, G FS   ES 13 = EF 13 (Fr 20.3)

Backward pass, no deadline (project end 13):
    M LF 13 LS 13 | F LF 13 LS 12 | E LF 13 LS 9 | G LF 13 LS 11
    D LF min(LS E=9, LS F-3=9)=9 LS 7 | B LF 9 LS 6 | C LF LS D=7 LS 2
    A LF min(LS B-2=4, LS C-1+4=5, LS G=11)=4 LS 0
    total slack: A0 B0 C1 D0 E0 F0 G7 M0; free slack: C 1 (D waits for its date), G 7.

With a deadline on M of Thu 19.3 (idx 12), LF(M)=12 and every task on the path loses a day:
    M -1 | F LF 12 LS 11: -1 | E LF 12 LS 8: -1 | G LF 12 LS 10: 6 | D LF 8 LS 6: -1
    B LF 8 LS 5: -1 | C LF 6 LS 1: 0 | A LF min(3, 4, 10)=3 LS -1: -1
    free slack capped by total slack: A -1, C 0, G 6, M -1.
"""

import pytest

from cutover.schedule import (
    SS,
    Activity,
    CycleError,
    Link,
    ScheduleError,
    compute,
    critical_links,
    find_cycle,
)

ACTIVITIES = [
    Activity("A", 4),
    Activity("B", 3),
    Activity("C", 5),
    Activity("D", 2, not_before=7),
    Activity("E", 4),
    Activity("F", 1),
    Activity("G", 2),
    Activity("M", 0),
]
LINKS = [
    Link("A", "B", lag=2),
    Link("A", "C", SS, 1),
    Link("C", "D"),
    Link("B", "E"),
    Link("D", "E"),
    Link("D", "F", lag=3),
    Link("A", "G"),
    Link("E", "M"),
    Link("F", "M"),
    Link("G", "M"),
]


def with_deadline(deadline):
    return [Activity("M", 0, deadline=deadline) if a.id == "M" else a for a in ACTIVITIES]


def table(result, field):
    return {k: getattr(t, field) for k, t in sorted(result.items())}


def test_forward_pass_follows_fs_and_ss_links_with_lags_and_a_manual_date():
    result = compute(ACTIVITIES, LINKS)
    assert table(result, "es") == {"A": 0, "B": 6, "C": 1, "D": 7, "E": 9, "F": 12, "G": 4, "M": 13}
    assert table(result, "ef") == {
        "A": 4,
        "B": 9,
        "C": 6,
        "D": 9,
        "E": 13,
        "F": 13,
        "G": 6,
        "M": 13,
    }


def test_backward_pass_gives_late_dates_and_slack():
    result = compute(ACTIVITIES, LINKS)
    assert table(result, "ls") == {
        "A": 0,
        "B": 6,
        "C": 2,
        "D": 7,
        "E": 9,
        "F": 12,
        "G": 11,
        "M": 13,
    }
    assert table(result, "lf") == {
        "A": 4,
        "B": 9,
        "C": 7,
        "D": 9,
        "E": 13,
        "F": 13,
        "G": 13,
        "M": 13,
    }
    assert table(result, "total_slack") == {
        "A": 0,
        "B": 0,
        "C": 1,
        "D": 0,
        "E": 0,
        "F": 0,
        "G": 7,
        "M": 0,
    }
    assert table(result, "free_slack") == {
        "A": 0,
        "B": 0,
        "C": 1,
        "D": 0,
        "E": 0,
        "F": 0,
        "G": 7,
        "M": 0,
    }


def test_critical_tasks_are_those_without_slack():
    result = compute(ACTIVITIES, LINKS)
    assert {k for k, t in result.items() if t.critical} == {"A", "B", "D", "E", "F", "M"}


def test_critical_links_are_the_tight_links_between_critical_tasks():
    tight = {(lk.pred, lk.succ) for lk in critical_links(LINKS, compute(ACTIVITIES, LINKS))}
    assert tight == {("A", "B"), ("B", "E"), ("D", "E"), ("D", "F"), ("E", "M"), ("F", "M")}


def test_a_deadline_that_cannot_be_met_gives_negative_slack_along_the_path():
    result = compute(with_deadline(12), LINKS)
    assert table(result, "total_slack") == {
        "A": -1,
        "B": -1,
        "C": 0,
        "D": -1,
        "E": -1,
        "F": -1,
        "G": 6,
        "M": -1,
    }
    assert table(result, "ls") == {
        "A": -1,
        "B": 5,
        "C": 1,
        "D": 6,
        "E": 8,
        "F": 11,
        "G": 10,
        "M": 12,
    }
    assert table(result, "free_slack") == {
        "A": -1,
        "B": -1,
        "C": 0,
        "D": -1,
        "E": -1,
        "F": -1,
        "G": 6,
        "M": -1,
    }


def test_a_deadline_with_room_leaves_positive_slack_on_the_milestone_only_path():
    result = compute(with_deadline(15), LINKS)
    # project end stays 13, so the deadline is not the binding bound
    assert result["M"].total_slack == 0
    assert result["G"].total_slack == 7


def test_ss_link_constrains_the_predecessor_start_in_the_backward_pass():
    result = compute([Activity("P", 10), Activity("Q", 2)], [Link("P", "Q", SS, 3)])
    assert (result["Q"].es, result["Q"].ef) == (3, 5)
    # P drives the project end (10); Q may start as late as 8, so P may start as late as 5,
    # but P must also finish by the project end, so its late start is 0.
    assert result["P"].ls == 0 and result["Q"].ls == 8
    assert result["Q"].total_slack == 5


def test_a_negative_lag_is_a_lead_and_nothing_starts_before_day_zero():
    result = compute([Activity("P", 5), Activity("Q", 2)], [Link("P", "Q", lag=-2)])
    assert result["Q"].es == 3
    result = compute([Activity("P", 1), Activity("Q", 2)], [Link("P", "Q", SS, -5)])
    assert result["Q"].es == 0


def test_a_cycle_is_refused_with_a_message_naming_it():
    activities = [Activity(i, 1, name=f"Task {i}") for i in "XYZW"]
    links = [Link("X", "Y"), Link("Y", "Z"), Link("Z", "X"), Link("Z", "W")]
    with pytest.raises(CycleError) as caught:
        compute(activities, links)
    cycle = caught.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {"X", "Y", "Z"}
    assert "dependency cycle: Task" in str(caught.value)
    assert str(caught.value).count("→") == 3


def test_find_cycle_returns_none_for_an_acyclic_plan():
    assert find_cycle([a.id for a in ACTIVITIES], LINKS) is None


def test_find_cycle_handles_deep_chains_without_recursion():
    ids = list(range(5000))
    links = [Link(i, i + 1) for i in range(4999)] + [Link(4999, 0)]
    cycle = find_cycle(ids, links)
    assert len(cycle) == 5001 and cycle[0] == cycle[-1]


def test_malformed_plans_are_refused_clearly():
    with pytest.raises(ScheduleError, match="unknown activity"):
        compute([Activity("A", 1)], [Link("A", "B")])
    with pytest.raises(ScheduleError, match="negative"):
        compute([Activity("A", -1)], [])
    with pytest.raises(ScheduleError, match="kind"):
        compute([Activity("A", 1), Activity("B", 1)], [Link("A", "B", "FF")])


def test_an_empty_plan_schedules_to_nothing():
    assert compute([], []) == {}
