"""Between the roadmap's rows and the pure scheduler: plain data in, dated results out.

Read-only. `cutover.actions.reschedule` stores what `timings` computes; previews
("this moves go-live by 3 working days") compute the same with changes applied to copies.
"""

from dataclasses import dataclass, replace

from cutover import schedule
from cutover.calendar import WorkCalendar
from cutover.models import Dependency, Task

SCHEDULING_FIELDS = {"kind", "duration", "start_no_earlier", "deadline"}


@dataclass
class Plan:
    roadmap: object
    calendar: WorkCalendar
    activities: dict  # task id -> schedule.Activity
    links: list
    tasks: dict  # task id -> Task


def calendar_for(roadmap):
    return WorkCalendar(roadmap.start_date, roadmap.holidays.values_list("day", flat=True))


def deadline_bound(calendar, duration, deadline):
    """EF may not exceed this index: a task finishes on its last day, a milestone is its day."""
    if deadline is None:
        return None
    last = calendar.index(deadline, forward=False)
    return last if duration == 0 else last + 1


def activity(task, calendar, **changes):
    """The scheduler's view of a task, with any field overridden by `changes`."""
    fields = {
        "kind": task.kind,
        "duration": task.duration,
        "start_no_earlier": task.start_no_earlier,
        "deadline": task.deadline,
        **changes,
    }
    duration = 0 if fields["kind"] == Task.Kind.MILESTONE else int(fields["duration"])
    not_before = fields["start_no_earlier"]
    return schedule.Activity(
        id=task.pk,
        duration=duration,
        not_before=None if not_before is None else calendar.index(not_before),
        deadline=deadline_bound(calendar, duration, fields["deadline"]),
        name=f"{task.code} {task.name}",
    )


def link(dep):
    return schedule.Link(dep.predecessor_id, dep.successor_id, dep.kind, dep.lag)


def load(roadmap):
    calendar = calendar_for(roadmap)
    tasks = {t.pk: t for t in roadmap.tasks.all()}
    deps = Dependency.objects.filter(successor__roadmap=roadmap)
    return Plan(
        roadmap=roadmap,
        calendar=calendar,
        activities={pk: activity(t, calendar) for pk, t in tasks.items()},
        links=[link(d) for d in deps],
        tasks=tasks,
    )


def with_changes(plan, task_changes=None, add_links=(), drop_links=()):
    """A copy of `plan` with {task_id: {field: value}} applied and links added/removed."""
    activities = dict(plan.activities)
    for pk, changes in (task_changes or {}).items():
        activities[pk] = activity(plan.tasks[pk], plan.calendar, **changes)
    dropped = {(lk.pred, lk.succ) for lk in drop_links}
    links = [lk for lk in plan.links if (lk.pred, lk.succ) not in dropped]
    added = {(lk.pred, lk.succ) for lk in add_links}
    links = [lk for lk in links if (lk.pred, lk.succ) not in added] + list(add_links)
    return replace(plan, activities=activities, links=links)


def timings(plan):
    """{task id: schedule.Timing}; raises CycleError naming the tasks of a cycle."""
    return schedule.compute(plan.activities.values(), plan.links)


def finish_day(calendar, start, end):
    """The date a span [start, end) finishes: its last day, or its own day for a milestone."""
    return calendar.day(end - 1) if end > start else calendar.day(start)


def dated(calendar, timing):
    return {
        "early_start": calendar.day(timing.es),
        "early_finish": finish_day(calendar, timing.es, timing.ef),
        "late_start": calendar.day(timing.ls),
        "late_finish": finish_day(calendar, timing.ls, timing.lf),
        "total_slack": timing.total_slack,
        "free_slack": timing.free_slack,
        "critical": timing.critical,
    }


def go_live_id(plan, result):
    """The roadmap's go-live milestone, else the activity that finishes last."""
    if plan.roadmap.go_live_id in result:
        return plan.roadmap.go_live_id
    return max(result, key=lambda pk: (result[pk].ef, pk), default=None)


def shift_message(days):
    if days == 0:
        return "this does not move go-live"
    unit = "working day" if abs(days) == 1 else "working days"
    if days > 0:
        return f"this moves go-live by {days} {unit}"
    return f"this brings go-live forward by {-days} {unit}"


def go_live_shift(plan, changed_plan):
    """How a change moves go-live, in working days, with the sentence to show."""
    before, after = timings(plan), timings(changed_plan)
    pk = go_live_id(plan, before)
    if pk is None or pk not in after:
        return {"task": None, "shift": 0, "before": None, "after": None, "message": ""}
    days = after[pk].es - before[pk].es
    return {
        "task": pk,
        "shift": days,
        "before": plan.calendar.day(before[pk].es),
        "after": changed_plan.calendar.day(after[pk].es),
        "message": shift_message(days),
    }


def compare(roadmap, baseline, calendar=None):
    """Current dates against a baseline, per task: slips in working days (later = positive)."""
    calendar = calendar or calendar_for(roadmap)
    saved = {e.task_id: e for e in baseline.entries.all()}
    rows = []
    for task in roadmap.tasks.select_related("workstream"):
        entry = saved.get(task.pk)
        row = {"task": task, "baseline_start": None, "baseline_finish": None}
        row.update(start_slip=None, finish_slip=None, slipped=False)
        if entry and task.early_start:
            row.update(baseline_start=entry.start, baseline_finish=entry.finish)
            row["start_slip"] = calendar.between(entry.start, task.early_start)
            row["finish_slip"] = calendar.between(entry.finish, task.early_finish)
            row["slipped"] = row["finish_slip"] > 0
        rows.append(row)
    return rows


def gantt_data(roadmap, baseline=None, href=None):
    """Rows and links for `cutover.gantt.render`, in workstream order."""
    plan = load(roadmap)
    result = timings(plan)
    tight = {(lk.pred, lk.succ) for lk in schedule.critical_links(plan.links, result)}
    saved = {e.task_id: e for e in baseline.entries.all()} if baseline else {}
    rows = []
    for task in roadmap.tasks.select_related("workstream"):
        entry = saved.get(task.pk)
        rows.append(
            {
                "id": task.pk,
                "code": task.code,
                "name": task.name,
                "workstream": task.workstream.name,
                "kind": task.kind,
                "start": task.early_start,
                "finish": task.early_finish,
                "critical": task.critical,
                "percent": task.percent_complete,
                "total_slack": task.total_slack,
                "baseline_start": entry.start if entry else None,
                "baseline_finish": entry.finish if entry else None,
                "href": href(task) if href else "",
            }
        )
    links = [
        {"pred": lk.pred, "succ": lk.succ, "kind": lk.kind, "critical": (lk.pred, lk.succ) in tight}
        for lk in plan.links
    ]
    return rows, links
