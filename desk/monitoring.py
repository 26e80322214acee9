"""System monitoring, what Flower and a NOC wall show for this system.

Beat calls `sample()` once a minute: workers online, queue depth per queue, tasks and
failures per minute (counted in Redis by Celery signals in every worker), each legacy
PACS's C-ECHO response time and associations in use, per-destination latency and
errors and migration throughput (from the migration app's measures, when it has them).
Each sample is kept, checked against the monitors (a crossed threshold raises an alert,
which opens or updates one ticket), and pushed to every monitoring screen.
"""

import importlib
import logging
import time
from datetime import timedelta

import redis
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from core import events
from core.alerts import clear_alert, raise_alert
from core.models import HealthSample
from desk import tickets
from desk.models import MetricSample, Monitor
from dicomnet import scu as dicomnet

log = logging.getLogger(__name__)

COUNTER_TTL = 6 * 3600
KEEP = timedelta(days=7)
PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: queue + sep + priority
PRIORITY_STEPS = (3, 6, 9)
PACS_TIMEOUT = 3
_client = None


def redis_client():
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
    return _client


def _minute(now):
    return int(now.timestamp() // 60)


def count_task(outcome, now=None):
    """Count one task outcome ("tasks" or "failures") in the current minute; never raises."""
    key = f"cc:mon:{outcome}:{_minute(now or timezone.now())}"
    try:
        pipe = redis_client().pipeline()
        pipe.incr(key)
        pipe.expire(key, COUNTER_TTL)
        pipe.execute()
    except redis.RedisError as exc:
        log.debug("task counter not recorded: %s", exc)


def count_in_minute(outcome, at):
    return int(redis_client().get(f"cc:mon:{outcome}:{_minute(at)}") or 0)


def per_minute(outcome, now=None):
    """Count of the last complete minute."""
    return count_in_minute(outcome, (now or timezone.now()) - timedelta(minutes=1))


def connect_task_signals():
    """Called from the app's ready(): every worker counts its tasks and failures."""
    from celery.signals import task_failure, task_postrun

    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="cc-monitor-postrun")
    task_failure.connect(_on_failure, weak=False, dispatch_uid="cc-monitor-failure")


def _on_postrun(**kwargs):
    count_task("tasks")


def _on_failure(**kwargs):
    count_task("failures")


def workers():
    from commandcenter.celery import app

    replies = app.control.ping(timeout=1.0)
    return sorted(name for reply in replies for name in reply)


def queue_names():
    from commandcenter.celery import app

    names = {app.conf.task_default_queue or "celery"}
    names |= set(app.amqp.queues or {})
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        if isinstance(route, dict) and route.get("queue"):
            names.add(route["queue"])
    return sorted(names)


def queue_depths():
    """{queue: messages waiting}, all priority levels together."""
    client = redis_client()
    depths = {}
    for name in queue_names():
        keys = [name, *(f"{name}{PRIORITY_SEPARATOR}{p}" for p in PRIORITY_STEPS)]
        pipe = client.pipeline()
        for key in keys:
            pipe.llen(key)
        depths[name] = sum(pipe.execute())
    return depths


def optional_measure(name, *args):
    """A measure of the migration app (`migration/measures.py`) if it exists yet, else None."""
    try:
        module = importlib.import_module("migration.measures")
    except ImportError:
        return None
    function = getattr(module, name, None)
    if function is None:
        return None
    try:
        return function(*args)
    except Exception as exc:
        log.warning("migration.measures.%s failed: %s", name, exc)
        return None


def check_pacs(source, timeout=PACS_TIMEOUT):
    """C-ECHO one legacy PACS, timed."""
    start = time.perf_counter()
    try:
        ok = dicomnet.echo(
            source.host, source.port, source.ae_title, source.calling_ae_title, timeout=timeout
        )
        detail = "answers C-ECHO" if ok else "refused the association or the C-ECHO"
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    ms = round((time.perf_counter() - start) * 1000, 1)
    return {
        "id": source.pk,
        "name": source.name,
        "ok": ok,
        "ms": ms if ok else None,
        "detail": detail,
    }


def pacs_status():
    from inventory.models import PacsSource

    in_use = optional_measure("associations_in_use") or {}
    engine = optional_measure("pacs_throttle") or {}
    rows = []
    for source in PacsSource.objects.all():
        row = check_pacs(source)
        seen = engine.get(source.name) or {}
        row["associations"] = in_use.get(source.name, in_use.get(source.pk))
        row["max_associations"] = source.max_associations
        row["limit"] = seen.get("limit")  # the cap as the engine's latency throttle lowered it
        row["engine_ms"] = seen.get("latency_ms")  # response time as the engine sees it
        rows.append(row)
    return rows


def _safe(function, default):
    try:
        return function()
    except Exception as exc:
        log.warning("monitoring: %s failed: %s", function.__name__, exc)
        return default


def _transfer():
    """The engine's running totals and current rates (its per-minute history stays in
    Redis: the samples keep the board's own history)."""
    totals = optional_measure("transfer_totals")
    if not totals:
        return None
    return {k: totals[k] for k in ("instances", "bytes", "now", "hour") if k in totals}


def _rates(transfer, previous, now):
    """Instances/s and MB/s since the previous sample, else the engine's current rate."""
    if transfer and (previous is None or not previous.transfer) and transfer.get("now"):
        return transfer["now"].get("instances_s"), transfer["now"].get("mb_s")
    if not transfer or previous is None or not previous.transfer:
        return None, None
    seconds = (now - previous.at).total_seconds()
    if seconds <= 0:
        return None, None
    instances = max(0, transfer["instances"] - previous.transfer["instances"]) / seconds
    mbytes = max(0, transfer["bytes"] - previous.transfer["bytes"]) / 1e6 / seconds
    return round(instances, 2), round(mbytes, 3)


def sample(now=None):
    """Take and keep one sample (see the module docstring)."""
    now = now or timezone.now()
    previous = MetricSample.objects.filter(at__lt=now).order_by("-at").first()
    transfer = _transfer()
    instances_per_s, mb_per_s = _rates(transfer, previous, now)
    row = MetricSample.objects.create(
        at=now,
        workers=_safe(workers, []),
        queues=_safe(queue_depths, {}),
        tasks_per_minute=_safe(lambda: per_minute("tasks", now), None),
        failures_per_minute=_safe(lambda: per_minute("failures", now), None),
        pacs=_safe(pacs_status, []),
        destinations=optional_measure("destination_stats"),
        migration=optional_measure("wave_progress"),
        transfer=transfer,
        instances_per_s=instances_per_s,
        mb_per_s=mb_per_s,
    )
    MetricSample.objects.filter(at__lt=now - KEEP).delete()
    return row


# --- Thresholds -----------------------------------------------------------------------------


def metric_values(row):
    """{metric: {key: value}} of one sample; keyed metrics are per queue, PACS, destination."""
    values = {
        "workers_online": {"": len(row.workers)},
        "queue_depth": dict(row.queues),
        "pacs_down": {p["name"]: 0 if p["ok"] else 1 for p in row.pacs},
        "pacs_response_ms": {p["name"]: p["ms"] for p in row.pacs if p["ms"] is not None},
        "pacs_associations": {p["name"]: p.get("associations") for p in row.pacs},
        "destination_errors": {
            d["name"]: d.get("errors", 0) for d in _destination_rows(row) if "name" in d
        },
        "destination_latency_ms": {
            d["name"]: d.get("latency_ms") for d in _destination_rows(row) if "name" in d
        },
    }
    if row.tasks_per_minute is not None:
        values["tasks_per_minute"] = {"": row.tasks_per_minute}
    if row.failures_per_minute is not None:
        values["failures_per_minute"] = {"": row.failures_per_minute}
    return values


def crossed(monitor, value):
    if monitor.comparison == Monitor.Comparison.ABOVE:
        return value > monitor.threshold
    return value < monitor.threshold


def evaluate(row, monitors=None):
    """Raise one alert per crossed threshold (and key), and clear the open alert of each
    threshold no longer crossed; returns the alerts raised."""
    monitors = Monitor.objects.filter(enabled=True) if monitors is None else monitors
    values = metric_values(row)
    raised, calm = [], {}
    for monitor in monitors:
        for key, value in values.get(monitor.metric, {}).items():
            if value is None:
                continue
            if crossed(monitor, value):
                raised.append(_alert(monitor, key, value))
            else:
                calm[_cause(monitor, key)] = f"{_where(monitor, key)}: back to {value:g}"
    for cause in tickets.open_causes(calm):
        clear_alert("monitoring", cause, detail=calm[cause])
    return raised


def _cause(monitor, key):
    return f"monitor.{monitor.pk}.{key}" if key else f"monitor.{monitor.pk}"


def _where(monitor, key):
    return f"{monitor.name} on {key}" if key else monitor.name


def _alert(monitor, key, value):
    where = f" on {key}" if key else ""
    return raise_alert(
        "monitoring",
        _cause(monitor, key),
        f"{monitor.name}{where}: {monitor.get_metric_display()} is {value:g} "
        f"({monitor.comparison} {monitor.threshold:g})",
        category="performance",
        impact=monitor.impact,
        urgency=monitor.urgency,
        detail=f"Monitor '{monitor.name}' crossed its threshold{where}.",
    )


# --- History and the live board -------------------------------------------------------------


def history(hours=6, now=None):
    now = now or timezone.now()
    return list(MetricSample.objects.filter(at__gte=now - timedelta(hours=hours)).order_by("at"))


def health_history(hours=6, now=None):
    """{component: [(checked_at, ok), ...]} oldest first."""
    now = now or timezone.now()
    rows = HealthSample.objects.filter(checked_at__gte=now - timedelta(hours=hours)).order_by(
        "checked_at"
    )
    strips = {}
    for component, checked_at, ok in rows.values_list("component", "checked_at", "ok"):
        strips.setdefault(component, []).append((checked_at, ok))
    return strips


def _series(samples, name, getter):
    return {"name": name, "points": [(s.at, getter(s)) for s in samples]}


def _pacs_rows(row):
    return row.pacs


def _destination_rows(row):
    return row.destinations or []


def _per_name(samples, rows_of, field, title, unit=""):
    """One line per PACS or destination (`rows_of` a sample) of its `field`."""
    from core import charts

    names = sorted({r["name"] for s in samples for r in rows_of(s) if "name" in r})

    def value(sample, name):
        return next((r.get(field) for r in rows_of(sample) if r.get("name") == name), None)

    return charts.line_chart(
        [_series(samples, n, lambda s, n=n: value(s, n)) for n in names], title=title, unit=unit
    )


def board_context(hours=6, now=None):
    from core import charts

    samples = history(hours, now)
    queues = sorted({q for s in samples for q in s.queues})
    return {
        "latest": samples[-1] if samples else None,
        "hours": hours,
        "charts": {
            "tasks": charts.line_chart(
                [
                    _series(samples, "tasks", lambda s: s.tasks_per_minute),
                    _series(samples, "failures", lambda s: s.failures_per_minute),
                ],
                title="Tasks and failures per minute",
            ),
            "queues": charts.line_chart(
                [_series(samples, q, lambda s, q=q: s.queues.get(q)) for q in queues],
                title="Queue depth",
            ),
            "workers": charts.line_chart(
                [_series(samples, "workers", lambda s: len(s.workers))], title="Workers online"
            ),
            "pacs": _per_name(samples, _pacs_rows, "ms", "PACS C-ECHO response time", " ms"),
            "engine_latency": _per_name(
                samples, _pacs_rows, "engine_ms", "PACS response time seen by the engine", " ms"
            ),
            "associations": _per_name(
                samples, _pacs_rows, "associations", "PACS associations in use"
            ),
            "destination_latency": _per_name(
                samples, _destination_rows, "latency_ms", "Destination latency", " ms"
            ),
            "destination_errors": _per_name(
                samples, _destination_rows, "errors", "Destination errors"
            ),
            "instances": charts.line_chart(
                [_series(samples, "instances/s", lambda s: s.instances_per_s)],
                title="Migration throughput, instances per second",
            ),
            "megabytes": charts.line_chart(
                [_series(samples, "MB/s", lambda s: s.mb_per_s)],
                title="Migration throughput, MB per second",
            ),
        },
        "health": [
            {"component": name, "strip": charts.status_strip(rows, title=f"{name} health")}
            for name, rows in health_history(hours, now).items()
        ],
    }


def publish(row):
    """Push the refreshed monitoring board and the overview's system panel."""
    context = board_context()
    html = render_to_string("desk/_monitoring_panels.html", context)
    events.publish("monitoring", {"at": row.at, "workers": len(row.workers)}, html=html)
    from desk import triage

    summary = render_to_string(
        "desk/_overview_system.html",
        {"latest": row, "breaches": triage.breached_by_team(limit=5)},
    )
    events.publish("monitoring.summary", {"at": row.at}, html=summary)


def run(now=None):
    """Beat's minute: sample, check thresholds, publish."""
    row = sample(now)
    evaluate(row)
    publish(row)
    return row
