"""Celery tasks of the hybrid period: thin adapters over hybrid/actions.py, on the engine's
queue (MIGRATION_QUEUE), acknowledged on receipt: a forward's recovery comes from its
lease in the forward ledger, not from redelivery."""

from celery import shared_task
from django.contrib.contenttypes.models import ContentType

from hybrid import actions
from hybrid.models import Bridge, RoundTrip


@shared_task(ignore_result=True, acks_late=False, soft_time_limit=3600, time_limit=3660)
def forward_study(row_id):
    return actions.run_forward(row_id)


@shared_task(ignore_result=True, acks_late=False)
def round_trip(trip_id):
    ContentType.objects.clear_cache()  # the probe creates audited rows; ids read fresh
    trip = RoundTrip.objects.select_related("bridge__source", "bridge__destination").filter(
        pk=trip_id
    )
    if trip.exists():
        actions.run_round_trip(trip.get())


@shared_task(ignore_result=True, acks_late=False, soft_time_limit=300, time_limit=330)
def scan_bridges():
    """Beat: every enabled bridge looks for studies that reached the cloud first; forwards
    that are due get their task."""
    for bridge in Bridge.objects.filter(enabled=True).select_related("source", "destination"):
        actions.scan(bridge)
    actions.enqueue_due()
