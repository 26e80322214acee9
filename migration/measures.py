"""Read-only measures of the migration, as plain dicts (other apps import these)."""

from django.db.models import Count, Sum
from django.utils import timezone

from migration import rates, throttle
from migration.models import ACTIVE_STATES, StudyState, WaveStudy


def _counts(rows):
    by_state = dict(rows.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    return {state: by_state.get(state, 0) for state in StudyState.values}


def wave_progress(wave_ids=None):
    """{"total","done","failed","quarantined","in_progress"} over the studies of these
    waves (all waves when None). `failed` counts studies waiting for a retry."""
    rows = WaveStudy.objects.all()
    if wave_ids is not None:
        rows = rows.filter(wave_id__in=list(wave_ids))
    counts = _counts(rows)
    return {
        "total": sum(counts.values()),
        "done": counts[StudyState.DONE],
        "failed": counts[StudyState.FAILED],
        "quarantined": counts[StudyState.QUARANTINED],
        "in_progress": sum(counts[state] for state in ACTIVE_STATES),
    }


def validation_summary():
    """Spot-check validation (issue 5) is not built yet: zeros."""
    return {"waves": 0, "validated_waves": 0, "open_discrepancies": 0}


def wave_status(wave):
    """Everything the wave page, `wave status` and the API show about one wave."""
    rows = wave.ledger.all()
    counts = _counts(rows)
    total = sum(counts.values())
    finished = (
        counts[StudyState.DONE] + counts[StudyState.QUARANTINED] + counts[StudyState.CANCELLED]
    )
    sums = rows.aggregate(
        stored=Sum("instances_stored"), reported=Sum("instances_reported"), size=Sum("bytes_stored")
    )
    rate = rates.rates(wave.pk, wave.started_at)
    return {
        "wave": wave.name,
        "id": wave.pk,
        "state": wave.state,
        "total": total,
        "counts": counts,
        "percent": round(100.0 * finished / total, 1) if total else 0.0,
        "done_percent": _share(counts[StudyState.DONE], total),
        "quarantined_percent": _share(counts[StudyState.QUARANTINED], total),
        "instances_stored": sums["stored"] or 0,
        "instances_reported": sums["reported"] or 0,
        "bytes_stored": sums["size"] or 0,
        "rate_now": rate["now"],
        "rate_hour": rate["hour"],
        "eta_seconds": _eta(rows, counts, total - finished, rate),
        "pacs": throttle.status(wave.source),
        "started_at": wave.started_at,
        "finished_at": wave.finished_at,
        "per_minute": rate["per_minute"],
    }


def _share(part, total):
    return round(100.0 * part / total, 1) if total else 0.0


def _eta(rows, counts, remaining, rate):
    """Seconds left at the current instance rate, from the mean instances per done study."""
    if remaining == 0:
        return 0
    per_second = rate["now"]["instances_s"] or rate["hour"]["instances_s"]
    done = counts[StudyState.DONE]
    if not per_second or not done:
        return None
    stored = rows.filter(state=StudyState.DONE).aggregate(n=Sum("instances_stored"))["n"] or 0
    return round(remaining * (stored / done) / per_second)


def slowest_studies(wave, limit=5):
    return list(
        wave.ledger.filter(state=StudyState.DONE, duration_s__isnull=False)
        .select_related("study")
        .order_by("-duration_s")[:limit]
    )


def recent_failures(wave, limit=8):
    return list(
        wave.ledger.filter(state__in=[StudyState.FAILED, StudyState.QUARANTINED])
        .select_related("study")
        .order_by("-updated_at")[:limit]
    )


def active_studies(wave):
    now = timezone.now()
    return list(
        wave.ledger.filter(state__in=ACTIVE_STATES, lease_expires__gt=now).select_related("study")
    )
