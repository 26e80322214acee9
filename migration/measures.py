"""Read-only measures of the migration, as plain dicts (other apps import these)."""

import time

from django.db.models import Count, Sum

from inventory.models import PacsSource
from migration import rates, throttle
from migration.models import (
    ACTIVE_STATES,
    Destination,
    Discrepancy,
    LedgerTally,
    StudyState,
    ValidationRun,
)


def tallies(wave_ids=None):
    """{state: {"studies", "instances_reported", "instances_stored", "bytes_stored"}} over
    the ledger rows of these waves (all when None), from the tallies the database keeps."""
    rows = LedgerTally.objects.all()
    if wave_ids is not None:
        rows = rows.filter(wave_pk__in=list(wave_ids))
    sums = rows.values("state").annotate(
        studies=Sum("studies"), instances_reported=Sum("instances_reported"),
        instances_stored=Sum("instances_stored"), bytes_stored=Sum("bytes_stored"),
    )  # fmt: skip
    found = {row.pop("state"): row for row in sums.order_by()}
    zero = dict.fromkeys(("studies", "instances_reported", "instances_stored", "bytes_stored"), 0)
    return {state: found.get(state, zero) for state in StudyState.values}


def _counts(by_state):
    return {state: sums["studies"] for state, sums in by_state.items()}


def wave_progress(wave_ids=None):
    """{"total","done","failed","quarantined","in_progress"} over the studies of these
    waves (all waves when None). `failed` counts studies waiting for a retry."""
    counts = _counts(tallies(wave_ids))
    return {
        "total": sum(counts.values()),
        "done": counts[StudyState.DONE],
        "failed": counts[StudyState.FAILED],
        "quarantined": counts[StudyState.QUARANTINED],
        "in_progress": sum(counts[state] for state in ACTIVE_STATES),
    }


def validation_summary():
    """{"waves", "validated_waves", "open_discrepancies"} over the waves that are neither
    draft nor cancelled (see `wave_validation` for what validated means)."""
    from migration.models import Wave, WaveState

    waves = list(Wave.objects.exclude(state__in=[WaveState.DRAFT, WaveState.CANCELLED]))
    open_rows = Discrepancy.objects.filter(wave__in=waves, status__in=Discrepancy.OPEN_STATES)
    open_by_wave = dict(open_rows.values_list("wave").annotate(n=Count("pk")).order_by())
    return {
        "waves": len(waves),
        "validated_waves": sum(
            not open_by_wave.get(wave.pk) and wave_reconciled(wave) for wave in waves
        ),
        "open_discrepancies": sum(open_by_wave.values()),
    }


def wave_validation(wave):
    """{"validated", "reconciled", "open", "last_reconcile", "last_spotcheck",
    "reconciled_counts"}: validated when the latest whole-wave reconciliation found every
    study complete and no discrepancy is open (or re-migrating)."""
    runs = _whole_reconciliations(wave)
    last_reconcile = runs.first()
    counts = _counts_of(last_reconcile)
    last_spotcheck = _done_runs(wave).filter(kind=ValidationRun.Kind.SPOTCHECK).first()
    open_count = wave.discrepancies.filter(status__in=Discrepancy.OPEN_STATES).count()
    reconciled = _all_complete(*counts)
    return {
        "validated": reconciled and open_count == 0,
        "reconciled": reconciled,
        "open": open_count,
        "last_reconcile": last_reconcile,
        "last_spotcheck": last_spotcheck,
        "reconciled_counts": {"studies": counts[0] or 0, "complete": counts[1] or 0},
    }


def wave_reconciled(wave):
    """Did the latest whole-wave reconciliation find every study complete? (The cutover
    gate asks this of every wave.)"""
    return _all_complete(*_counts_of(_whole_reconciliations(wave).first()))


def _counts_of(run):
    """(studies, complete) of a reconciliation run, (None, None) without one."""
    totals = run.totals if run else {}
    return totals.get("studies"), totals.get("complete")


def _done_runs(wave):
    return wave.validation_runs.filter(state=ValidationRun.State.DONE).order_by(
        "-finished_at", "-pk"
    )


def _whole_reconciliations(wave):
    return _done_runs(wave).filter(kind=ValidationRun.Kind.RECONCILE, sample_size__isnull=True)


def _all_complete(studies, complete):
    return bool(studies) and complete == studies


def wave_status(wave):
    """Everything the wave page, `wave status` and the API show about one wave."""
    by_state = tallies([wave.pk])
    counts = _counts(by_state)
    total = sum(counts.values())
    finished = (
        counts[StudyState.DONE] + counts[StudyState.QUARANTINED] + counts[StudyState.CANCELLED]
    )
    sums = {key: sum(s[key] for s in by_state.values()) for key in next(iter(by_state.values()))}
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
        "instances_stored": sums["instances_stored"],
        "instances_reported": sums["instances_reported"],
        "bytes_stored": sums["bytes_stored"],
        "rate_now": rate["now"],
        "rate_hour": rate["hour"],
        "eta_seconds": _eta(by_state[StudyState.DONE], total - finished, rate),
        "pacs": throttle.status(wave.source),
        "started_at": wave.started_at,
        "finished_at": wave.finished_at,
        "per_minute": rate["per_minute"],
    }


def _share(part, total):
    return round(100.0 * part / total, 1) if total else 0.0


def _eta(done, remaining, rate):
    """Seconds left at the current instance rate, from the mean instances per done study."""
    if remaining == 0:
        return 0
    per_second = rate["now"]["instances_s"] or rate["hour"]["instances_s"]
    if not per_second or not done["studies"]:
        return None
    return round(remaining * (done["instances_stored"] / done["studies"]) / per_second)


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


# --- for the command center's monitoring board (desk/monitoring.py) -------------
# Each reads the engine's Redis counters (migration/rates.py, throttle.py) and small
# tables only, so beat can call them every minute whatever the size of the ledger.


def transfer_totals(now=None):
    """Engine-wide throughput: the running totals "instances" and "bytes" (the board
    derives its per-sample rates from them), the rate over the last minute ("now") and
    the last hour ("hour"), and "per_minute": [epoch, instances/s, MB/s] of two hours."""
    now = now or time.time()
    recent = rates.rates(rates.ALL, now=now)
    return {
        **rates.totals(),
        "now": recent["now"],
        "hour": recent["hour"],
        "per_minute": [list(point) for point in rates.per_minute(rates.ALL, now)],
    }


def associations_in_use():
    """{PACS name: associations the engine holds open on it now, across all workers}: a
    number, as the board charts it and checks it against thresholds. Only PACS that some
    wave migrates from are listed (for the others the board says "not available")."""
    return {name: details["in_use"] for name, details in pacs_throttle().items()}


def pacs_throttle():
    """{PACS name: {"in_use", "limit" (its cap as lowered by the latency throttle),
    "latency_ms" (smoothed PACS response time, None before any sample)}} of the PACS that
    some wave migrates from."""
    found = {}
    sources = PacsSource.objects.filter(waves__isnull=False).distinct()
    for source in sources.only("pk", "name", "max_associations"):
        aimd = throttle.load_aimd(source.pk, source.max_associations)
        found[source.name] = {
            "in_use": throttle.Slots(source.pk).in_use(),
            "limit": max(1, min(source.max_associations, int(aimd.limit))),
            "latency_ms": None if aimd.latency_ms is None else round(aimd.latency_ms, 1),
        }
    return found


def destination_stats(now=None):
    """Per destination: mean upload latency over the last 5 minutes ("latency_ms", None
    without uploads), "uploads" then, study attempts failed on it in the last hour
    ("errors"), and its last Check."""
    rows = []
    for destination in Destination.objects.order_by("name"):
        checked = destination.last_check_at
        rows.append(
            {
                "name": destination.name,
                "kind": destination.kind,
                **rates.destination_recent(destination.pk, now),
                "last_check_at": checked.isoformat() if checked else None,
                "last_check_ok": destination.last_check_ok,
                "last_check_ms": destination.last_check_ms,
            }
        )
    return rows


def conformance_summary():
    """{"destinations": cloud (S3, DICOMweb) destinations some wave uses, "conforming":
    those whose latest check against their design passed, "failing": names of the others
    (no design, never checked, or failed)}."""
    from migration.models import ConformanceRun

    used = Destination.objects.filter(waves__isnull=False, kind__in=["s3", "dicomweb"]).distinct()
    failing = []
    for destination in used.order_by("name"):
        latest = ConformanceRun.objects.filter(destination=destination).first()
        if latest is None or not latest.conforms:
            failing.append(destination.name)
    count = used.count()
    return {"destinations": count, "conforming": count - len(failing), "failing": failing}
