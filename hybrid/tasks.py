"""Celery tasks of the hybrid period: thin adapters over hybrid/actions.py, on the engine's
queue (MIGRATION_QUEUE), acknowledged on receipt: a forward's recovery comes from its
lease in the forward ledger, not from redelivery."""

from celery import shared_task
from django.conf import settings
from django.contrib.contenttypes.models import ContentType

from hybrid import actions
from hybrid.models import Bridge, RoundTrip


def enqueue_forward(row_id, countdown=None):
    forward_study.apply_async((row_id,), queue=settings.MIGRATION_QUEUE, countdown=countdown)


def enqueue_round_trip(trip_id):
    trip = RoundTrip.objects.filter(pk=trip_id).first()
    limit = 2 * (trip.objective_s if trip else 900) + 120
    round_trip.apply_async(
        (trip_id,), queue=settings.MIGRATION_QUEUE, soft_time_limit=limit, time_limit=limit + 30
    )


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
