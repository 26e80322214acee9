"""Celery tasks of the engine: thin adapters over migration/dispatch.py (and actions,
discrepancies, availability); the modules they adapt queue them by name (`enqueue`).

They run on the MIGRATION_QUEUE queue and are acknowledged on receipt: a study's
recovery after a worker dies comes from the ledger's lease, not from redelivery.
"""

import contextlib

from celery import shared_task
from celery.signals import worker_init, worker_ready
from django.template.loader import get_template
from django.urls import get_resolver

from inventory.models import PacsSource
from migration import dispatch, engine, storage
from migration.enqueue import enqueue_tick


@shared_task(ignore_result=True, acks_late=False)
def migrate_next(source_id, ticket=None):
    """Run the next study of this PACS's running waves, then queue the next step."""
    source = PacsSource.objects.filter(pk=source_id).first()
    if source is not None:
        return dispatch.migrate_next(source, ticket)
    return None


@shared_task(ignore_result=True, acks_late=False)
def dispatch_source(source_id):
    """A wave of this PACS starts or resumes, or studies are queued again: top its
    streams up now (beat's tick would, later)."""
    source = PacsSource.objects.filter(pk=source_id).first()
    if source is not None:
        dispatch.dispatch(source)


@shared_task(ignore_result=True, acks_late=False)
def check_destination(destination_id):
    """The destination's Check, in a worker (egress stays out of the web process)."""
    from migration import actions
    from migration.models import Destination

    destination = Destination.objects.filter(pk=destination_id).first()
    if destination is not None:
        actions.check_destination(destination)


@shared_task(ignore_result=True, acks_late=False, soft_time_limit=3600, time_limit=3660)
def remigrate(row_id, user_id=None):
    """Re-migrate a study (keep changed objects aside, verified, then queue it again)."""
    from django.contrib.auth import get_user_model

    from migration import discrepancies

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    discrepancies.run_remigration(row_id, user)


@shared_task(ignore_result=True, acks_late=False, soft_time_limit=60, time_limit=90)
def tick():
    """Beat, worker start and `wave start --wait` run this: top up, recover, close."""
    return dispatch.tick()


@worker_init.connect
def _warm_up(sender=None, **kwargs):
    """Load once, before the pool forks, what each pool process would load on its first
    study: botocore's S3 model, Django's URL patterns and the live-progress template
    (together about 0.3 s of CPU per process, a twentieth of a 1,000-instance wave); and
    keep instance buffers in the C heap (`engine.tune_allocator`)."""
    engine.tune_allocator()
    with contextlib.suppress(Exception):
        storage.warm_up()
        get_resolver().reverse_dict  # noqa: B018 (populates the resolver)
        get_template("migration/_progress.html")


@worker_ready.connect
def _resume_after_start(sender=None, **kwargs):
    """A worker that starts (e.g. after a crash) picks the running waves up again."""
    with contextlib.suppress(Exception):  # no broker yet: beat's tick will do it
        dispatch.forget_scheduled_tick()
        enqueue_tick()


# --- validation (issue 5): thin adapters over migration/discrepancies.py ---------------


@shared_task(ignore_result=True, acks_late=False)
def run_validation(run_id):
    """Run a queued reconciliation or spot-check."""
    from migration import discrepancies
    from migration.models import ValidationRun

    run = ValidationRun.objects.filter(pk=run_id, state=ValidationRun.State.QUEUED).first()
    if run is not None:
        discrepancies.execute_run(run)


@shared_task(ignore_result=True, acks_late=False)
def revalidate_study(ledger_id):
    """Validate a re-migrated study again (and its wave, once nothing is re-migrating)."""
    from migration import discrepancies
    from migration.models import WaveStudy

    row = WaveStudy.objects.filter(pk=ledger_id).first()
    if row is not None:
        discrepancies.revalidate(row)


@shared_task(ignore_result=True, acks_late=False)
def availability_check():
    """Beat: fetch a random sample of migrated instances from their destinations."""
    from migration import availability

    availability.check()


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=360)
def check_conformance():
    """Beat: every destination with a design is checked against its store."""
    from migration import actions
    from migration.models import Destination

    for destination in Destination.objects.filter(design__isnull=False):
        actions.check_conformance(destination, trigger="schedule")
