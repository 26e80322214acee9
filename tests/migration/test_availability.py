"""The availability check against the real S3 store (SeaweedFS): sampled instances are
fetched and timed; an object that is gone raises an alert that opens a ticket."""

import json

import pytest

from desk.models import Ticket
from migration import availability
from migration.models import Discrepancy, ValidationRun
from tests.migration import validation_support as vs

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_sampled_fetch_is_timed_and_a_gone_object_raises_a_ticket_without_phi(
    mixed_pacs, migration_s3, bucket
):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies, ("CT", "CR"))
    wave = vs.migrate_in_process(vs.new_wave("avail", orthanc, chosen, migration_s3, bucket))

    healthy = availability.check(sample=10, seed=1)

    assert healthy.kind == ValidationRun.Kind.AVAILABILITY and healthy.state == "done"
    assert healthy.totals["fetched"] == 2 and healthy.totals["failed"] == 0
    assert all(fetch["ms"] > 0 for fetch in healthy.totals["fetches"])
    assert not Ticket.objects.filter(cause__startswith="validation.availability").exists()

    gone = vs.stored(wave, "CT")
    vs.delete_object(migration_s3, wave, gone.key)
    broken = availability.check(sample=10, seed=1)

    assert broken.totals["failed"] == 1
    (failure,) = [f for f in broken.totals["fetches"] if f["error"]]
    assert failure["instance"] == gone.sop_uid
    ticket = Ticket.objects.get(cause=f"validation.availability.{wave.destination.name}")
    assert "1 failed of 2" in ticket.title
    assert gone.sop_uid in ticket.description
    text = json.dumps([ticket.title, ticket.description, broken.totals])
    for datasets in chosen.values():
        assert str(datasets[0].PatientName) not in text and str(datasets[0].PatientID) not in text
    (unavailable,) = Discrepancy.objects.filter(wave=wave, kind="unavailable")
    assert unavailable.sop_uid == gone.sop_uid and unavailable.status == "open"


def test_a_slow_fetch_counts_as_slow_and_raises_a_performance_alert(
    mixed_pacs, migration_s3, bucket
):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies, ("US",))
    wave = vs.migrate_in_process(vs.new_wave("slow", orthanc, chosen, migration_s3, bucket))

    run = availability.check(sample=5, slow_ms=0.001)

    assert run.totals["slow"] == 1 and run.totals["failed"] == 0
    ticket = Ticket.objects.get(cause=f"validation.availability.{wave.destination.name}")
    assert "slower than" in ticket.title

    recovered = availability.check(sample=5, slow_ms=60_000)

    assert recovered.totals["slow"] == recovered.totals["failed"] == 0
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert ticket.comments.filter(body__startswith="Recovered").exists()
