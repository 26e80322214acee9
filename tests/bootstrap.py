"""Loaded with `-p tests.bootstrap`, before Django reads its settings.

Settings read REDIS_URL at import, so the session's Redis must exist first: when
REDIS_URL is unset, an embedded Redis server is started here on a free loopback
port and stopped when the session ends.
"""

import os

from devstack.services.redis import EmbeddedRedis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commandcenter.settings")
# Playwright's sync API runs an event loop in the test thread; the ORM calls the
# tests make around it are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Every test service listens on loopback: allow it, explicitly (production allows nothing
# unless listed).
os.environ.setdefault("EGRESS_ALLOW", "127.0.0.0/8,::1,localhost")
os.environ.setdefault("CHANNEL_PREFIX", f"cctest{os.getpid()}")
# The tests run with production's defaults (DEBUG off) and say what differs: plain HTTP on
# loopback (no TLS redirect, HSTS or Secure cookies), a fixed key, generous API rates.
for _name, _value in {
    "SECRET_KEY": "tests-only-secret-key-" + "x" * 40,
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "SECURE_SSL_REDIRECT": "false",
    "SECURE_HSTS_SECONDS": "0",
    "SECURE_COOKIES": "false",
    "DEVSTACK": "true",  # the suite runs the developer stack's commands and services
    "API_THROTTLE_ANON": "100000/min",
    "API_THROTTLE_USER": "100000/min",
}.items():
    os.environ.setdefault(_name, _value)

_embedded_redis = None
if not os.environ.get("REDIS_URL"):
    _embedded_redis = EmbeddedRedis().start()
    os.environ["REDIS_URL"] = _embedded_redis.url


def pytest_unconfigure(config):
    if _embedded_redis is not None:
        _embedded_redis.stop()
