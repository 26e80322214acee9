"""Celery tasks of the inventory: thin adapters over `inventory.actions`."""

import logging
import threading

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings

from inventory import actions, engine

log = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True)
def crawl(self, run_id):
    """Run or resume crawl `run_id`. Its pending ranges live in the database, so a crawl
    whose worker died is queued again by `resume_stalled_crawls` and carries on."""
    owner = engine.worker_identity(self.request.id or "")
    try:
        engine.execute_crawl(run_id, owner)
    except SoftTimeLimitExceeded:
        log.warning("inventory: crawl %s hit the task time limit; it will resume", run_id)


@shared_task(ignore_result=True)
def scan(source_id, path, threads=4):
    """Read a PACS's storage folder (headers only) and record it as a witness."""
    from inventory import witness
    from inventory.models import PacsSource

    seen = witness.scan(path, workers=threads)
    actions.record_witness(PacsSource.objects.get(pk=source_id), "scan", path, seen)


@shared_task(ignore_result=True)
def resume_stalled_crawls():
    """Beat runs this every minute; a starting worker runs it once its old leases expired."""
    return actions.resume_stalled_crawls()


@worker_ready.connect
def _resume_after_restart(sender=None, **kwargs):
    """Resume at once what has no live lease, and again once the dead workers' leases ran out."""
    for delay in (1, settings.INVENTORY_CRAWL_LEASE_SECONDS + 1):
        timer = threading.Timer(delay, _resume_safely)
        timer.daemon = True
        timer.start()


def _resume_safely():
    from django.db import connection

    try:
        actions.resume_stalled_crawls()
    except Exception:
        log.exception("inventory: resuming stalled crawls failed")
    finally:
        connection.close()
