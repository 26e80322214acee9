"""Ticket statuses and the transitions between them, as data.

The statuses are fixed (the board has one column each); which moves are allowed, and
which access rule a move needs, is DEFAULT_TRANSITIONS as changed by the `Transition`
table (seeded with the defaults, editable in the admin).
"""

STATUSES = {
    "new": "New",
    "acknowledged": "Acknowledged",
    "in_progress": "In progress",
    "waiting": "Waiting",
    "resolved": "Resolved",
    "closed": "Closed",
}
OPEN_STATUSES = ("new", "acknowledged", "in_progress", "waiting")
PAUSED_STATUSES = ("waiting",)  # SLA clocks stop while a ticket waits on someone else

DEFAULT_RULE = "triage_tickets"
DEFAULT_TRANSITIONS = {
    ("new", "acknowledged"): DEFAULT_RULE,
    ("new", "in_progress"): DEFAULT_RULE,
    ("new", "resolved"): DEFAULT_RULE,
    ("acknowledged", "in_progress"): DEFAULT_RULE,
    ("acknowledged", "waiting"): DEFAULT_RULE,
    ("acknowledged", "resolved"): DEFAULT_RULE,
    ("in_progress", "waiting"): DEFAULT_RULE,
    ("in_progress", "resolved"): DEFAULT_RULE,
    ("waiting", "in_progress"): DEFAULT_RULE,
    ("waiting", "resolved"): DEFAULT_RULE,
    ("resolved", "in_progress"): DEFAULT_RULE,
    ("resolved", "closed"): DEFAULT_RULE,
    ("closed", "in_progress"): "manage_escalation",
}


class TransitionRefused(Exception):  # noqa: N818 (reads as what happened)
    """A status change the workflow does not allow."""


class TransitionForbidden(TransitionRefused):
    """A status change the workflow allows, but not to this user's roles."""


def transitions():
    """{(from, to): rule}: the defaults, as the `Transition` rows change them (a row adds
    or re-rules a move; a row with allowed=False forbids one)."""
    from desk.models import Transition

    table = dict(DEFAULT_TRANSITIONS)
    for row in Transition.objects.all():
        if row.allowed:
            table[(row.source, row.target)] = row.rule
        else:
            table.pop((row.source, row.target), None)
    return table


def allowed_targets(status, user=None, table=None):
    """Statuses a ticket in `status` may move to (those `user` may make, when given)."""
    from core.access import has_rule

    table = transitions() if table is None else table
    return [
        target
        for target in STATUSES
        if (status, target) in table and (user is None or has_rule(user, table[(status, target)]))
    ]


def check(source, target, user=None, table=None):
    """Raise TransitionRefused unless `user` may move a ticket from `source` to `target`."""
    from core.access import has_rule

    table = transitions() if table is None else table
    if target not in STATUSES:
        raise TransitionRefused(f"unknown status {target!r}")
    rule = table.get((source, target))
    if rule is None:
        raise TransitionRefused(f"a ticket cannot go from {STATUSES[source]} to {STATUSES[target]}")
    if user is not None and not has_rule(user, rule):
        raise TransitionForbidden(
            f"moving from {STATUSES[source]} to {STATUSES[target]} needs the '{rule}' permission"
        )
