"""One way for a benchmark to become a Django process: its environment, an embedded
Redis of its own, `django.setup()` and a migrated database."""

import os


def start(work, database_url, **env):
    """Set the run's environment (a local run: DEBUG on, the development key in
    `work`/var), start its Redis, migrate; returns the Redis to stop."""
    os.environ.update(
        DATABASE_URL=database_url,
        VAR_DIR=str(work / "var"),
        DJANGO_SETTINGS_MODULE="commandcenter.settings",
        LOG_LEVEL="WARNING",
        DEBUG="true",
        **env,
    )
    from devstack.services.redis import EmbeddedRedis

    redis = EmbeddedRedis().start()
    os.environ["REDIS_URL"] = redis.url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return redis
