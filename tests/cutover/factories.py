"""Small builders for roadmap tests: the hand-worked example of test_schedule as rows."""

from datetime import date

from cutover import actions
from cutover.models import Dependency, Holiday, Roadmap, Task, Workstream

START = date(2026, 3, 2)  # a Monday
HOLIDAY = date(2026, 3, 13)  # a Friday


def worked_example(go_live_deadline=None, name="Worked example"):
    """The plan of tests/cutover/test_schedule.py, with a holiday, as a scheduled roadmap."""
    roadmap = Roadmap.objects.create(name=name, start_date=START)
    Holiday.objects.create(roadmap=roadmap, day=HOLIDAY, name="Holiday")
    stream = Workstream.objects.create(roadmap=roadmap, name="Work")
    spec = {
        "A": {"duration": 4},
        "B": {"duration": 3},
        "C": {"duration": 5},
        "D": {"duration": 2, "start_no_earlier": date(2026, 3, 11)},
        "E": {"duration": 4},
        "F": {"duration": 1},
        "G": {"duration": 2},
        "M": {"duration": 0, "kind": "milestone", "deadline": go_live_deadline},
    }
    tasks = {
        code: Task.objects.create(
            roadmap=roadmap, workstream=stream, code=code, name=f"Task {code}", order=n, **fields
        )
        for n, (code, fields) in enumerate(spec.items())
    }
    links = [
        ("A", "B", "FS", 2),
        ("A", "C", "SS", 1),
        ("C", "D", "FS", 0),
        ("B", "E", "FS", 0),
        ("D", "E", "FS", 0),
        ("D", "F", "FS", 3),
        ("A", "G", "FS", 0),
        ("E", "M", "FS", 0),
        ("F", "M", "FS", 0),
        ("G", "M", "FS", 0),
    ]
    for pred, succ, kind, lag in links:
        Dependency.objects.create(
            predecessor=tasks[pred], successor=tasks[succ], kind=kind, lag=lag
        )
    roadmap.go_live = tasks["M"]
    roadmap.save()
    actions.reschedule(roadmap)
    return roadmap


def task(roadmap, code):
    return roadmap.tasks.get(code=code)
