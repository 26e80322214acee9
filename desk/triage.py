"""The triage board's queries: columns, filters, counts, breaches, and the card fragment.

The board shows what a shift works on: open tickets, plus what was resolved or closed in
the last day. Each column holds at most COLUMN_LIMIT cards; more load on demand.
"""

from datetime import timedelta

from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from desk import catalog, sla, workflow
from desk.models import Ticket
from desk.priority import PRIORITIES

COLUMN_LIMIT = 20
DONE_LIMIT = 10  # resolved and closed columns show the latest few; "show more" pages on
DONE_WINDOW = timedelta(hours=24)
DONE_STATUSES = ("resolved", "closed")
FILTERS = ("priority", "category", "assignee", "mine", "breached")
# What a card shows: big text (description, links) stays in the database.
CARD_FIELDS = (
    "title",
    "category",
    "priority",
    "status",
    "occurrences",
    "escalations",
    "opened_at",
    "acknowledged_at",
    "resolved_at",
    "ack_due",
    "resolve_due",
    "paused_since",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
)


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


CARD_ORDER = ("priority", "opened_at", "pk")


def limit_of(status):
    return DONE_LIMIT if status in DONE_STATUSES else COLUMN_LIMIT


def _column(status, tickets, total, now, offset=0):
    return {
        "status": status,
        "label": workflow.STATUSES[status],
        "cards": [card_context(ticket, now) for ticket in tickets],
        "total": total,
        "more": offset + len(tickets) < total,
        "next_offset": offset + len(tickets),
    }


def card_rows(queryset):
    """Tickets as cards need them: the assignee joined, big text left in the database."""
    return queryset.select_related("assignee").only(*CARD_FIELDS)


def column(status, filters, user, now, offset=0):
    """One page of one column ("show more"): its cards and whether more follow."""
    queryset = apply_filters(visible(now).filter(status=status), filters, user, now)
    limit = limit_of(status)
    page = card_rows(queryset).order_by(*CARD_ORDER)[offset : offset + limit]
    return _column(status, list(page), queryset.count(), now, offset)


def first_cards(queryset):
    """{status: tickets} of every column's first page, in one query (a row number per
    status picks the cards), so the board's cost does not grow with its columns."""
    rank = Window(RowNumber(), partition_by=F("status"), order_by=[F(f) for f in CARD_ORDER])
    first = queryset.annotate(rank=rank).filter(rank__lte=COLUMN_LIMIT).values("pk")
    by_status = {}
    for ticket in card_rows(Ticket.objects.filter(pk__in=first)).order_by(*CARD_ORDER):
        by_status.setdefault(ticket.status, []).append(ticket)
    return {status: tickets[: limit_of(status)] for status, tickets in by_status.items()}


def columns(filters, user, now=None, totals=None):
    """Every column's first page. `totals` ({status: n}, e.g. from `board_summary`) saves
    a query when the caller already counted the same tickets."""
    now = now or timezone.now()
    queryset = apply_filters(visible(now), filters, user, now)
    if totals is None:
        totals = dict(queryset.values_list("status").annotate(n=Count("pk")).order_by())
    cards = first_cards(queryset)
    return [
        _column(status, cards.get(status, []), totals.get(status, 0), now)
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


def board_summary(now=None):
    """(`board_counts`, {status: tickets on the unfiltered board}) in one query."""
    now = now or timezone.now()
    rows = visible(now).values_list("status", "priority").order_by()
    rows = rows.annotate(n=Count("pk"), late=Count("pk", filter=breached_q(now)))
    counts = {
        "by_status": dict.fromkeys(workflow.OPEN_STATUSES, 0),
        "by_priority": dict.fromkeys(PRIORITIES, 0),
        "breached": 0,
    }
    totals = {}
    for status, priority, n, late in rows:
        totals[status] = totals.get(status, 0) + n
        if status in workflow.OPEN_STATUSES:
            counts["by_status"][status] += n
            counts["by_priority"][priority] += n
            counts["breached"] += late
    return counts, totals


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
    return render_to_string("desk/_card.html", {"card": card_context(ticket, now)})
