"""SLA clocks: time to acknowledge and time to resolve, per priority, paused while Waiting.

A ticket stores its two deadlines. Pausing records when the pause began; resuming adds
the pause to the deadlines. While paused, the remaining time is frozen at what it was
when the pause began. Every function takes `now`, so tests control the clock.
"""

from datetime import timedelta

from django.utils import timezone

# Minutes to acknowledge and to resolve; the live values are the `SlaTarget` table.
DEFAULT_TARGETS = {
    "P1": {"acknowledge": 15, "resolve": 4 * 60},
    "P2": {"acknowledge": 30, "resolve": 8 * 60},
    "P3": {"acknowledge": 4 * 60, "resolve": 3 * 24 * 60},
    "P4": {"acknowledge": 24 * 60, "resolve": 5 * 24 * 60},
}

# Colour bands by remaining seconds: the first whose floor the remaining time exceeds.
BANDS = [
    {"band": "ok", "above": 3600, "label": "more than 1 h"},
    {"band": "warn", "above": 1800, "label": "under 1 h"},
    {"band": "critical", "above": 0, "label": "under 30 min"},
]
BREACHED = {"band": "breached", "label": "breached"}


def targets():
    """{priority: {"acknowledge": minutes, "resolve": minutes}} as configured."""
    from desk.models import SlaTarget

    configured = {
        t.priority: {"acknowledge": t.acknowledge_minutes, "resolve": t.resolve_minutes}
        for t in SlaTarget.objects.all()
    }
    return {**DEFAULT_TARGETS, **configured}


def deadlines(opened_at, priority, paused_seconds=0, table=None):
    """(acknowledge_due, resolve_due) of a ticket opened at `opened_at`."""
    target = (targets() if table is None else table)[priority]
    shift = timedelta(seconds=paused_seconds)
    return (
        opened_at + timedelta(minutes=target["acknowledge"]) + shift,
        opened_at + timedelta(minutes=target["resolve"]) + shift,
    )


def band(remaining_seconds):
    for entry in BANDS:
        if remaining_seconds > entry["above"]:
            return entry["band"]
    return "critical" if remaining_seconds >= 0 else BREACHED["band"]


def pause(ticket, now):
    if ticket.paused_since is None:
        ticket.paused_since = now


def resume(ticket, now):
    """End a pause: the paused time moves both deadlines."""
    if ticket.paused_since is None:
        return
    paused = max(0.0, (now - ticket.paused_since).total_seconds())
    ticket.paused_seconds += paused
    ticket.ack_due += timedelta(seconds=paused)
    ticket.resolve_due += timedelta(seconds=paused)
    ticket.paused_since = None


def active_clock(ticket):
    """Which clock runs: "acknowledge" until acknowledged, then "resolve", None when resolved."""
    if ticket.acknowledged_at is None:
        return "acknowledge"
    if ticket.resolved_at is None:
        return "resolve"
    return None


def clock(ticket, now=None):
    """The state of the ticket's running clock, for cards and lists."""
    now = now or timezone.now()
    kind = active_clock(ticket)
    if kind is None:
        met = ticket.resolved_at <= ticket.resolve_due
        return {"kind": None, "done": True, "met": met, "band": "met" if met else "breached"}
    due = ticket.ack_due if kind == "acknowledge" else ticket.resolve_due
    reference = ticket.paused_since or now
    remaining = (due - reference).total_seconds()
    return {
        "kind": kind,
        "done": False,
        "due": due,
        "remaining": remaining,
        "paused": ticket.paused_since is not None,
        "band": band(remaining),
        "breached": remaining < 0,
    }


def is_breached(ticket, now=None):
    """Any clock breached: acknowledged late, resolved late, or a running clock past due."""
    now = now or timezone.now()
    reference = ticket.paused_since or now
    ack = ticket.acknowledged_at or reference
    resolved = ticket.resolved_at or reference
    return ack > ticket.ack_due or resolved > ticket.resolve_due


def display(ticket, now=None):
    """What a card or page shows of the running clock, ready for the template and the
    browser (which keeps ticking from `due`)."""
    state = clock(ticket, now)
    if state["done"]:
        return {**state, "text": "SLA met" if state["met"] else "SLA breached"}
    return {
        **state,
        "due_iso": state["due"].isoformat(),
        "remaining_s": int(state["remaining"]),
        "left": format_remaining(state["remaining"]),
        "short": "ack" if state["kind"] == "acknowledge" else "fix",
    }


def format_remaining(seconds):
    """'1:05:09', or '-0:04:10' once breached."""
    sign = "-" if seconds < 0 else ""
    total = int(abs(seconds))
    return f"{sign}{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
