"""System monitoring: real task counters, queue depths and PACS checks, kept as samples,
drawn as charts, and thresholds that open tickets."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from commandcenter import monitoring
from commandcenter.models import MetricSample, Monitor, Ticket
from commandcenter.services.base import LOOPBACK, free_port
from commandcenter.tasks import run_escalations
from inventory.models import PacsSource
from tests.commandcenter.ticketing import minutes

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
