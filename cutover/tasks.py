"""Celery tasks of the roadmap and cutover: thin adapters over cutover.actions."""

from celery import shared_task

from cutover import actions
from cutover.follow import readiness_taken
from cutover.models import Probe


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_probe(probe_id, trigger="on demand"):
    probe = Probe.objects.select_related("plan__integration").filter(pk=probe_id).first()
    if probe is not None:
        actions.run_probe(probe, trigger=trigger)


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def run_scheduled_probes():
    """Beat: queue every scheduled probe (one task each, so a slow endpoint delays no other)."""
    for probe_id in Probe.objects.filter(scheduled=True).values_list("pk", flat=True):
        run_probe.delay(probe_id, "schedule")


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def refresh_live():
    """Beat: live-bound task progress and the go/no-go screen catch up with every app."""
    actions.refresh_live_tasks()
    actions.publish_readiness()


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def publish_readiness():
    """Another app changed something a go/no-go criterion reads (cutover.apps)."""
    readiness_taken()
    actions.publish_readiness()
