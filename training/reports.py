"""Feedback figures for the dashboard and the API: plain dicts and lists."""

from datetime import datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from training.catalog import KINDS, OPEN_FEEDBACK, SEVERITIES
from training.models import Feedback, Theme


def feedback_volume(weeks=8, now=None):
    """[{"week": date of Monday, "counts": {severity: n}}] for the last `weeks` weeks,
    oldest first, including empty weeks."""
    now = timezone.localtime(now or timezone.now())
    this_monday = (now - timedelta(days=now.weekday())).date()
    mondays = [this_monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    start = timezone.make_aware(datetime.combine(mondays[0], time.min))
    rows = (
        Feedback.objects.filter(created_at__gte=start)
        .annotate(week=TruncWeek("created_at"))
        .values_list("week", "severity")
        .annotate(n=Count("id"))
    )
    counts = {monday: dict.fromkeys(SEVERITIES, 0) for monday in mondays}
    for week, severity, n in rows:
        day = week.date() if hasattr(week, "date") else week
        if day in counts:
            counts[day][severity] += n
    return [{"week": monday, "counts": counts[monday]} for monday in mondays]


def feedback_by_kind():
    """{kind: {severity: n}} over all feedback, every kind and severity present."""
    table = {kind: dict.fromkeys(SEVERITIES, 0) for kind in KINDS}
    for kind, severity, n in Feedback.objects.values_list("kind", "severity").annotate(
        n=Count("id")
    ):
        table[kind][severity] += n
    return table


def top_themes(limit=10):
    """[{"theme", "count", "open"}], the most frequent first."""
    themes = Theme.objects.annotate(
        count=Count("feedback"),
        open=Count("feedback", filter=Q(feedback__status__in=OPEN_FEEDBACK)),
    ).filter(count__gt=0)
    return [
        {"theme": t.name, "count": t.count, "open": t.open}
        for t in themes.order_by("-count", "name")[:limit]
    ]


def feedback_summary():
    qs = Feedback.objects.all()
    return {
        "total": qs.count(),
        "open": qs.filter(status__in=OPEN_FEEDBACK).count(),
        "blocking_open": qs.filter(status__in=OPEN_FEEDBACK, severity="blocks").count(),
        "from_lead_users": qs.filter(from_lead_user=True).count(),
    }
