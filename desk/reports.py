"""Ticket reports: volume per day, response times, SLA compliance, recurring problems."""

import io
from datetime import timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from core.scrub import safe_writer, scrub_text
from desk import catalog, sla, triage
from desk.models import Ticket
from desk.priority import PRIORITIES

CSV_FIELDS = [
    "id",
    "opened_at",
    "title",
    "category",
    "priority",
    "status",
    "source",
    "team",
    "assignee",
    "occurrences",
    "acknowledged_at",
    "resolved_at",
    "minutes_to_acknowledge",
    "minutes_to_resolve",
    "sla_breached",
]


def window(days, now=None):
    now = now or timezone.now()
    return Ticket.objects.filter(opened_at__gte=now - timedelta(days=days))


def per_day(days=14, now=None):
    """{"days": [date...], "by_priority": {P: [n...]}, "by_category": {code: [n...]}}."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    dates = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    result = {"days": dates}
    for field, keys in (("priority", PRIORITIES), ("category", catalog.CATEGORIES)):
        table = {key: [0] * days for key in keys}
        rows = (
            window(days, now)
            .annotate(day=TruncDate("opened_at"))
            .values_list("day", field)
            .annotate(n=Count("pk"))
            .order_by()
        )
        for day, key, n in rows:
            if day in dates and key in table:
                table[key][dates.index(day)] += n
        result[f"by_{field}"] = table
    return result


def _minutes(start, end):
    return (end - start).total_seconds() / 60


def response_times(days=14, now=None):
    """Mean minutes to acknowledge and to resolve, of tickets opened in the window."""
    rows = window(days, now).values_list("opened_at", "acknowledged_at", "resolved_at")
    acks = [_minutes(o, a) for o, a, r in rows if a]
    fixes = [_minutes(o, r) for o, a, r in rows if r]
    return {
        "mtta_minutes": round(sum(acks) / len(acks), 1) if acks else None,
        "mttr_minutes": round(sum(fixes) / len(fixes), 1) if fixes else None,
        "acknowledged": len(acks),
        "resolved": len(fixes),
    }


def compliance(days=14, now=None):
    """Share of tickets that met each SLA clock, over tickets whose clock is decided
    (done, or already past due), overall and per priority."""
    now = now or timezone.now()
    table = {p: {"met": 0, "breached": 0} for p in PRIORITIES}
    for ticket in window(days, now).only(
        "priority", "acknowledged_at", "resolved_at", "ack_due", "resolve_due", "paused_since"
    ):
        breached = sla.is_breached(ticket, now)
        if breached or ticket.resolved_at:
            table[ticket.priority]["breached" if breached else "met"] += 1
    met = sum(row["met"] for row in table.values())
    decided = met + sum(row["breached"] for row in table.values())
    for row in table.values():
        total = row["met"] + row["breached"]
        row["share"] = round(row["met"] / total, 3) if total else None
    return {"share": round(met / decided, 3) if decided else None, "by_priority": table}


def top_problems(days=14, now=None, limit=10):
    """The most frequent problems: automatic causes by occurrences, then repeated titles."""
    rows = (
        window(days, now)
        .values("cause", "title", "category")
        .annotate(tickets=Count("pk"), occurrences=Sum("occurrences"))
        .order_by("-occurrences", "-tickets", "title")[:limit]
    )
    return [
        {**row, "category_label": catalog.CATEGORIES.get(row["category"], row["category"])}
        for row in rows
    ]


def summary(days=14, now=None):
    return {
        "days": days,
        "per_day": per_day(days, now),
        "response_times": response_times(days, now),
        "compliance": compliance(days, now),
        "top_problems": top_problems(days, now),
        "open": triage.open_counts()["by_status"],
    }


def csv_text(days=30, now=None):
    """Every ticket opened in the window, one CSV row each (no PHI columns)."""
    now = now or timezone.now()
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow(CSV_FIELDS)
    for t in window(days, now).select_related("assignee").order_by("opened_at"):
        writer.writerow(
            [
                t.pk,
                t.opened_at.isoformat(),
                scrub_text(t.title),
                t.get_category_display(),
                t.priority,
                t.get_status_display(),
                t.source,
                t.get_team_display(),
                t.assignee.get_username() if t.assignee else "",
                t.occurrences,
                t.acknowledged_at.isoformat() if t.acknowledged_at else "",
                t.resolved_at.isoformat() if t.resolved_at else "",
                round(_minutes(t.opened_at, t.acknowledged_at), 1) if t.acknowledged_at else "",
                round(_minutes(t.opened_at, t.resolved_at), 1) if t.resolved_at else "",
                "yes" if sla.is_breached(t, now) else "no",
            ]
        )
    return out.getvalue()
