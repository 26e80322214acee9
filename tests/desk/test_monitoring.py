"""System monitoring: real task counters, queue depths and PACS checks, kept as samples,
drawn as charts, and thresholds that open tickets."""

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from desk import monitoring
from desk.models import MetricSample, Monitor, Ticket
from desk.tasks import run_escalations
from devstack.services.base import LOOPBACK, free_port
from inventory.models import PacsSource
from tests.desk.ticketing import minutes

pytestmark = pytest.mark.django_db(transaction=True)


def test_task_counters_count_per_minute_and_report_the_last_complete_one():
    for _ in range(3):
        monitoring.count_task("failures", minutes(0))
    monitoring.count_task("failures", minutes(1))
    assert monitoring.per_minute("failures", minutes(1)) == 3
    assert monitoring.per_minute("failures", minutes(2)) == 1
    assert monitoring.per_minute("failures", minutes(3)) == 0


def _recent_tasks():
    now = timezone.now()
    return sum(monitoring.count_in_minute("tasks", now - timedelta(minutes=m)) for m in (0, 1))


def test_a_worker_counts_every_task_it_runs(celery_worker):
    before = _recent_tasks()
    run_escalations.delay()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _recent_tasks() == before:
        time.sleep(0.1)
    assert _recent_tasks() > before


def test_queue_depth_is_read_from_the_broker(settings):
    settings.CELERY_TASK_ROUTES = {"nothing.real": {"queue": "cc-test-backlog"}}
    client = monitoring.redis_client()
    client.delete("cc-test-backlog")
    client.lpush("cc-test-backlog", "a", "b", "c")
    try:
        assert monitoring.queue_depths()["cc-test-backlog"] == 3
    finally:
        client.delete("cc-test-backlog")


def _pacs(name, host, port, aet):
    return PacsSource.objects.create(
        name=name, ae_title=aet, host=host, port=port, calling_ae_title="CCTEST"
    )


def test_a_sample_checks_each_pacs_and_a_crossed_threshold_opens_a_ticket(
    orthanc_pacs, celery_worker
):
    _pacs("legacy-up", orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet)
    _pacs("legacy-gone", LOOPBACK, free_port(), "GONE")
    Monitor.objects.all().delete()
    Monitor.objects.create(name="PACS down", metric="pacs_down", comparison="above", threshold=0)
    Monitor.objects.create(
        name="No workers", metric="workers_online", comparison="below", threshold=1
    )
    row = monitoring.run()
    pacs = {p["name"]: p for p in row.pacs}
    assert pacs["legacy-up"]["ok"] and pacs["legacy-up"]["ms"] > 0
    assert not pacs["legacy-gone"]["ok"] and pacs["legacy-gone"]["associations"] is None
    assert celery_worker.name in row.workers
    [ticket] = Ticket.objects.all()
    assert ticket.title.startswith("PACS down on legacy-gone")
    assert ticket.source == "monitoring" and ticket.priority == "P2"
    monitoring.run()
    assert Ticket.objects.get().occurrences == 2


def _queue_sample(depth):
    return MetricSample.objects.create(at=timezone.now(), queues={"celery": depth})


def test_a_threshold_no_longer_crossed_resolves_its_ticket_and_a_new_crossing_opens_one():
    Monitor.objects.all().delete()
    monitor = Monitor.objects.create(
        name="Backlog", metric="queue_depth", comparison="above", threshold=100
    )
    monitoring.evaluate(_queue_sample(500))
    monitoring.evaluate(_queue_sample(700))
    ticket = Ticket.objects.get()
    assert ticket.cause == f"monitor.{monitor.pk}.celery" and ticket.occurrences == 2
    monitoring.evaluate(_queue_sample(20))
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert ticket.comments.get().body == "Recovered: Backlog on celery: back to 20"
    assert ticket.history.get(kind="status").actor is None
    monitoring.evaluate(_queue_sample(10))
    assert Ticket.objects.count() == 1 and ticket.comments.count() == 1
    monitoring.evaluate(_queue_sample(900))
    assert Ticket.objects.filter(status="new").count() == 1


def test_throughput_is_the_rate_between_two_samples():
    previous = MetricSample(at=minutes(0), transfer={"instances": 1000, "bytes": 500_000_000})
    rates = monitoring._rates({"instances": 7000, "bytes": 3_500_000_000}, previous, minutes(1))
    assert rates == (100.0, 50.0)
    assert monitoring._rates(None, previous, minutes(1)) == (None, None)


def test_the_monitoring_board_draws_the_last_hours_as_svg(cast, client_for):
    now = timezone.now()
    for i, (tasks, failures) in enumerate([(10, 0), (30, 2), (20, 1)]):
        MetricSample.objects.create(
            at=now - timedelta(minutes=3 - i),
            workers=["w1@host"],
            queues={"celery": 5 * i},
            tasks_per_minute=tasks,
            failures_per_minute=failures,
            pacs=[{"name": "legacy", "ok": True, "ms": 12.0 + i, "associations": None}],
        )
    page = client_for(cast.engineer).get("/command-center/monitoring/").content.decode()
    assert page.count("<svg") >= 4
    assert "tasks: 20" in page and "failures: 1" in page
    assert "not available" in page  # no destination measures from the engine yet


def _engine_sample(at, latency_ms, errors, associations):
    return MetricSample.objects.create(
        at=at,
        pacs=[{"name": "legacy", "ok": True, "ms": 9.0, "associations": associations}],
        destinations=[{"name": "cloud-s3", "latency_ms": latency_ms, "errors": errors}],
        instances_per_s=40.0,
        mb_per_s=12.5,
    )


def test_the_board_draws_associations_destinations_and_throughput(cast, client_for):
    now = timezone.now()
    _engine_sample(now - timedelta(minutes=2), 120.0, 0, 1)
    _engine_sample(now - timedelta(minutes=1), 250.0, 3, 2)
    page = client_for(cast.staff).get("/command-center/monitoring/").content.decode()
    assert "PACS associations in use, latest: legacy: 2" in page
    assert "Destination latency, latest: cloud-s3: 250 ms" in page
    assert "Destination errors, latest: cloud-s3: 3" in page
    assert "instances per second, latest: instances/s: 40" in page
    assert "MB per second, latest: MB/s: 12.5" in page


def test_destination_and_association_thresholds_open_one_ticket_each():
    Monitor.objects.all().delete()
    slow = Monitor.objects.create(
        name="Slow cloud", metric="destination_latency_ms", comparison="above", threshold=200
    )
    busy = Monitor.objects.create(
        name="Busy PACS", metric="pacs_associations", comparison="above", threshold=1
    )
    monitoring.evaluate(_engine_sample(timezone.now(), 250.0, 0, 2))
    causes = set(Ticket.objects.values_list("cause", flat=True))
    assert causes == {f"monitor.{slow.pk}.cloud-s3", f"monitor.{busy.pk}.legacy"}
    monitoring.evaluate(_engine_sample(timezone.now(), 90.0, 0, 2))
    assert Ticket.objects.get(cause=f"monitor.{slow.pk}.cloud-s3").status == "resolved"
    assert Ticket.objects.get(cause=f"monitor.{busy.pk}.legacy").occurrences == 2


def test_a_sample_reads_the_engines_measures_and_the_board_shows_them(settings, cast, client_for):
    from migration import rates, throttle
    from migration.models import Destination, Wave

    settings.MIGRATION_REDIS_PREFIX = f"cctest{uuid.uuid4().hex[:8]}"  # counters start at 0
    source = _pacs("legacy-busy", LOOPBACK, free_port(), "GONE")
    destination = Destination.objects.create(name="cloud-s3", kind="s3", bucket="images")
    wave = Wave.objects.create(name="wave-1", source=source, destination=destination)
    assert throttle.Slots(source.pk).acquire(4) is not None
    meter = rates.Meter(wave.pk, interval=0, destination_id=destination.pk)
    meter.add(12, 6_000_000, upload_ms=80.0)
    rates.record_destination_error(destination.pk)
    Monitor.objects.all().delete()
    Monitor.objects.create(
        name="Upload errors", metric="destination_errors", comparison="above", threshold=0
    )

    row = monitoring.run()

    [pacs] = row.pacs
    assert pacs["associations"] == 1 and pacs["limit"] >= 1
    [cloud] = row.destinations
    assert (cloud["name"], cloud["latency_ms"], cloud["uploads"], cloud["errors"]) == (
        "cloud-s3",
        80.0,
        1,
        1,
    )
    assert (row.transfer["instances"], row.transfer["bytes"]) == (12, 6_000_000)
    assert row.instances_per_s > 0 and row.mb_per_s > 0  # the engine's current rate
    assert Ticket.objects.get().title.startswith("Upload errors on cloud-s3")
    page = client_for(cast.engineer).get("/command-center/monitoring/").content.decode()
    assert "PACS associations in use, latest: legacy-busy: 1" in page
    assert "Destination latency, latest: cloud-s3: 80 ms" in page
    assert "Destination errors, latest: cloud-s3: 1" in page
