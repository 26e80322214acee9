"""Throughput of each wave, counted in Redis in 10-second buckets.

Workers add instances and bytes as they store them (`Meter`, flushed at most once a
second, so never a round trip per instance) into one Redis hash per wave whose fields are
`<bucket>:i` and `<bucket>:b`; pages read the whole hash in one round trip and derive the
last minute, the last hour and a per-minute series for the chart (`rates`).
"""

import threading
import time

from migration.throttle import client, key

BUCKET = 10
KEEP = 2 * 3600
NOW_WINDOW = 60


def _bucket(ts):
    return int(ts) // BUCKET * BUCKET


class Meter:
    """Thread-safe counter for one wave, flushed to Redis every `interval` seconds."""

    def __init__(self, wave_id, interval=1.0):
        self.wave_id = wave_id
        self.interval = interval
        self.lock = threading.Lock()
        self.instances = 0
        self.bytes = 0
        self.flushed_at = time.monotonic()

    def add(self, instances, size):
        with self.lock:
            self.instances += instances
            self.bytes += size
            due = time.monotonic() - self.flushed_at >= self.interval
        if due:
            self.flush()

    def flush(self):
        with self.lock:
            instances, size = self.instances, self.bytes
            self.instances = self.bytes = 0
            self.flushed_at = time.monotonic()
        if instances or size:
            name, stamp = key("rate", self.wave_id), _bucket(time.time())
            pipe = client().pipeline(transaction=False)
            pipe.hincrby(name, f"{stamp}:i", instances)
            pipe.hincrby(name, f"{stamp}:b", size)
            pipe.expire(name, KEEP)
            pipe.execute()


def _buckets(wave_id, now):
    """{bucket: [instances, bytes]} of the last two hours; older fields are dropped."""
    found, stale = {}, []
    for field, value in client().hgetall(key("rate", wave_id)).items():
        stamp, kind = field.decode().split(":")
        if int(stamp) < now - KEEP:
            stale.append(field)
            continue
        found.setdefault(int(stamp), [0, 0])[kind == "b"] = int(value)
    if stale:
        client().hdel(key("rate", wave_id), *stale)
    return found


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
