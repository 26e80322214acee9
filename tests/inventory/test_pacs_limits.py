"""The crawl respects the source's limits throughout, partitions and instance samples
included: one association slot, shared with the migration engine's workers, and the C-FIND
pause before every query."""

import threading
import time

import pytest
from django.db import connection

from inventory import actions, engine
from migration.throttle import Slots
from tests.inventory.conftest import hidden, register, studies, upload
from tests.migration.test_waves import AssociationSampler

pytestmark = pytest.mark.django_db(transaction=True)


def crawl_and_close(run_id):
    try:
        engine.execute_crawl(run_id)
    finally:
        connection.close()


def test_a_crawl_waits_for_a_free_association_slot_and_never_opens_two(orthanc_factory):
    orthanc = orthanc_factory(aet="ONESLOT", limit_find_results=6)
    seeded = studies(24, seed=91)
    first = sorted(seeded)[0]
    seeded[first] = hidden(seeded[first], keep=("PatientID",))
    upload(orthanc, seeded.values())
    source = register("one-slot", orthanc, max_associations=1, find_pause_ms=20)
    slots = Slots(source.pk)
    held = slots.acquire(1)  # a migration worker holds the only slot
    run = actions.start_crawl(source, enqueue=False)
    sampler = AssociationSampler(orthanc.proc.pid, orthanc.dicom_port)
    sampler.start()
    crawl = threading.Thread(target=crawl_and_close, args=(run.pk,))
    crawl.start()
    try:
        time.sleep(1.5)
        run.refresh_from_db()
        assert run.queries == 0 and max(sampler.samples) == 0  # waiting for the slot
        slots.release(held)
        started = time.monotonic()
        crawl.join()
        elapsed = time.monotonic() - started
    finally:
        sampler.halt.set()
        sampler.join()

    run.refresh_from_db()
    assert run.studies_found == 24 and run.series_found == 24
    assert run.ranges.filter(kind="patient").exists()  # the partitions ran too
    assert max(sampler.samples) == 1 and len(sampler.samples) > 50
    assert elapsed >= run.queries * 0.020  # the pause came before every C-FIND
    assert slots.in_use() == 0
