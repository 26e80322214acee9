"""The old `commandcenter` app's database becomes `core` + `desk` without losing a row.

Cast: a hospital's database from before the split (its migrations recorded under the app
name `commandcenter`, its tickets in `commandcenter_*` tables), and `migrate` of the new code.
"""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE_SPLIT = ("core", "0006_api_tokens")


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


def make_it_look_like_before_the_split():
    """What a database migrated by the old code holds: the same tables and rows, with its
    history and content types under the old app name only. (Django records a migration
    that `replaces` others under the replaced names, so those rows are already there.)"""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'core'")
        cursor.execute(
            "UPDATE django_content_type SET app_label = 'commandcenter'"
            " WHERE app_label IN ('core', 'desk')"
        )
    ContentType.objects.clear_cache()


def old_ticket(old_apps):
    user = old_apps.get_model("auth", "User").objects.create(username="nurse-lead")
    now = timezone.now()
    ticket = old_apps.get_model("core", "Ticket").objects.create(
        title="Viewer slow in ED",
        priority="P2",
        reporter_id=user.pk,
        opened_at=now,
        updated_at=now,
        ack_due=now,
        resolve_due=now,
    )
    old_apps.get_model("core", "Comment").objects.create(
        ticket=ticket, author_id=user.pk, body="Seen on three workstations", created_at=now
    )
    return ticket.pk


@pytest.fixture(autouse=True)
def back_to_the_latest_schema():
    """Whatever a test did to the schema, the next test finds the latest one."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_split_keeps_its_tickets():
    executor = migrate([BEFORE_SPLIT])
    ticket_pk = old_ticket(executor.loader.project_state(BEFORE_SPLIT).apps)
    make_it_look_like_before_the_split()

    executor = MigrationExecutor(connection)
    assert BEFORE_SPLIT in executor.loader.applied_migrations, "the old history counts as core's"
    executor.migrate(executor.loader.graph.leaf_nodes())

    from desk.models import Ticket

    ticket = Ticket.objects.get(pk=ticket_pk)
    assert ticket.title == "Viewer slow in ED"
    assert [c.body for c in ticket.comments.all()] == ["Seen on three workstations"]
    assert ContentType.objects.get_for_model(Ticket).app_label == "desk"


@pytest.mark.django_db(transaction=True)
def test_the_split_migrates_back_and_forth_on_a_new_database():
    migrate([BEFORE_SPLIT])
    tables = connection.introspection.table_names()
    assert "commandcenter_ticket" in tables and "desk_ticket" not in tables
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    tables = connection.introspection.table_names()
    assert "desk_ticket" in tables and "commandcenter_ticket" not in tables
