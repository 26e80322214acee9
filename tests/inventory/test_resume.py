"""The crawl as a Celery task: it survives a SIGKILLed worker (a new worker resumes it with
no duplicate rows and no range asked twice) and it can be cancelled."""

import os
import signal
import uuid

import pytest
from django.db.models import Count

from inventory import actions
from inventory.models import CrawlRange, CrawlRun, Study
from tests.fixtures_processes import CeleryWorker
from tests.inventory.conftest import register, studies, upload
from tests.waiting import wait_for

LEASE_SECONDS = "3"


def kill(worker):
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)


@pytest.fixture
def queue_workers(tmp_path_factory):
    """queue_workers() starts a worker on this test's queue; .running() is the live one.
    They stop before the test's database is flushed: a worker that outlived its test
    resumed stalled crawls (a timer after it starts) while the flush truncated the
    tables, and the two deadlocked."""
    queue = f"inventory-test-{uuid.uuid4().hex[:8]}"
    logs = tmp_path_factory.mktemp("workers")
    started = []

    def start():
        name = f"invtest{len(started)}-{os.getpid()}@localhost"
        worker = CeleryWorker(
            name,
            logs / f"{name}.log",
            env={"INVENTORY_CRAWL_LEASE_SECONDS": LEASE_SECONDS},
            args=["-Q", queue],  # our own queue: the session's worker never sees our tasks
        ).start()
        started.append(worker)
        return worker

    def running():
        alive = [w for w in started if w.proc.poll() is None]
        return alive[-1] if alive else start()

    start.queue, start.running = queue, running
    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def slow_orthanc(orthanc_factory):
    orthanc = orthanc_factory(aet="SLOW10", limit_find_results=10)
    upload(orthanc, studies(60, seed=71, undated=4).values())
    return orthanc


def ranges_done(run):
    return CrawlRange.objects.filter(run=run).exclude(status="pending").count()


@pytest.mark.django_db(transaction=True)
def test_a_crawl_killed_with_its_worker_is_resumed_by_the_next_worker_without_duplicates(
    slow_orthanc, queue_workers
):
    source = register("slow-orthanc", slow_orthanc, find_pause_ms=60)
    first = queue_workers()
    run = actions.start_crawl(source, with_series=False, queue=queue_workers.queue)
    wait_for(lambda: ranges_done(run) >= 8, message="the first worker to answer 8 ranges")

    kill(first)
    killed_at = ranges_done(run)
    run.refresh_from_db()
    assert run.status == "running" and run.complete is None
    queue_workers()

    wait_for(lambda: CrawlRun.objects.get(pk=run.pk).status == "done", message="the resumed crawl")
    run.refresh_from_db()
    assert run.complete is False and "capped" in run.unproven
    assert run.studies_found == Study.objects.count() == slow_orthanc.count_studies() == 60
    assert ranges_done(run) > killed_at
    nodes = CrawlRange.objects.filter(run=run)
    keys = nodes.values("parent", "kind", "level", "date_from", "time_from", "modality", "prefix")
    assert not keys.annotate(n=Count("id")).filter(n__gt=1).exists()  # no range created twice
    # split without a query: plans, partition roots, patient prefixes the ledger proves capped
    planned = nodes.filter(count__isnull=True)
    assert planned.filter(level__in=["plan", "root"]).count() >= 2
    assert run.queries == nodes.count() - planned.count()  # asked once, even after the kill


@pytest.mark.django_db(transaction=True)
def test_an_engineer_cancels_a_running_crawl_through_the_api(
    slow_orthanc, queue_workers, cast, client_for
):
    source = register("slow-orthanc", slow_orthanc, find_pause_ms=200)
    queue_workers.running()
    run = actions.start_crawl(source, with_series=False, queue=queue_workers.queue)
    wait_for(lambda: ranges_done(run) >= 3, message="the crawl to start")

    refused = client_for(cast.pm).post(f"/inventory/api/crawls/{run.pk}/cancel/")
    assert refused.status_code == 403
    response = client_for(cast.engineer).post(f"/inventory/api/crawls/{run.pk}/cancel/")

    assert response.status_code == 200
    wait_for(lambda: CrawlRun.objects.get(pk=run.pk).status == "cancelled", message="the cancel")
    run.refresh_from_db()
    assert run.complete is None and CrawlRange.objects.filter(run=run, status="pending").exists()
