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
