"""The engine's Celery tasks, queued by name on MIGRATION_QUEUE.

`migration.tasks` adapts tasks to `dispatch`, `actions` and `discrepancies`; those queue
tasks through here, so none of them imports the task module that imports them."""

from celery import signature
from django.conf import settings


def _send(task, args=(), **options):
    signature(f"migration.tasks.{task}").apply_async(
        args, queue=settings.MIGRATION_QUEUE, **options
    )


def enqueue_migrate_next(source_id, ticket):
    _send("migrate_next", (source_id, ticket))


def enqueue_tick(countdown=None):
    _send("tick", countdown=countdown)


def enqueue_dispatch(source_id):
    _send("dispatch_source", (source_id,))


def enqueue_destination_check(destination_id):
    limit = settings.EGRESS_CHECK_TIMEOUT
    _send("check_destination", (destination_id,), soft_time_limit=limit, time_limit=limit + 15)


def enqueue_validation(run_id):
    _send("run_validation", (run_id,))


def enqueue_revalidation(ledger_id):
    _send("revalidate_study", (ledger_id,))


def enqueue_remigration(row_id, user_id):
    _send("remigrate", (row_id, user_id))
