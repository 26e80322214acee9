"""Celery tasks of the hybrid period: thin adapters over `sync.actions`."""

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=False, soft_time_limit=600, time_limit=660)
def tick():
    """Beat: due incremental crawls, stalled managed waves, lag objective, live panels."""
    from sync import actions

    return actions.tick()


@shared_task(bind=True, ignore_result=True, max_retries=5, default_retry_delay=10)
def queue_priors(self, appointment_id):
    """Look up an appointment's patient and expedite the priors (stored message first:
    a retry finds it again)."""
    from sync import actions
    from sync.models import Appointment

    appointment = Appointment.objects.filter(pk=appointment_id).first()
    if appointment is None:
        return None
    try:
        actions.process_appointment(appointment)
    except Exception as exc:
        log.exception("appointment %s: queueing its priors failed", appointment_id)
        if self.request.retries >= self.max_retries:
            actions.fail_appointment(appointment_id, f"{type(exc).__name__}")
            return None
        raise self.retry(exc=exc) from None
    return appointment.state
