"""Bad configuration gives one clear line naming the variable, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("url", ["not a url", "mysql://db/x", "postgres://host:port/x"])
def test_a_malformed_database_url_is_one_line_naming_the_variable(url):
    result = manage("check", DATABASE_URL=url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: DATABASE_URL:")
    assert "Traceback" not in result.stderr


def test_a_malformed_redis_url_is_one_line_naming_the_variable():
    result = manage("check", REDIS_URL="http://nowhere")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("configuration error: REDIS_URL:")


def test_production_without_a_secret_key_refuses_to_start():
    result = manage("check", DEBUG="false", SECRET_KEY="", ALLOWED_HOSTS="pacs.example")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: SECRET_KEY: required when DEBUG is off (production)"
    )


def test_an_unreachable_redis_is_one_clear_line_from_preflight():
    result = manage(
        "preflight",
        REDIS_URL="redis://127.0.0.1:1/0",
        DATABASE_URL="sqlite:////tmp/cc-preflight-test.sqlite3",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Redis unreachable (REDIS_URL)" in lines[0] and "refused" in lines[0].lower()
    assert "Traceback" not in result.stderr


def test_the_celery_worker_refuses_a_bad_database_url_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "commandcenter", "inspect", "ping"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": "oracle://x/y"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("configuration error: DATABASE_URL")
    assert "Traceback" not in result.stderr


def test_a_visibility_timeout_not_longer_than_the_hard_time_limit_refuses_to_start():
    result = manage("check", CELERY_TASK_TIME_LIMIT="600", CELERY_VISIBILITY_TIMEOUT="600")
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "configuration error: CELERY_VISIBILITY_TIMEOUT: 600s is not longer than the hard"
    )


def test_a_broker_url_of_another_kind_is_one_line_naming_the_variable():
    result = manage("check", CELERY_BROKER_URL="sqs://queue")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("configuration error: CELERY_BROKER_URL:")


def test_a_beat_lock_shorter_than_two_loops_refuses_to_start():
    result = manage("check", BEAT_LOCK_TIMEOUT="5", BEAT_MAX_LOOP_INTERVAL="5")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("configuration error: BEAT_LOCK_TIMEOUT:")
