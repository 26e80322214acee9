"""RabbitMQ as the broker: a real worker whose CELERY_BROKER_URL is the machine's RabbitMQ
(a virtual host of this test's own) migrates a wave, with Redis still holding results, the
engine's keys and the channel layer."""

import os
import subprocess

import pytest
from django.utils import timezone

from migration import actions
from migration.models import StoredInstance, StudyState, Wave, WaveState
from tests.migration import support
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RABBITMQ = "127.0.0.1:5672"


def rabbitmqctl(*args):
    result = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode:
        pytest.fail(
            f"rabbitmqctl {' '.join(args)} failed (is RabbitMQ running on {RABBITMQ}? "
            f"`rabbitmq-server -detached`): {result.stderr.strip()[-300:]}"
        )
    return result.stdout


@pytest.fixture
def rabbitmq_vhost():
    """amqp:// URL of a virtual host made for this test (parallel runs never share queues)."""
    vhost = f"cc-test-{os.getpid()}-{os.urandom(3).hex()}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield vhost, f"amqp://guest:guest@{RABBITMQ}/{vhost}"
    rabbitmqctl("delete_vhost", vhost)


def test_a_wave_migrates_through_a_worker_whose_broker_is_rabbitmq(
    mixed_pacs, migration_s3, bucket, start_worker, rabbitmq_vhost, engine_settings
):
    vhost, url = rabbitmq_vhost
    orthanc, studies = mixed_pacs
    chosen = dict(list(studies.items())[:6])
    source = support.make_source(orthanc, name="via-rabbitmq")
    support.make_inventory(source, chosen)
    destination = support.s3_destination(migration_s3, bucket, prefix="rabbit")
    wave, _info = actions.create_wave(name="via-rabbitmq", source=source, destination=destination)
    # Running, but not started through this process's (Redis) broker: the worker's own
    # start-up tick, sent through RabbitMQ, picks it up.
    Wave.objects.filter(pk=wave.pk).update(state=WaveState.RUNNING, started_at=timezone.now())

    worker = start_worker("rabbit", CELERY_BROKER_URL=url)
    wait_for(
        lambda: Wave.objects.get(pk=wave.pk).state == WaveState.DONE,
        message="the wave to finish through RabbitMQ",
    )

    rows = wave.ledger.all()
    assert {row.state for row in rows} == {StudyState.DONE}
    assert StoredInstance.objects.filter(ledger__wave=wave).count() == sum(
        map(len, chosen.values())
    )
    assert f"Connected to amqp://guest:**@{RABBITMQ}/{vhost}" in worker.log_tail(200)
    queues = rabbitmqctl("list_queues", "-p", vhost, "--quiet", "name").split()
    assert engine_settings["MIGRATION_QUEUE"] in queues
