"""Session fixtures: the cast of users, and the real processes the tests talk to.

Services start once per session, on free loopback ports, and only when a test asks
for them. A service that cannot start fails the test with its reason; nothing skips.
"""

import pytest
from django.contrib.auth.models import Group, User

from core.access import ADMIN, CLINICIAN, ENGINEER, LEAD, PM, STAFF, ensure_roles

pytest_plugins = ["tests.fixtures_services", "tests.fixtures_processes", "tests.fixtures_engine"]

CAST = {
    "staff": STAFF,
    "lead": LEAD,
    "pm": PM,
    "clinician": CLINICIAN,
    "engineer": ENGINEER,
    "admin": ADMIN,
}
PASSWORD = "correct horse battery staple"


def make_user(username, role=None, **extra):
    ensure_roles()
    user = User.objects.create_user(username, f"{username}@hospital.test", PASSWORD, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop in the test thread
    for the rest of the session, and async_to_sync cannot run in that thread any more."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Tests create many users; PBKDF2's deliberate slowness only costs time here."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _alerts_taken_in_here(monkeypatch):
    """Alerts raised in the test process are taken in here, after commit, by the drain the
    Celery task runs (`core.alerts.drain`): no worker reads the alert queue for every test.
    Workers that tests start queue the real task; tests/core/test_durable_alerts.py kills
    one between an alert's commit and its intake."""
    from core import alerts

    monkeypatch.setattr(alerts, "enqueue_drain", alerts.drain)


DB_FIXTURES = frozenset({"db", "transactional_db", "live_server", "django_db_serialized_rollback"})


@pytest.fixture(autouse=True)
def _tallies_start_empty(request, django_db_blocker):
    """On SQLite a transactional test's flush empties the tables one DELETE at a time, in
    an order that varies with the process's hash seed (Django lists them from a set). A
    tally (`core.rollups`) emptied before the table it counts is then decremented below
    zero by that table's delete triggers, and the next test's totals start negative.
    PostgreSQL's TRUNCATE fires no row triggers. A test that uses the database starts with
    every tally empty when the table it counts is empty."""
    if not (
        request.node.get_closest_marker("django_db") or DB_FIXTURES & set(request.fixturenames)
    ):
        return
    request.getfixturevalue("django_db_setup")
    from django.db import connection

    from inventory.rollup import STUDIES
    from migration.tally import LEDGER

    with django_db_blocker.unblock():
        if connection.vendor != "sqlite":
            return
        with connection.cursor() as cursor:
            for rollup in (STUDIES, LEDGER):
                cursor.execute(
                    f"DELETE FROM {rollup.tally_table} "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {rollup.counted_table})"
                )


@pytest.fixture
def cast(db):
    """One user per role, by name: cast.staff, cast.lead, cast.pm, cast.clinician,
    cast.engineer, cast.admin; plus cast.nobody (logged in, no role)."""

    class Cast:
        pass

    people = Cast()
    for name, role in CAST.items():
        setattr(people, name, make_user(name, role))
    people.nobody = make_user("nobody")
    return people


@pytest.fixture
def client_for(client):
    """client_for(user) -> the test client logged in as that user."""

    def login(user):
        client.force_login(user)
        return client

    return login
