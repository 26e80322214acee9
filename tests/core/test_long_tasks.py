"""A long task is delivered once while it runs: the broker's visibility timeout is longer
than the hard time limit, so no task outlives its message's invisibility; a worker sweep
with a shorter visibility timeout (the hazard) would deliver it twice."""

import os
import re
import time

import pytest
import redis
from django.conf import settings
from kombu import Connection

from commandcenter.celery import app
from tests.core.longtasks import record_and_run
from tests.fixtures_processes import CeleryWorker
from tests.migration.support import wait_for

TASKS_MODULE = "tests.core.longtasks"


def own_broker_url():
    """The session's Redis, another database: our sweeps touch only our own messages."""
    return re.sub(r"/\d*$", "", settings.REDIS_URL) + f"/{1 + os.getpid() % 14}"


@pytest.fixture
def long_task_worker(django_db_setup, tmp_path):
    """start(**env) -> (worker, broker url, queue): a worker on its own broker database."""
    started = []
    broker = own_broker_url()
    redis.Redis.from_url(broker).flushdb()

    def start(**env):
        queue = f"longtask-{os.getpid()}-{len(started)}"
        worker = CeleryWorker(
            f"longtask{len(started)}-{os.getpid()}@localhost", tmp_path / f"w{len(started)}.log",
            env={"CELERY_BROKER_URL": broker, **env}, args=["-Q", queue, "-I", TASKS_MODULE],
        )  # fmt: skip
        started.append(worker)
        return worker.start(), broker, queue

    yield start
    for worker in started:
        worker.stop()
    redis.Redis.from_url(broker).flushdb()


def send(broker, queue, seconds, **limits):
    """The sender stamps its own time limits into the message (every process of a
    deployment reads the same environment); `limits` stand for the worker's here."""
    key = f"longtask-runs-{os.urandom(4).hex()}"
    with app.connection_for_write(broker) as connection:
        result = record_and_run.apply_async(
            (key, seconds), queue=queue, connection=connection, **limits
        )
    return key, result


def runs(key):
    return redis.Redis.from_url(settings.REDIS_URL).llen(key)


def sweep(broker, visibility_timeout):
    """What every worker's event loop does now and then: put back in the queue each
    message delivered longer than `visibility_timeout` ago and not yet acknowledged."""
    with Connection(broker, transport_options={"visibility_timeout": visibility_timeout}) as conn:
        conn.default_channel.qos.restore_visible(num=100, interval=1)


def unacknowledged(broker):
    return redis.Redis.from_url(broker).zcard("unacked_index")


def test_a_task_that_would_outlive_a_short_visibility_timeout_is_stopped_and_runs_once(
    long_task_worker,
):
    _worker, broker, queue = long_task_worker(
        CELERY_TASK_TIME_LIMIT="4", CELERY_TASK_SOFT_TIME_LIMIT="3", CELERY_VISIBILITY_TIMEOUT="6"
    )
    key, result = send(broker, queue, seconds=30, time_limit=4, soft_time_limit=3)
    wait_for(lambda: runs(key) == 1, message="the task to start")
    started = time.monotonic()
    wait_for(lambda: result.state == "FAILURE", message="the time limit to stop the task")

    time.sleep(max(0.0, started + 7 - time.monotonic()))  # past the visibility timeout
    sweep(broker, visibility_timeout=6)
    time.sleep(2)  # a redelivered message would reach the idle process by now

    assert "TimeLimitExceeded" in repr(result.result)
    assert unacknowledged(broker) == 0
    assert runs(key) == 1


def test_a_sweep_with_a_visibility_timeout_shorter_than_a_running_task_delivers_it_twice(
    long_task_worker,
):
    """The hazard the limits prevent, on the same worker and broker: the test can fail."""
    _worker, broker, queue = long_task_worker()
    key, _result = send(broker, queue, seconds=8)
    wait_for(lambda: runs(key) == 1, message="the task to start")
    time.sleep(2)
    sweep(broker, visibility_timeout=1)
    wait_for(lambda: runs(key) == 2, message="the second delivery")


def test_the_default_visibility_timeout_exceeds_the_hard_time_limit():
    transport = app.conf.broker_transport_options
    assert (
        transport["visibility_timeout"] > app.conf.task_time_limit > app.conf.task_soft_time_limit
    )
