"""Alerts are durable: an outbox row written in the reporter's transaction, taken in by a
Celery task, marked done in the transaction that records its ticket.

A real worker raises an alert and is killed (SIGKILL) right after the alert's commit,
before any intake: a new worker, or beat's re-drain when the queued drain was lost too,
still makes exactly one ticket."""

import os
import re
import signal
import uuid

import pytest
import redis
from celery import signature
from django.conf import settings
from django.db import transaction
from kombu import Connection

from core import alerts
from core.alerts import clear_alert, raise_alert
from core.models import Alert
from desk.models import Ticket
from devstack.services.base import LOOPBACK, free_port
from inventory.models import PacsSource
from tests.core.test_beat_failover import Beat
from tests.fixtures_processes import CeleryWorker, database_url
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queues():
    """A queue for the work that raises the alert and one for the alert drain, both this
    test's own (so no other worker takes their tasks); emptied afterwards."""
    tag = uuid.uuid4().hex[:8]
    names = {"work": f"alert-work-{tag}", "alerts": f"alert-drain-{tag}"}
    yield names
    with Connection(settings.CELERY_BROKER_URL) as connection:
        for name in names.values():
            connection.default_channel.queue_purge(name)


@pytest.fixture
def start_worker(tmp_path, queues):
    started = []

    def start(name, queue):
        worker = CeleryWorker(
            f"{name}-{os.getpid()}@localhost", tmp_path / f"{name}.log",
            env={"ALERT_QUEUE": queues["alerts"]}, args=["-Q", queue],
        )  # fmt: skip
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


def queued(queue):
    with Connection(settings.CELERY_BROKER_URL) as connection:
        return connection.default_channel.client.llen(queue)


def raise_in_a_worker_and_kill_it(start_worker, queues):
    """The first worker checks a PACS that does not answer (a real C-FIND that fails, so
    `intake.pacs_unreachable` raises an alert) and is killed once the alert is committed."""
    source = PacsSource.objects.create(
        name="gone", ae_title="GONE", host=LOOPBACK, port=free_port(), calling_ae_title="CCTEST"
    )
    first = start_worker("raiser", queues["work"])
    check = signature("desk.tasks.check_migration_source", args=(source.pk,), kwargs={"wave_id": 9})
    check.apply_async(queue=queues["work"])
    wait_for(lambda: Alert.objects.exists() and queued(queues["alerts"]), message="the commit")
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(30)
    assert not Ticket.objects.exists()
    assert Alert.objects.get().done_at is None
    return f"migration.pacs_failed.{source.pk}.C-FIND.wave-9"


def test_a_worker_killed_after_the_alerts_commit_loses_no_ticket(start_worker, queues):
    cause = raise_in_a_worker_and_kill_it(start_worker, queues)
    assert queued(queues["alerts"]) == 1  # the drain its commit queued, for nobody yet
    start_worker("drainer", queues["alerts"])
    wait_for(lambda: Ticket.objects.exists(), message="the ticket")
    wait_for(lambda: Alert.objects.get().done_at is not None, message="the alert done")
    ticket = Ticket.objects.get()
    assert (ticket.cause, ticket.occurrences, ticket.source) == (cause, 1, "migration")


@pytest.fixture
def start_beat(tmp_path, queues):
    """Starts a real beat re-draining alerts every second into a broker database of its
    own, and a worker on that broker's alert queue: it never sees the drain the killed
    worker queued, only beat's. Started after the kill, so no re-drain runs before it."""
    prefix = f"alertbeat-{os.getpid()}-{os.urandom(3).hex()}"
    broker = re.sub(r"/\d*$", "", settings.REDIS_URL) + f"/{1 + (os.getpid() + 11) % 14}"
    redis.Redis.from_url(broker).flushdb()
    env = {"CELERY_BROKER_URL": broker, "ALERT_QUEUE": queues["alerts"]}
    started = []

    def start():
        beat = Beat("beat", tmp_path / "beat.log", dict(
            os.environ, DATABASE_URL=database_url(), PYTHONUNBUFFERED="1",
            BEAT_KEY_PREFIX=prefix, ALERT_REDRAIN_SECONDS="1", **env,
        ))  # fmt: skip
        worker = CeleryWorker(
            f"beat-drainer-{os.getpid()}@localhost", tmp_path / "drainer.log", env=env,
            args=["-Q", queues["alerts"]],
        ).start()  # fmt: skip
        started.extend([worker, beat])
        return beat

    yield start
    for process in started:
        process.stop()
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    redis.Redis.from_url(broker).flushdb()


def redrains(beat):
    return beat.log_path.read_text(errors="replace").count("core.tasks.redrain_alerts")


def test_beats_re_drain_takes_in_what_a_lost_task_left(start_worker, queues, start_beat):
    cause = raise_in_a_worker_and_kill_it(start_worker, queues)
    beat_broker = start_beat()
    wait_for(lambda: Ticket.objects.exists(), message="the ticket, from beat's re-drain")
    wait_for(lambda: Alert.objects.get().done_at is not None, message="the alert done")
    sent = redrains(beat_broker)
    wait_for(lambda: redrains(beat_broker) >= sent + 3, message="three more re-drains")
    ticket = Ticket.objects.get()
    assert (ticket.cause, ticket.occurrences) == (cause, 1)
    assert queued(queues["alerts"]) == 1  # the killed worker's drain, never taken


def test_an_intake_that_fails_leaves_the_alert_pending_for_the_next_drain(monkeypatch):
    from desk import intake

    def broken(alert):
        raise RuntimeError("the desk is down")

    monkeypatch.setattr(alerts, "_intake", [broken])
    raise_alert("migration", "migration.x.wave-1", "Wave 1: studies failing")
    row = Alert.objects.get()
    assert (row.done_at, row.attempts, row.error) == (None, 1, "RuntimeError: the desk is down")
    assert not Ticket.objects.exists()
    monkeypatch.setattr(alerts, "_intake", [intake.take_alert])
    assert alerts.drain() == 1
    assert alerts.drain() == 0
    assert Ticket.objects.get().occurrences == 1


def test_a_recovery_never_overtakes_its_alert(monkeypatch):
    monkeypatch.setattr(alerts, "enqueue_drain", lambda: None)  # nothing drains until we do
    with transaction.atomic():
        raise_alert("migration", "migration.y.wave-2", "Wave 2: studies failing")
        clear_alert("migration", "migration.y.wave-2", detail="fine again")
    first, second = Alert.objects.order_by("pk")
    passed = {first.pk}  # as if another drain held the alert
    assert alerts._take_next(passed) == 0  # the recovery waits for it
    assert alerts._take_next(passed) is None
    assert Alert.objects.filter(done_at__isnull=True).count() == 2
    assert alerts.drain() == 2
    assert Ticket.objects.get().status == "resolved"
