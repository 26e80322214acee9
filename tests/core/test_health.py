"""Health: /healthz and the API report the database, Redis and the workers."""

import time

import pytest

from core import health
from core.models import HealthSample
from core.tasks import publish_health


@pytest.fixture(autouse=True)
def _fresh_health():
    health.MEMO.forget()
    yield
    health.MEMO.forget()


def test_healthz_is_200_when_database_redis_and_a_worker_are_up(cast, client_for, celery_worker):
    response = client_for(cast.clinician).get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert {name for name, part in body["components"].items() if part["ok"]} == {
        "database",
        "redis",
        "workers",
    }
    assert celery_worker.name in body["components"]["workers"]["detail"]


def test_healthz_is_503_and_names_redis_when_redis_is_unreachable(cast, client_for, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client_for(cast.clinician).get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["components"]["database"]["ok"]
    assert not body["components"]["redis"]["ok"]
    assert "refused" in body["components"]["redis"]["detail"].lower()
    assert body["components"]["workers"]["detail"] == "unknown: Redis is down"


def test_the_api_reports_health_to_logged_in_users_only(client, cast, client_for, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get("/api/health/").status_code == 401
    assert client_for(cast.clinician).get("/api/health/").status_code == 503


@pytest.mark.django_db(transaction=True)
def test_a_celery_round_trip_records_health_samples(celery_worker):
    publish_health.delay()
    deadline = time.monotonic() + 30
    while not HealthSample.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    samples = {s.component: s.ok for s in HealthSample.objects.all()}
    assert samples == {"database": True, "redis": True, "workers": True}, celery_worker.log_tail()


def test_anonymous_healthz_shows_only_the_status_even_when_a_part_is_down(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_anonymous_healthz_shows_no_worker_names(client, celery_worker, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert celery_worker.name.split("@")[0] not in response.content.decode()


def test_repeated_healthz_hits_reuse_one_check(client, db, settings, django_assert_num_queries):
    settings.HEALTHZ_CACHE_SECONDS = 60
    client.get("/healthz")
    computed_at = health.MEMO.taken_at
    with django_assert_num_queries(0):
        for _ in range(20):
            assert client.get("/healthz").json()["status"] in ("ok", "unavailable")
    assert health.MEMO.taken_at == computed_at


def test_the_health_memo_computes_again_once_its_answer_is_older_than_max_age():
    now = [0.0]
    calls = []
    memo = health.Memo(compute=lambda: calls.append(now[0]) or {"ok": True}, clock=lambda: now[0])
    memo.get(10)
    now[0] = 9.9
    memo.get(10)
    now[0] = 10.0
    memo.get(10)
    assert calls == [0.0, 10.0]
