"""Sync lag figures: from a study's first sighting on the legacy PACS to its verified
presence in the cloud (pure functions over SyncedStudy rows)."""

from datetime import timedelta

from django.utils import timezone

WINDOW = timedelta(hours=1)


def quantile(values, q):
    """Linear-interpolated quantile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(sync, now=None):
    """{enabled, lag_p50_s, lag_p95_s, oldest_unsynced_s, pending, verified_last_hour,
    objective_s, over_objective} for one SyncSource (the `--status --json` keys first)."""
    from django.conf import settings

    now = now or timezone.now()
    rows = sync.studies.all()
    lags = list(
        rows.filter(verified_at__gte=now - WINDOW, lag_s__isnull=False).values_list(
            "lag_s", flat=True
        )
    )
    pending = rows.filter(verified_at__isnull=True)
    oldest = pending.order_by("sighted_at").values_list("sighted_at", flat=True).first()
    oldest_s = max(0.0, (now - oldest).total_seconds()) if oldest else None
    objective = float(settings.SYNC_LAG_OBJECTIVE_SECONDS)
    p95 = quantile(lags, 0.95)
    return {
        "enabled": sync.enabled,
        "lag_p50_s": _round(quantile(lags, 0.5)),
        "lag_p95_s": _round(p95),
        "oldest_unsynced_s": _round(oldest_s),
        "pending": pending.count(),
        "verified_last_hour": len(lags),
        "objective_s": objective,
        "over_objective": bool((p95 or 0) > objective or (oldest_s or 0) > objective),
    }


def _round(value):
    return None if value is None else round(value, 1)
