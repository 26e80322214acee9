"""Throughput of each wave, and of the engine as a whole, counted in Redis in 10-second
buckets; upload latency and errors per destination likewise.

Workers add instances and bytes as they store them (`Meter`, flushed at most once a
second, so never a round trip per instance) into one Redis hash per wave whose fields are
`<bucket>:i` and `<bucket>:b`, the same into the engine-wide hash `ALL`, and the running
totals into `totals`; pages read a whole hash in one round trip and derive the last
minute, the last hour and a per-minute series for the chart (`rates`, `per_minute`).
Each destination's hash holds `<bucket>:n` uploads taking `<bucket>:ms` in all, and
`<bucket>:e` failed study attempts (`destination_recent`).
"""

import logging
import threading
import time

import redis

from migration.throttle import client, key

log = logging.getLogger(__name__)
BUCKET = 10
KEEP = 2 * 3600
NOW_WINDOW = 60
ALL = "all"


def _bucket(ts):
    return int(ts) // BUCKET * BUCKET


class Meter:
    """Thread-safe counter for one wave (and its destination's upload latency), flushed to
    Redis every `interval` seconds."""

    def __init__(self, wave_id, interval=1.0, destination_id=None):
        self.wave_id = wave_id
        self.destination_id = destination_id
        self.interval = interval
        self.lock = threading.Lock()
        self.instances = self.bytes = self.uploads = 0
        self.upload_ms = 0.0
        self.flushed_at = time.monotonic()

    def add(self, instances, size, upload_ms=None):
        with self.lock:
            self.instances += instances
            self.bytes += size
            if upload_ms is not None:
                self.uploads += 1
                self.upload_ms += upload_ms
            due = time.monotonic() - self.flushed_at >= self.interval
        if due:
            self.flush()

    def flush(self):
        with self.lock:
            counts = (self.instances, self.bytes, self.uploads, self.upload_ms)
            self.instances = self.bytes = self.uploads = 0
            self.upload_ms = 0.0
            self.flushed_at = time.monotonic()
        if any(counts):
            self._write(*counts)

    def _write(self, instances, size, uploads, upload_ms):
        stamp = _bucket(time.time())
        pipe = client().pipeline(transaction=False)
        for name in (key("rate", self.wave_id), key("rate", ALL)):
            pipe.hincrby(name, f"{stamp}:i", instances)
            pipe.hincrby(name, f"{stamp}:b", size)
            pipe.expire(name, KEEP)
        pipe.hincrby(key("totals"), "instances", instances)
        pipe.hincrby(key("totals"), "bytes", size)
        if uploads and self.destination_id is not None:
            name = key("dest", self.destination_id)
            pipe.hincrby(name, f"{stamp}:n", uploads)
            pipe.hincrbyfloat(name, f"{stamp}:ms", round(upload_ms, 3))
            pipe.expire(name, KEEP)
        pipe.execute()


def record_destination_error(destination_id):
    """Count one study attempt that failed on the destination; never raises (the failure
    itself is what matters, and it is recorded in the ledger)."""
    name = key("dest", destination_id)
    try:
        pipe = client().pipeline(transaction=False)
        pipe.hincrby(name, f"{_bucket(time.time())}:e", 1)
        pipe.expire(name, KEEP)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("destination %s: error not counted: %s", destination_id, exc)


def _fields(name, now):
    """{bucket: {kind: value}} of one hash for the last two hours; drops older fields."""
    found, stale = {}, []
    for field, value in client().hgetall(name).items():
        stamp, kind = field.decode().split(":")
        if int(stamp) < now - KEEP:
            stale.append(field)
            continue
        found.setdefault(int(stamp), {})[kind] = float(value)
    if stale:
        client().hdel(name, *stale)
    return found


def _buckets(wave_id, now):
    """{bucket: [instances, bytes]} of the last two hours."""
    return {
        stamp: [int(v.get("i", 0)), int(v.get("b", 0))]
        for stamp, v in _fields(key("rate", wave_id), now).items()
    }


def totals():
    """Instances and bytes stored by the engine since Redis began counting."""
    found = client().hgetall(key("totals"))
    return {name: int(found.get(name.encode(), 0)) for name in ("instances", "bytes")}


def per_minute(wave_id=ALL, now=None, span=KEEP):
    """[(minute epoch, instances/s, MB/s)] over the last `span` seconds, oldest first."""
    now = now or time.time()
    minutes = {}
    for stamp, (instances, size) in _buckets(wave_id, now).items():
        if stamp > now - span:
            total = minutes.setdefault(stamp // 60 * 60, [0, 0])
            total[0] += instances
            total[1] += size
    return [
        (stamp, round(i / 60, 2), round(b / 60 / 1e6, 3))
        for stamp, (i, b) in sorted(minutes.items())
    ]


def destination_recent(destination_id, now=None, latency_window=300, error_window=3600):
    """{"latency_ms" (mean upload time over `latency_window`, None without uploads),
    "uploads", "errors" (failed study attempts over `error_window`)} of a destination."""
    now = now or time.time()
    fields = _fields(key("dest", destination_id), now)
    recent = [v for stamp, v in fields.items() if stamp > now - latency_window - BUCKET]
    uploads = int(sum(v.get("n", 0) for v in recent))
    spent = sum(v.get("ms", 0.0) for v in recent)
    errors = sum(v.get("e", 0) for stamp, v in fields.items() if stamp > now - error_window)
    return {
        "latency_ms": round(spent / uploads, 1) if uploads else None,
        "uploads": uploads,
        "errors": int(errors),
    }


def rates(wave_id, started_at=None, now=None):
    """{"now": {...}, "hour": {...}, "per_minute": [(epoch, inst/s), ...]} where each rate
    is {"instances_s", "mb_s"}; the hour is measured since the wave started when later."""
    now = now or time.time()
    buckets = _buckets(wave_id, now)
    hour_span = 3600.0
    if started_at is not None:
        hour_span = min(hour_span, max(BUCKET, now - started_at.timestamp()))
    hour = [v for stamp, v in buckets.items() if stamp > now - 3600 - BUCKET]
    recent = [v for stamp, v in buckets.items() if stamp > now - NOW_WINDOW - BUCKET]
    per_minute = {}
    for stamp, (instances, _size) in buckets.items():
        if stamp > now - 3600:
            per_minute[stamp // 60 * 60] = per_minute.get(stamp // 60 * 60, 0) + instances
    return {
        "now": _rate(recent, min(NOW_WINDOW, hour_span)),
        "hour": _rate(hour, hour_span),
        "per_minute": [(stamp, count / 60) for stamp, count in sorted(per_minute.items())],
    }


def _rate(rows, span):
    instances = sum(r[0] for r in rows)
    size = sum(r[1] for r in rows)
    return {"instances_s": round(instances / span, 2), "mb_s": round(size / span / 1e6, 3)}
