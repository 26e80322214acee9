"""Automatic tickets: alerts become tickets after commit, one open ticket per cause
(counting occurrences), never with PHI in the title; health and real DIMSE failures
raise them."""

import pytest
from django.db import IntegrityError, transaction

from core import actions
from core.alerts import clear_alert, raise_alert
from desk import intake, tickets
from desk.models import Ticket
from devstack.services.base import LOOPBACK, free_port
from inventory.models import PacsSource, Study
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def alert(cause="migration.failed.wave-3.timeout", **extra):
    return raise_alert(
        "migration",
        cause,
        extra.pop("title", "Wave 3: studies failing (timeout)"),
        category="missing/incorrect images",
        impact="high",
        urgency="low",
        **extra,
    )


def test_an_alert_opens_a_ticket_after_commit_and_repeats_count_on_it(db):
    with transaction.atomic():
        alert(links={"wave": 3})
        assert not Ticket.objects.exists()
    alert()
    alert()
    ticket = Ticket.objects.get()
    assert (ticket.source, ticket.category, ticket.priority) == (
        "migration",
        "missing_images",
        "P3",
    )
    assert ticket.team == "migration" and ticket.links == {"wave": 3}
    assert ticket.occurrences == 3
    assert ticket.history.filter(kind="occurrence").count() == 1
    assert "seen 3 times" in ticket.history.get(kind="occurrence").note


def test_a_different_cause_opens_its_own_ticket(db):
    alert()
    alert("migration.quarantined.wave-3.corrupt", title="Wave 3: studies quarantined")
    assert Ticket.objects.count() == 2


def test_once_resolved_the_same_cause_opens_a_fresh_ticket(cast):
    alert()
    first = Ticket.objects.get()
    tickets.transition(first, "resolved", cast.staff)
    alert()
    assert Ticket.objects.filter(cause=first.cause).count() == 2
    assert Ticket.objects.get(cause=first.cause, status="new").occurrences == 1


def test_the_database_itself_refuses_two_open_tickets_for_one_cause(db):
    alert()
    original = Ticket.objects.get()
    original.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        original.save()


def test_no_phi_reaches_an_automatic_ticket_title(db):
    source = PacsSource.objects.create(name="legacy", ae_title="LEGACY", host=LOOPBACK, port=104)
    study = Study.objects.create(
        source=source,
        study_uid="1.2.3",
        patient_id="PID-778899",
        patient_name="DOE^JANE^Q",
        accession_number="ACC123456",
    )
    alert(
        "migration.failed.study",
        title="Study of Doe^Jane (PID-778899, ACC123456) failed for DOE^JANE^Q",
        detail="patient jane doe, acc ACC123456",
        links={"study": study.pk},
    )
    ticket = Ticket.objects.get()
    for phi in ("DOE", "Doe", "JANE", "Jane", "PID-778899", "ACC123456"):
        assert phi not in ticket.title
    assert "ACC123456" not in ticket.description and "jane" not in ticket.description.lower()
    assert ticket.title.startswith("Study of [redacted]")


def test_a_component_going_down_opens_one_monitoring_ticket(settings):
    settings.REDIS_URL = f"redis://{LOOPBACK}:{free_port()}/0"  # nothing listens there
    actions.record_health()
    actions.record_health()
    ticket = Ticket.objects.get(cause="health.redis.down")
    assert ticket.title == "Redis is down" and ticket.source == "monitoring"
    assert ticket.priority == "P1" and ticket.occurrences == 2
    assert "ConnectionError" in ticket.description or "Error" in ticket.description


def test_a_cleared_alert_resolves_its_open_ticket_as_the_system(cast):
    alert()
    alert()
    clear_alert("migration", "migration.failed.wave-3.timeout", detail="wave 3 runs again")
    ticket = Ticket.objects.get()
    assert ticket.status == "resolved" and ticket.occurrences == 2
    change = ticket.history.get(kind="status")
    assert (change.actor, change.before, change.after) == (None, "New", "Resolved")
    assert change.note == "recovered"
    comment = ticket.comments.get()
    assert comment.author is None and comment.body == "Recovered: wave 3 runs again"
    clear_alert("migration", "migration.failed.wave-3.timeout")  # nothing open: nothing happens
    assert ticket.history.filter(kind="status").count() == 1


def test_a_component_back_up_resolves_its_monitoring_ticket(settings):
    working = settings.REDIS_URL
    settings.REDIS_URL = f"redis://{LOOPBACK}:{free_port()}/0"
    actions.record_health()
    actions.record_health()
    settings.REDIS_URL = working
    actions.record_health()
    actions.record_health()
    ticket = Ticket.objects.get(cause="health.redis.down")
    assert ticket.status == "resolved" and ticket.occurrences == 2
    assert ticket.history.get(kind="status").actor is None
    assert ticket.comments.get().body.startswith("Recovered: health check passes (PONG)")
    settings.REDIS_URL = f"redis://{LOOPBACK}:{free_port()}/0"
    actions.record_health()
    assert Ticket.objects.filter(cause="health.redis.down").count() == 2
    assert Ticket.objects.get(cause="health.redis.down", status="new").occurrences == 1


def _source(host, port, ae_title):
    return PacsSource.objects.create(
        name=f"pacs-{port}", ae_title=ae_title, host=host, port=port, calling_ae_title="CCTEST"
    )


def test_a_pacs_that_does_not_answer_fails_the_migration_check_into_one_ticket(db):
    source = _source(LOOPBACK, free_port(), "GONE")
    assert intake.check_migration_source(source, wave_id=7) is False
    assert intake.check_migration_source(source, wave_id=7) is False
    ticket = Ticket.objects.get()
    assert ticket.cause == f"migration.pacs_failed.{source.pk}.C-FIND.wave-7"
    assert ticket.title == f"C-FIND against legacy PACS {source.name} fails"
    assert ticket.occurrences == 2 and ticket.links == {"wave": 7}
    assert "connection refused" in ticket.description  # dicomnet says why, in plain words


def test_a_pacs_that_answers_raises_nothing(orthanc_pacs):
    source = _source(orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet)
    assert intake.check_migration_source(source) is True
    assert not Ticket.objects.exists()


def test_a_pacs_that_answers_again_resolves_its_ticket(orthanc_pacs):
    source = _source(LOOPBACK, free_port(), orthanc_pacs.aet)
    assert intake.check_migration_source(source, wave_id=4) is False
    PacsSource.objects.filter(pk=source.pk).update(port=orthanc_pacs.port)
    source.refresh_from_db()
    assert intake.check_migration_source(source, wave_id=4) is True
    ticket = Ticket.objects.get()
    assert ticket.status == "resolved"
    assert ticket.comments.get().body == f"Recovered: C-FIND against {source.name} succeeds"


def test_a_real_rejection_in_a_celery_worker_becomes_one_deduplicated_ticket(
    dcmqrscp_pacs, celery_worker
):
    from desk.tasks import check_migration_source

    source = _source(dcmqrscp_pacs.host, dcmqrscp_pacs.port, "WRONGAET")  # dcmqrscp rejects it
    results = [check_migration_source.delay(source.pk, wave_id=3) for _ in range(2)]
    assert [r.get(timeout=60) for r in results] == [False, False]
    # the worker's alerts reach the desk through the drain task it queues after each commit
    wait_for(lambda: Ticket.objects.filter(occurrences=2).exists(), message="both alerts taken in")
    ticket = Ticket.objects.get()
    assert ticket.occurrences == 2
    assert ticket.source == "migration" and "rejected" in ticket.description
