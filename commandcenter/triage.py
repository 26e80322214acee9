"""The triage board's queries: columns, filters, counts, breaches, and the card fragment.

The board shows what a shift works on: open tickets, plus what was resolved or closed in
the last day. Each column holds at most COLUMN_LIMIT cards; more load on demand.
"""

from datetime import timedelta

from django.db.models import Count, F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from commandcenter import catalog, sla, workflow
from commandcenter.models import Ticket
from commandcenter.priority import PRIORITIES

COLUMN_LIMIT = 20
DONE_LIMIT = 10  # resolved and closed columns show the latest few; "show more" pages on
DONE_WINDOW = timedelta(hours=24)
DONE_STATUSES = ("resolved", "closed")
FILTERS = ("priority", "category", "assignee", "mine", "breached")


def parse_filters(params):
    """Board filters from a query dict; unknown values are dropped, never an error."""
    filters = {}
    if params.get("priority") in PRIORITIES:
        filters["priority"] = params["priority"]
    if params.get("category") in catalog.CATEGORIES:
        filters["category"] = params["category"]
    if str(params.get("assignee", "")).isdigit():
        filters["assignee"] = int(params["assignee"])
    for flag in ("mine", "breached"):
        if params.get(flag) in ("1", "on", "true"):
            filters[flag] = True
    return filters


def breached_q(now):
    """Tickets with a clock past due: unacknowledged or unresolved, or done late."""

    def late(done_field, due_field):
        return (
            Q(
                **{
                    f"{done_field}__isnull": True,
                    "paused_since__isnull": True,
                    f"{due_field}__lt": now,
                }
            )
            | Q(**{f"{done_field}__isnull": True, f"{due_field}__lt": F("paused_since")})
            | Q(**{f"{done_field}__gt": F(due_field)})
        )

    return late("acknowledged_at", "ack_due") | late("resolved_at", "resolve_due")


def visible(now):
    """Open tickets, and those resolved or closed in the last day."""
    recent = Q(status__in=DONE_STATUSES, updated_at__gte=now - DONE_WINDOW)
    return Ticket.objects.filter(Q(status__in=workflow.OPEN_STATUSES) | recent)


def apply_filters(queryset, filters, user, now):
    if "priority" in filters:
        queryset = queryset.filter(priority=filters["priority"])
    if "category" in filters:
        queryset = queryset.filter(category=filters["category"])
    if "assignee" in filters:
        queryset = queryset.filter(assignee_id=filters["assignee"])
    if filters.get("mine"):
        queryset = queryset.filter(assignee_id=user.pk)
    if filters.get("breached"):
        queryset = queryset.filter(breached_q(now))
    return queryset


def column(status, filters, user, now, offset=0, limit=None, total=None):
    """One column: its cards (a page of them) and whether more follow."""
    if limit is None:
        limit = DONE_LIMIT if status in DONE_STATUSES else COLUMN_LIMIT
    queryset = apply_filters(visible(now).filter(status=status), filters, user, now)
    if total is None:
        total = queryset.count()
    tickets = list(
        queryset.select_related("assignee").order_by("priority", "opened_at", "pk")[
            offset : offset + limit
        ]
    )
    return {
        "status": status,
        "label": workflow.STATUSES[status],
        "cards": [card_context(ticket, now) for ticket in tickets],
        "total": total,
        "more": offset + len(tickets) < total,
        "next_offset": offset + len(tickets),
    }


def columns(filters, user, now=None):
    now = now or timezone.now()
    queryset = apply_filters(visible(now), filters, user, now)
    totals = dict(queryset.values_list("status").annotate(n=Count("pk")).order_by())
    return [
        column(status, filters, user, now, total=totals.get(status, 0))
        for status in workflow.STATUSES
    ]


def open_counts():
    """Open tickets per status and per priority, in one query."""
    open_tickets = Ticket.objects.filter(status__in=workflow.OPEN_STATUSES)
    rows = open_tickets.values_list("status", "priority").annotate(n=Count("pk")).order_by()
    by_status = dict.fromkeys(workflow.OPEN_STATUSES, 0)
    by_priority = dict.fromkeys(PRIORITIES, 0)
    for status, priority, n in rows:
        by_status[status] += n
        by_priority[priority] += n
    return {"by_status": by_status, "by_priority": by_priority}


def board_counts(now=None):
    """Numbers every board and overview shows: open per status and priority, breaches."""
    now = now or timezone.now()
    breached = Ticket.objects.filter(status__in=workflow.OPEN_STATUSES).filter(breached_q(now))
    return {**open_counts(), "breached": breached.count()}


def breached_by_team(now=None, limit=20):
    """Open tickets past an SLA deadline, grouped by the team that owns them."""
    now = now or timezone.now()
    tickets = (
        Ticket.objects.filter(status__in=workflow.OPEN_STATUSES)
        .filter(breached_q(now))
        .select_related("assignee")
        .order_by("priority", "opened_at")
    )
    teams = {}
    for ticket in tickets[: limit * len(catalog.TEAMS)]:
        teams.setdefault(ticket.team, []).append(ticket)
    return [
        {"team": code, "label": label, "tickets": teams[code][:limit], "count": len(teams[code])}
        for code, label in catalog.TEAMS.items()
        if code in teams
    ]


def card_context(ticket, now=None):
    """Everything a card shows, computed here so that rendering 180 cards stays cheap."""
    now = now or timezone.now()
    assignee = ticket.assignee
    return {
        "t": ticket,
        "sla": sla.display(ticket, now),
        "sort": f"{ticket.priority}|{int(ticket.opened_at.timestamp())}|{ticket.pk:012d}",
        "url": reverse("cc:ticket", args=[ticket.pk]),
        "assignee": assignee and (assignee.get_full_name() or assignee.get_username()),
        "category": catalog.CATEGORIES.get(ticket.category, ticket.category),
        "opened": ticket.opened_at.isoformat(),
        "age": age_text((now - ticket.opened_at).total_seconds()),
        "late_ack": ticket.acknowledged_at is not None and ticket.acknowledged_at > ticket.ack_due,
    }


def age_text(seconds):
    """'12 min', '5 h 03 min', '3 d 4 h' (the browser keeps it up to date)."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def render_card(ticket, now=None):
    """The card fragment: rendered once per change and sent to every board as it is."""
    return render_to_string("commandcenter/_card.html", {"card": card_context(ticket, now)})
