"""Queueing the bridge's tasks by name, so `hybrid.actions` need not import the task
module that imports it (the tasks are thin adapters over the actions)."""

from celery import signature
from django.conf import settings


def enqueue_forward(row_id, countdown=None):
    signature("hybrid.tasks.forward_study").apply_async(
        (row_id,), queue=settings.MIGRATION_QUEUE, countdown=countdown
    )


def enqueue_round_trip(trip_id, objective_s=900):
    """The probe's task may run two legs, each up to the lag objective."""
    limit = 2 * objective_s + 120
    signature("hybrid.tasks.round_trip").apply_async(
        (trip_id,), queue=settings.MIGRATION_QUEUE, soft_time_limit=limit, time_limit=limit + 30
    )
