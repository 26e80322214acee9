"""Health: /healthz and the API report the database, Redis and the workers."""

import time

import pytest

from commandcenter.models import HealthSample
from commandcenter.tasks import publish_health


def test_healthz_is_200_when_database_redis_and_a_worker_are_up(client, celery_worker, db):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert {name for name, part in body["components"].items() if part["ok"]} == {
        "database",
        "redis",
        "workers",
    }
    assert celery_worker.name in body["components"]["workers"]["detail"]


def test_healthz_is_503_and_names_redis_when_redis_is_unreachable(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["components"]["database"]["ok"]
    assert not body["components"]["redis"]["ok"]
    assert "refused" in body["components"]["redis"]["detail"].lower()
    assert body["components"]["workers"]["detail"] == "unknown: Redis is down"


def test_the_api_reports_health_to_logged_in_users_only(client, cast, client_for, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get("/api/health/").status_code == 403
    assert client_for(cast.clinician).get("/api/health/").status_code == 503


@pytest.mark.django_db(transaction=True)
def test_a_celery_round_trip_records_health_samples(celery_worker):
    publish_health.delay()
    deadline = time.monotonic() + 30
    while not HealthSample.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    samples = {s.component: s.ok for s in HealthSample.objects.all()}
    assert samples == {"database": True, "redis": True, "workers": True}, celery_worker.log_tail()
