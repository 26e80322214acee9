"""Go/no-go follows the other apps' events in a debounced Celery task; probes run on the
beat schedule in a worker."""

import os

import pytest
import redis
from kombu import Connection

from cutover import actions, tasks
from cutover.follow import DUE_KEY, ReadinessFollower
from cutover.models import ProbeResult
from tests.cutover.mllp import MllpListener
from tests.waiting import wait_for


@pytest.fixture
def quiet_queue(settings):
    """The go/no-go task's queue, read by no worker: the test counts its messages."""
    settings.CUTOVER_QUEUE = f"cutover-quiet-{os.getpid()}-{os.urandom(3).hex()}"
    broker = Connection(settings.CELERY_BROKER_URL)
    redis.Redis.from_url(settings.REDIS_URL).delete(DUE_KEY)
    yield lambda: broker.default_channel.client.llen(settings.CUTOVER_QUEUE)
    broker.default_channel.queue_purge(settings.CUTOVER_QUEUE)
    broker.release()


def test_a_burst_of_other_apps_events_queues_one_go_no_go_task(
    db, published, quiet_queue, django_capture_on_commit_callbacks
):
    follower = ReadinessFollower()
    follower("migration.wave.3", {"data": {}})
    follower("training.session.1", {"data": {}})  # the evaluation is queued already
    follower("cutover.readiness", {"data": {}})  # its own topic: never
    follower("roadmap.1", {"data": {}})
    assert quiet_queue() == 1
    assert published == []  # nothing is evaluated in the publishing process
    with django_capture_on_commit_callbacks(execute=True):
        tasks.publish_readiness()  # what the worker runs
    assert [t for t, _m in published] == ["cutover.readiness"]
    follower("alerts.integration", {"data": {}})
    assert quiet_queue() == 2


@pytest.mark.django_db(transaction=True)
def test_scheduled_probes_run_in_a_celery_worker(celery_worker, cast, integration):
    from cutover.tasks import run_scheduled_probes

    plan = actions.create_plan(integration, cast.pm)
    with MllpListener(["AA", "AA"]) as listener:
        plan.probes.update(port=listener.port)
        run_scheduled_probes.delay()
        wait_for(
            lambda: ProbeResult.objects.filter(probe__plan=plan).exists(),
            message=celery_worker.log_tail,
        )
    result = ProbeResult.objects.get(probe__plan=plan)
    assert result.ok and result.trigger == "schedule", result.detail
    assert len(listener.received) == 1
