"""The guarded state machine of the migration ledger.

Every change of a ledger row's state goes through `transition()`: one conditional UPDATE
that names the states the row may come from (`models.STUDY_TRANSITIONS`) and, for a worker,
its lease owner. A worker owns a study only after `claim_next()` won it by such an UPDATE
(on PostgreSQL the candidates are first locked with SKIP LOCKED), so two workers can never
both own a study; a worker that lost its lease finds its next transition refused.
"""

import random
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.scrub import scrub_text
from migration.models import (
    ACTIVE_STATES,
    ERROR_CLASSES,
    STUDY_TRANSITIONS,
    StudyState,
    Wave,
    WaveState,
    WaveStudy,
)


class LeaseLostError(RuntimeError):
    """The row is no longer ours (its lease expired and another worker claimed it)."""


def lease_seconds():
    return float(settings.MIGRATION_LEASE_SECONDS)


def transition(ledger_id, to_state, *, owner=None, from_states=None, where=None, **fields):
    """Move one row to `to_state` if it is in an allowed state (and owned by `owner`, and
    matches `where`). Returns True when the row moved; `fields` are written in the same
    UPDATE."""
    allowed = STUDY_TRANSITIONS[to_state]
    if from_states is not None:
        allowed = allowed & set(from_states)
    rows = WaveStudy.objects.filter(pk=ledger_id, state__in=allowed)
    if owner is not None:
        rows = rows.filter(lease_owner=owner)
    if where is not None:
        rows = rows.filter(where)
    return rows.update(state=to_state, updated_at=timezone.now(), **fields) == 1


def advance(ledger_id, to_state, owner, **fields):
    """A worker's own transition: raises LeaseLostError when the row is no longer its own."""
    if not transition(ledger_id, to_state, owner=owner, **fields):
        raise LeaseLostError(f"ledger {ledger_id}: lease lost before {to_state}")


def _claimable(now):
    waiting = Q(state__in=[StudyState.QUEUED, StudyState.FAILED]) & (
        Q(not_before__lte=now) | Q(not_before__isnull=True)
    )
    return waiting | Q(state__in=ACTIVE_STATES, lease_expires__lt=now)


def claim_next(wave_ids, owner, now=None):
    """Claim the next study of the given waves (in order of priority) for `owner`.

    Returns the claimed WaveStudy (state retrieving, attempts + 1) or None. A row whose
    lease expired (its worker died) is reclaimed the same way. On PostgreSQL candidates
    are locked with SKIP LOCKED so workers do not queue behind each other; everywhere the
    conditional UPDATE in `_take` is what makes the claim exclusive.
    """
    now = now or timezone.now()
    for wave_id in wave_ids:
        pk = _claim_in(wave_id, owner, now)
        if pk is not None:
            return WaveStudy.objects.select_related(
                "wave", "study", "wave__source", "wave__destination", "wave__profile"
            ).get(pk=pk)
    return None


def _claim_in(wave_id, owner, now, batch=8):
    rows = WaveStudy.objects.filter(_claimable(now), wave_id=wave_id).order_by("not_before", "pk")
    if not connection.features.has_select_for_update_skip_locked:
        candidates = list(rows.values_list("pk", flat=True)[:batch])
        return next((pk for pk in candidates if _take(pk, owner, now)), None)
    with transaction.atomic():
        locked = list(rows.select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch])
        return next((pk for pk in locked if _take(pk, owner, now)), None)


def _take(pk, owner, now):
    return transition(
        pk,
        StudyState.RETRIEVING,
        where=_claimable(now) & Q(attempts__lt=settings.MIGRATION_MAX_ATTEMPTS),
        lease_owner=owner,
        host=owner.split(":", 1)[0][:80],
        lease_expires=now + timedelta(seconds=lease_seconds()),
        attempts=F("attempts") + 1,
        started_at=now,
    )


def renew(ledger_id, owner):
    """Extend the lease of a study we own; False when it is no longer ours."""
    until = timezone.now() + timedelta(seconds=lease_seconds())
    rows = WaveStudy.objects.filter(pk=ledger_id, lease_owner=owner, state__in=ACTIVE_STATES)
    return rows.update(lease_expires=until) == 1


def retry_delay(attempts):
    """Exponential backoff with full jitter on the upper half: base·2^(n-1) ∈ [½, 1]×."""
    base = float(settings.MIGRATION_RETRY_BASE_SECONDS)
    cap = float(settings.MIGRATION_RETRY_MAX_SECONDS)
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return ceiling * (0.5 + random.random() / 2)


def fail(row, owner, error_class, message, **fields):
    """Record a failed attempt: back to `failed` with a retry time, or `quarantined` when
    the error cannot heal by itself or the attempts are used up. Returns the new state."""
    _label, retryable, _category = ERROR_CLASSES[error_class]
    final = not retryable or row.attempts >= settings.MIGRATION_MAX_ATTEMPTS
    to_state = StudyState.QUARANTINED if final else StudyState.FAILED
    now = timezone.now()
    moved = transition(
        row.pk,
        to_state,
        owner=owner,
        error_class=error_class,
        last_error=scrub_text(message)[:2000],
        not_before=None if final else now + timedelta(seconds=retry_delay(row.attempts)),
        lease_owner="",
        lease_expires=None,
        finished_at=now,
        **fields,
    )
    if not moved:
        raise LeaseLostError(f"ledger {row.pk}: lease lost before recording a failure")
    return to_state


def expire_abandoned(now=None):
    """Rows whose worker vanished with every attempt used: quarantine them (worker_lost).

    Rows with attempts left are simply claimable again (see `_claimable`)."""
    now = now or timezone.now()
    stale = WaveStudy.objects.filter(
        state__in=ACTIVE_STATES,
        lease_expires__lt=now,
        attempts__gte=settings.MIGRATION_MAX_ATTEMPTS,
    ).values_list("pk", flat=True)
    message = "the worker running this study stopped answering on its last attempt"
    return [
        pk
        for pk in list(stale)
        if transition(
            pk,
            StudyState.QUARANTINED,
            where=Q(lease_expires__lt=now),
            error_class="worker_lost",
            last_error=message,
            lease_owner="",
            lease_expires=None,
        )
    ]


def next_wakeup(wave_ids, now=None):
    """Seconds until some row of these waves becomes claimable (retry time or lease
    expiry); None when nothing is waiting."""
    now = now or timezone.now()
    rows = WaveStudy.objects.filter(wave_id__in=wave_ids)
    times = [
        rows.filter(state=StudyState.FAILED)
        .order_by("not_before")
        .values_list("not_before", flat=True)
        .first(),
        rows.filter(state__in=ACTIVE_STATES)
        .order_by("lease_expires")
        .values_list("lease_expires", flat=True)
        .first(),
    ]
    times = [t for t in times if t is not None]
    if not times:
        return None
    return max(0.0, (min(times) - now).total_seconds())


def running_waves(source_id):
    return list(
        Wave.objects.filter(source_id=source_id, state=WaveState.RUNNING)
        .order_by("-priority", "pk")
        .values_list("pk", flat=True)
    )
