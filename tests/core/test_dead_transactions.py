"""A worker host that dies inside a transaction does not hold its row locks for long: the
server ends a session left idle in a transaction (DATABASE_IDLE_TRANSACTION_SECONDS)."""

import time

import environ
import psycopg
import pytest
from django.db import connection

from core.config import ConfigError, postgres_options


def options(monkeypatch, seconds=None):
    if seconds is None:
        monkeypatch.delenv("DATABASE_IDLE_TRANSACTION_SECONDS", raising=False)
    else:
        monkeypatch.setenv("DATABASE_IDLE_TRANSACTION_SECONDS", seconds)
    return postgres_options(environ.Env())


def test_the_default_is_a_minute_and_a_negative_value_refuses_to_start(monkeypatch):
    assert options(monkeypatch)["options"] == "-c idle_in_transaction_session_timeout=60000"
    with pytest.raises(ConfigError, match="DATABASE_IDLE_TRANSACTION_SECONDS"):
        options(monkeypatch, "-1")


def test_the_server_ends_a_session_idle_in_a_transaction_and_frees_its_locks(db, monkeypatch):
    assert connection.vendor == "postgresql", "the server's own timeout is checked on PostgreSQL"
    conf = connection.settings_dict
    params = {
        "dbname": conf["NAME"], "user": conf["USER"], "password": conf["PASSWORD"] or None,
        "host": conf["HOST"] or "127.0.0.1", "port": conf["PORT"] or 5432,
    }  # fmt: skip
    dying = psycopg.connect(**params, **options(monkeypatch, "0.5"))
    dying.execute("CREATE TEMP TABLE held (n int)")
    dying.execute("SELECT pg_advisory_xact_lock(4242)")  # a lock, as a ledger row's would be
    time.sleep(1.5)  # the host is gone: nothing more comes on its connection
    with psycopg.connect(**params, autocommit=True) as other:
        taken = other.execute("SELECT pg_try_advisory_lock(4242)").fetchone()[0]
        assert taken, "the lock was released with the ended session"
        other.execute("SELECT pg_advisory_unlock(4242)")
    with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
        dying.execute("SELECT 1")
    dying.close()
