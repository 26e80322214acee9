"""Reading configuration from the environment, failing loudly and in one line.

Every entry point (manage.py, the ASGI app, the Celery app) calls
`exit_on_config_error` around Django's set-up, so a wrong variable prints one
line naming the variable and the reason instead of a traceback wall.
"""

import secrets
import sys
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

SUPPORTED_DB_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql", "psql"}
SUPPORTED_REDIS_SCHEMES = {"redis", "rediss"}
SUPPORTED_BROKER_SCHEMES = SUPPORTED_REDIS_SCHEMES | {"amqp", "amqps"}
VISIBILITY_MARGIN_SECONDS = 300  # hard limit fired, task acknowledged, before any redelivery


class ConfigError(ImproperlyConfigured):
    """A setting read from the environment is missing or malformed."""

    def __init__(self, variable, why):
        self.variable = variable
        super().__init__(f"configuration error: {variable}: {why}")


def database_from(env, default):
    raw = env.str("DATABASE_URL", default=default)
    scheme = urlparse(raw).scheme
    if scheme not in SUPPORTED_DB_SCHEMES:
        raise ConfigError(
            "DATABASE_URL",
            f"unsupported or malformed URL {_redact(raw)!r}; "
            "expected postgres://USER@HOST:PORT/NAME or sqlite:///PATH",
        )
    try:
        db = environ.Env.db_url_config(raw)
    except Exception as exc:  # django-environ raises several kinds
        raise ConfigError("DATABASE_URL", f"cannot parse {_redact(raw)!r}: {exc}") from None
    if scheme != "sqlite" and not db.get("NAME"):
        raise ConfigError("DATABASE_URL", "the URL names no database")
    return db


def postgres_options(env):
    """Connection options for PostgreSQL: the server ends a session left idle inside a
    transaction after DATABASE_IDLE_TRANSACTION_SECONDS (0: never). A worker host that
    dies mid-transaction otherwise keeps its row locks (a wave's tallies among them, so
    every other host's next state change waits) until TCP gives up on it, 15 minutes
    when the server's last reply is still unacknowledged."""
    seconds = env.float("DATABASE_IDLE_TRANSACTION_SECONDS", default=60.0)
    if seconds < 0:
        raise ConfigError("DATABASE_IDLE_TRANSACTION_SECONDS", f"{seconds:g} is negative")
    return {"options": f"-c idle_in_transaction_session_timeout={int(seconds * 1000)}"}


def redis_url_from(env, default):
    raw = env.str("REDIS_URL", default=default)
    parsed = urlparse(raw)
    if parsed.scheme not in SUPPORTED_REDIS_SCHEMES or not parsed.hostname:
        raise ConfigError(
            "REDIS_URL", f"malformed URL {_redact(raw)!r}; expected redis://HOST:PORT/DB"
        )
    try:
        _ = parsed.port
    except ValueError:
        raise ConfigError("REDIS_URL", f"bad port in {_redact(raw)!r}") from None
    return raw


def broker_url_from(env, redis_url):
    """The Celery broker: CELERY_BROKER_URL (Redis or RabbitMQ), else REDIS_URL. Results,
    the channel layer, the engine's keys and beat's lock stay in Redis either way."""
    raw = env.str("CELERY_BROKER_URL", default=redis_url)
    parsed = urlparse(raw)
    if parsed.scheme not in SUPPORTED_BROKER_SCHEMES or not parsed.hostname:
        raise ConfigError(
            "CELERY_BROKER_URL",
            f"malformed URL {_redact(raw)!r}; expected amqp://USER:PASSWORD@HOST:PORT/VHOST "
            "or redis://HOST:PORT/DB",
        )
    return raw


def task_limits_from(env):
    """(soft, hard, visibility) in seconds. The broker's visibility timeout (Redis) is
    derived from the hard time limit, and one set by hand must exceed it: a task still
    running when its message becomes visible again is delivered to a second worker."""
    hard = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600)
    soft = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=hard - max(1, min(60, hard // 10)))
    visibility = env.int("CELERY_VISIBILITY_TIMEOUT", default=hard + VISIBILITY_MARGIN_SECONDS)
    if not 0 < soft < hard:
        raise ConfigError(
            "CELERY_TASK_SOFT_TIME_LIMIT", f"{soft}s must be positive and under the hard {hard}s"
        )
    if visibility <= hard:
        raise ConfigError(
            "CELERY_VISIBILITY_TIMEOUT",
            f"{visibility}s is not longer than the hard time limit CELERY_TASK_TIME_LIMIT "
            f"({hard}s): a task still running would be delivered to a second worker",
        )
    return soft, hard, visibility


def beat_lock_from(env):
    """(loop interval, lock timeout) of beat's lock in Redis: the lock holder renews it
    every loop, a standby takes over at most a lock timeout after the holder dies."""
    loop = env.float("BEAT_MAX_LOOP_INTERVAL", default=5.0)
    lock = env.int("BEAT_LOCK_TIMEOUT", default=30)
    if lock < 2 * loop:
        raise ConfigError(
            "BEAT_LOCK_TIMEOUT",
            f"{lock}s is under twice BEAT_MAX_LOOP_INTERVAL ({loop}s): a busy holder would lose it",
        )
    return loop, lock


def secret_key_from(env, debug, var_dir: Path):
    """SECRET_KEY from the environment; in development, a key kept in var/."""
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not debug:
        raise ConfigError("SECRET_KEY", "required when DEBUG is off (production)")
    keyfile = var_dir / "secret_key"
    if not keyfile.exists():
        keyfile.parent.mkdir(parents=True, exist_ok=True)
        keyfile.write_text(secrets.token_urlsafe(50))
    return keyfile.read_text().strip()


def _redact(url):
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(parsed.password, "***")
    return url


def exit_on_config_error(setup):
    """Run `setup`; on a configuration error print one line and exit 2."""
    try:
        return setup()
    except ImproperlyConfigured as exc:
        print(
            str(exc) if isinstance(exc, ConfigError) else f"configuration error: {exc}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
