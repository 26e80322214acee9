"""System health: the database, Redis and the Celery workers, each checked and timed."""

import threading
import time

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

COMPONENTS = ("database", "redis", "workers")


def timed(check):
    """Run one check; never raises: a failure becomes ok=False with a one-line detail."""
    start = time.perf_counter()
    try:
        ok, detail = check()
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - start) * 1000, 1)}


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True, connection.vendor


def check_redis():
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return True, "PONG"


def check_workers(timeout=1.0):
    from commandcenter.celery import app

    replies = app.control.ping(timeout=timeout)
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return False, "no worker answered"
    return True, f"{len(names)} responding: {', '.join(names)}"


def snapshot():
    """Every component's state; workers are only asked when Redis answers."""
    result = {"database": timed(check_database), "redis": timed(check_redis)}
    if result["redis"]["ok"]:
        # The ping's duration is its fixed reply window, not a latency worth showing.
        result["workers"] = {**timed(check_workers), "ms": None}
    else:
        result["workers"] = {"ok": False, "detail": "unknown: Redis is down", "ms": None}
    return {
        "ok": all(part["ok"] for part in result.values()),
        "checked_at": timezone.now(),
        "components": result,
    }


class Memo:
    """The last snapshot of this process, reused for `max_age` seconds: /healthz costs
    no database query, Redis ping or worker ping per hit, whoever polls it how often."""

    def __init__(self, compute=snapshot, clock=time.monotonic):
        self.compute = compute
        self.clock = clock
        self.lock = threading.Lock()
        self.value = None
        self.taken_at = None

    def get(self, max_age):
        with self.lock:
            now = self.clock()
            if self.value is None or now - self.taken_at >= max_age:
                self.value, self.taken_at = self.compute(), now
            return self.value

    def forget(self):
        with self.lock:
            self.value = None


MEMO = Memo()


def public_view(snap):
    """What anyone may see: up or not, nothing else (no host names, no error text)."""
    return {"status": "ok" if snap["ok"] else "unavailable"}


def recorded(checked_at):
    """The health check recorded at `checked_at`, as `snapshot()` shaped it."""
    from core.models import HealthSample

    samples = HealthSample.objects.filter(checked_at=checked_at)
    parts = {s.component: {"ok": s.ok, "detail": s.detail, "ms": s.ms} for s in samples}
    return {
        "ok": all(p["ok"] for p in parts.values()),
        "checked_at": checked_at,
        "components": parts,
    }
