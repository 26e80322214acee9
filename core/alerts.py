"""The seam through which any part of the product raises a problem for the command center.

Callers (the migration engine, validation, monitors, clinician feedback) call
`raise_alert(...)`. It writes an `Alert` row (an outbox) in the caller's transaction,
publishes one `alerts.<source>` event for screens, and after commit queues a Celery task
(`core.tasks.drain_alerts`) that hands every pending row to the desk's intake (registered
with `take_in_with`), which opens or updates one ticket per `cause`. A row becomes done in
the transaction that records its ticket, so an alert is taken in exactly once even when a
worker dies after the caller's commit (beat's re-drain, or the next drain, takes it).
Nothing here may carry PHI: use ledger ids and UIDs, never patient names, patient IDs or
accession numbers.
"""

import logging
from datetime import timedelta

from celery import signature
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.events import publish
from core.models import Alert
from core.scrub import exception_text

log = logging.getLogger(__name__)

SOURCES = ("migration", "validation", "monitoring", "feedback", "integration", "inventory")
LEVELS = ("high", "medium", "low")
MAX_ATTEMPTS = 5  # a row whose intake failed this often is left for a person (admin)
KEEP_DONE = timedelta(days=7)
_intake = []


def raise_alert(
    source,
    cause,
    title,
    *,
    category="other",
    impact="medium",
    urgency="medium",
    detail="",
    links=None,
):
    """Report a problem. `cause` is a stable key (same cause → same open ticket), e.g.
    "migration.study_failed.wave-3"; `links` maps "wave", "study", "integration",
    "training_session", "feedback" to ids."""
    if source not in SOURCES:
        raise ValueError(f"unknown alert source {source!r}")
    if impact not in LEVELS or urgency not in LEVELS:
        raise ValueError("impact and urgency are 'high', 'medium' or 'low'")
    payload = {
        "source": source,
        "cause": cause[:200],
        "title": title[:200],
        "category": category,
        "impact": impact,
        "urgency": urgency,
        "detail": detail[:4000],
        "links": dict(links or {}),
    }
    return _report(payload)


def clear_alert(source, cause, detail=""):
    """Report that the problem of `cause` is over; its open automatic ticket, if any, is
    resolved. Call it when a check goes from failing to passing (each call is an event)."""
    if source not in SOURCES:
        raise ValueError(f"unknown alert source {source!r}")
    payload = {"source": source, "cause": cause[:200], "recovered": True, "detail": detail[:4000]}
    return _report(payload)


def _report(payload):
    Alert.objects.create(cause=payload["cause"], payload=payload)
    publish(f"alerts.{payload['source']}", payload)
    transaction.on_commit(_after_commit)
    return payload


def _after_commit():
    try:
        enqueue_drain()
    except Exception as exc:  # no broker (e.g. Redis is the alert): take them in here
        log.warning("alerts: could not queue the drain (%s); taking them in here", exc)
        drain()


def enqueue_drain():
    signature("core.tasks.drain_alerts").apply_async(queue=settings.ALERT_QUEUE)


def take_in_with(handler):
    """Register `handler(payload)`, the desk's intake (one per process, from an app's
    `ready()`); it runs inside the transaction that marks the alert done."""
    _intake[:] = [handler]
    return handler


def drain():
    """Take every pending alert in, oldest first; returns how many were taken. Several
    drains may run at once: each row is locked while it is taken in, and a row waits
    for the earlier pending rows of its cause (a recovery never overtakes its alert)."""
    if not _intake:
        raise RuntimeError("no alert intake registered (is the desk app installed?)")
    passed, taken = set(), 0
    while (outcome := _take_next(passed)) is not None:
        taken += outcome
    return taken


def _pending():
    return Alert.objects.filter(done_at__isnull=True, attempts__lt=MAX_ATTEMPTS)


def _take_next(passed):
    """Take the oldest pending row nobody holds in; 1 when taken, 0 when passed over
    (an earlier row of its cause is pending, or its intake failed), None when none is left."""
    with transaction.atomic():
        row = _pending().exclude(pk__in=passed).select_for_update(skip_locked=True).first()
        if row is None:
            return None
        passed.add(row.pk)
        if _pending().filter(cause=row.cause, pk__lt=row.pk).exists():
            return 0
        try:
            with transaction.atomic():
                _intake[0](row.payload)
        except Exception as exc:
            log.exception("alerts: intake of alert %s failed", row.pk)
            text = exception_text(exc)[:300]
            Alert.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1, error=text)
            return 0
        Alert.objects.filter(pk=row.pk).update(done_at=timezone.now(), error="")
        return 1


def prune(now=None):
    """Forget alerts taken in more than KEEP_DONE ago (their tickets keep the story)."""
    cutoff = (now or timezone.now()) - KEEP_DONE
    return Alert.objects.filter(done_at__lt=cutoff).delete()[0]
