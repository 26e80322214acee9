"""Critical-path scheduling over plain data, in working-day indices.

Conventions (all integers, see `cutover.calendar`): an activity occupies working days
ES .. EF-1, so EF = ES + duration; a milestone has duration 0 and ES == EF (it is reached
at the start of day ES). Links:

- FS (finish-to-start): successor ES >= predecessor EF + lag
- SS (start-to-start):  successor ES >= predecessor ES + lag

`not_before` is a manual start date used as a constraint (start no earlier than);
`deadline` bounds EF from above. The backward pass starts every activity from the
project's end (the latest EF) and from its deadline, whichever is earlier, so a deadline
that cannot be met shows as negative total slack along the path that misses it.
"""

from collections import defaultdict, deque
from dataclasses import dataclass

FS = "FS"
SS = "SS"
KINDS = (FS, SS)


class ScheduleError(ValueError):
    """The plan itself is malformed (unknown activity, negative duration, bad link)."""


class CycleError(ScheduleError):
    """The links form a cycle; `cycle` lists the ids around it, first one repeated last."""

    def __init__(self, cycle, names=None):
        self.cycle = list(cycle)
        label = [str((names or {}).get(i, i)) for i in self.cycle]
        super().__init__("dependency cycle: " + " → ".join(label))


@dataclass(frozen=True)
class Activity:
    id: object
    duration: int
    not_before: int | None = None
    deadline: int | None = None
    name: str = ""


@dataclass(frozen=True)
class Link:
    pred: object
    succ: object
    kind: str = FS
    lag: int = 0


@dataclass(frozen=True)
class Timing:
    es: int
    ef: int
    ls: int
    lf: int
    total_slack: int
    free_slack: int
    critical: bool


def _check(activities, links):
    ids = {a.id for a in activities}
    if len(ids) != len(activities):
        raise ScheduleError("two activities share an id")
    for a in activities:
        if a.duration < 0:
            raise ScheduleError(f"{a.name or a.id}: duration cannot be negative")
    for link in links:
        if link.pred not in ids or link.succ not in ids:
            raise ScheduleError(f"link {link.pred} → {link.succ} names an unknown activity")
        if link.kind not in KINDS:
            raise ScheduleError(f"link kind must be one of {', '.join(KINDS)}, not {link.kind!r}")


def find_cycle(ids, links):
    """A cycle as [a, b, ..., a], or None. Iterative DFS, so deep plans do not recurse."""
    succs = defaultdict(list)
    for link in links:
        succs[link.pred].append(link.succ)
    state = {}  # 1 = on the current path, 2 = finished
    for root in ids:
        if state.get(root):
            continue
        path, stack = [root], [iter(succs[root])]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(succs[nxt]))
    return None


def topological_order(activities, links):
    """Activity ids with every predecessor before its successors; CycleError otherwise."""
    ids = [a.id for a in activities]
    indegree = dict.fromkeys(ids, 0)
    succs = defaultdict(list)
    for link in links:
        succs[link.pred].append(link.succ)
        indegree[link.succ] += 1
    ready = deque(i for i in ids if indegree[i] == 0)
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for nxt in succs[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(ids):
        names = {a.id: a.name or a.id for a in activities}
        raise CycleError(find_cycle(ids, links), names)
    return order


def _forward(order, by_id, incoming):
    es, ef = {}, {}
    for i in order:
        start = max(0, by_id[i].not_before or 0)
        for link in incoming[i]:
            base = ef[link.pred] if link.kind == FS else es[link.pred]
            start = max(start, base + link.lag)
        es[i], ef[i] = start, start + by_id[i].duration
    return es, ef


def _backward(order, by_id, outgoing, project_end):
    ls, lf = {}, {}
    for i in reversed(order):
        act = by_id[i]
        finish = project_end if act.deadline is None else min(project_end, act.deadline)
        for link in outgoing[i]:
            if link.kind == FS:
                finish = min(finish, ls[link.succ] - link.lag)
            else:
                finish = min(finish, ls[link.succ] - link.lag + act.duration)
        lf[i], ls[i] = finish, finish - act.duration
    return ls, lf


def _free_slack(i, es, ef, outgoing, project_end):
    gaps = [
        es[link.succ] - link.lag - (ef[i] if link.kind == FS else es[i]) for link in outgoing[i]
    ]
    return min(gaps) if gaps else project_end - ef[i]


def compute(activities, links):
    """Early/late dates, total and free slack for every activity: {id: Timing}."""
    activities, links = list(activities), list(links)
    _check(activities, links)
    by_id = {a.id: a for a in activities}
    incoming, outgoing = defaultdict(list), defaultdict(list)
    for link in links:
        incoming[link.succ].append(link)
        outgoing[link.pred].append(link)
    order = topological_order(activities, links)
    es, ef = _forward(order, by_id, incoming)
    project_end = max(ef.values(), default=0)
    ls, lf = _backward(order, by_id, outgoing, project_end)
    result = {}
    for i in order:
        total = ls[i] - es[i]
        free = min(_free_slack(i, es, ef, outgoing, project_end), total)
        result[i] = Timing(es[i], ef[i], ls[i], lf[i], total, free, total <= 0)
    return result


def critical_links(links, timings):
    """The links that carry the critical path: both ends critical and the link is tight in
    the backward pass (moving the predecessor later would move the successor)."""
    tight = []
    for link in links:
        p, s = timings[link.pred], timings[link.succ]
        if not (p.critical and s.critical):
            continue
        bound = s.ls - link.lag
        if (link.kind == FS and p.lf == bound) or (link.kind == SS and p.ls == bound):
            tight.append(link)
    return tight
