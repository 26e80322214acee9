"""Loaded with `-p tests.bootstrap`, before Django reads its settings.

Settings read REDIS_URL at import, so the session's Redis must exist first: when
REDIS_URL is unset, an embedded Redis server is started here on a free loopback
port and stopped when the session ends.
"""

import os

from commandcenter.services.redis import EmbeddedRedis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commandcenter.settings")
# Playwright's sync API runs an event loop in the test thread; the ORM calls the
# tests make around it are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Every test service listens on loopback: allow it, explicitly (production allows nothing
# unless listed).
os.environ.setdefault("EGRESS_ALLOW", "127.0.0.0/8,::1,localhost")
os.environ.setdefault("CHANNEL_PREFIX", f"cctest{os.getpid()}")

_embedded_redis = None
if not os.environ.get("REDIS_URL"):
    _embedded_redis = EmbeddedRedis().start()
    os.environ["REDIS_URL"] = _embedded_redis.url


def pytest_unconfigure(config):
    if _embedded_redis is not None:
        _embedded_redis.stop()
