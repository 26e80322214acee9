"""Celery beat runs once across hosts: two real beat processes share one lock in Redis;
only the holder sends the schedule, and when it is SIGKILLed the other takes over once
the dead holder's lock expires."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest
import redis
from django.conf import settings

from devstack.stack import celery_args
from tests.fixtures_processes import REPO, database_url
from tests.migration.support import wait_for

LOCK_TIMEOUT, LOOP = 4, 0.5
SENT = re.compile(
    r"^\[(?P<at>[\d-]+ [\d:,]+): INFO/MainProcess\] Scheduler: Sending due task health"
)


class Beat:
    def __init__(self, name, log_path, env):
        self.name, self.log_path = name, log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *celery_args("beat")], cwd=REPO, env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def sends(self):
        """When this beat sent the health task, from its own log."""
        text = self.log_path.read_text(errors="replace")
        return [
            datetime.strptime(m["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for m in map(SENT.match, text.splitlines())
            if m
        ]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def two_beats(django_db_setup, tmp_path):
    """Two beats on one lock, sending the health task every second into a broker database
    of their own (nothing consumes it: the test counts the messages there)."""
    prefix = f"beattest-{os.getpid()}-{os.urandom(3).hex()}"
    broker = re.sub(r"/\d*$", "", settings.REDIS_URL) + f"/{1 + (os.getpid() + 7) % 14}"
    redis.Redis.from_url(broker).flushdb()
    env = dict(
        os.environ, DATABASE_URL=database_url(), PYTHONUNBUFFERED="1", CELERY_BROKER_URL=broker,
        BEAT_KEY_PREFIX=prefix, BEAT_LOCK_TIMEOUT=str(LOCK_TIMEOUT),
        BEAT_MAX_LOOP_INTERVAL=str(LOOP), HEALTH_INTERVAL_SECONDS="1",
    )  # fmt: skip
    beats = [Beat("first", tmp_path / "first.log", env)]
    wait_for(lambda: beats[0].sends(), message="the first beat to send")
    beats.append(Beat("second", tmp_path / "second.log", env))
    yield beats, redis.Redis.from_url(broker)
    for beat in beats:
        beat.stop()
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    redis.Redis.from_url(broker).flushdb()


def queued(broker):
    """Health tasks waiting in the broker (beat sends other entries to the same queue)."""
    messages = map(json.loads, broker.lrange("celery", 0, -1))
    return sum(m["headers"]["task"] == "core.tasks.publish_health" for m in messages)


def counts_agree(broker, *beats):
    """The broker holds exactly the sends the beats logged (read until both settle)."""
    return queued(broker) == sum(len(beat.sends()) for beat in beats)


def test_only_the_lock_holder_sends_and_a_standby_takes_over_when_it_is_killed(two_beats):
    (first, second), broker = two_beats
    wait_for(lambda: len(first.sends()) >= 8, message="eight sends by the first beat")
    time.sleep(2 * LOCK_TIMEOUT)  # the second beat had time to send, were it not waiting

    assert second.proc.poll() is None
    assert second.sends() == []
    wait_for(lambda: counts_agree(broker, first, second), message="one message per send")

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    killed_at = time.time()
    wait_for(lambda: len(second.sends()) >= 3, message="the second beat to take over")

    takeover = second.sends()[0] - killed_at
    print(f"takeover after {takeover:.1f}s (lock timeout {LOCK_TIMEOUT}s, loop {LOOP}s)")
    assert takeover > 0
    wait_for(lambda: counts_agree(broker, first, second), message="one message per send")
