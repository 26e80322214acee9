"""The ledger's guarded state machine: one owner per study, leases, bounded retries."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inventory.models import PacsSource, Study
from migration import ledger
from migration.models import Destination, StudyState, Wave, WaveState, WaveStudy


def make_wave(studies=3, state=WaveState.RUNNING, name="w"):
    source = PacsSource.objects.create(
        name=f"pacs-{name}", ae_title="P", host="127.0.0.1", port=104
    )
    destination = Destination.objects.create(name=f"d-{name}", kind="filesystem", path="/tmp")
    wave = Wave.objects.create(name=name, source=source, destination=destination, state=state)
    for index in range(studies):
        study = Study.objects.create(source=source, study_uid=f"1.2.3.{index}")
        WaveStudy.objects.create(wave=wave, study=study)
    return wave


@pytest.mark.django_db
def test_a_claim_takes_the_study_leases_it_and_counts_the_attempt():
    wave = make_wave(1)

    row = ledger.claim_next([wave.pk], "worker-a")

    assert row.state == StudyState.RETRIEVING
    assert row.lease_owner == "worker-a"
    assert row.attempts == 1
    assert row.lease_expires > timezone.now()
    assert ledger.claim_next([wave.pk], "worker-b") is None


@pytest.mark.django_db
def test_transitions_outside_the_table_or_by_another_owner_are_refused():
    wave = make_wave(1)
    row = ledger.claim_next([wave.pk], "worker-a")

    assert not ledger.transition(row.pk, StudyState.DONE, owner="worker-a")
    assert not ledger.transition(row.pk, StudyState.UPLOADING, owner="worker-b")
    with pytest.raises(ledger.LeaseLostError):
        ledger.advance(row.pk, StudyState.UPLOADING, "worker-b")
    ledger.advance(row.pk, StudyState.UPLOADING, "worker-a")
    ledger.advance(row.pk, StudyState.VERIFYING, "worker-a")
    ledger.advance(row.pk, StudyState.DONE, "worker-a")
    assert WaveStudy.objects.get(pk=row.pk).state == StudyState.DONE


@pytest.mark.django_db
def test_an_expired_lease_is_reclaimed_and_the_old_owner_can_no_longer_move_it():
    wave = make_wave(1)
    row = ledger.claim_next([wave.pk], "dead-worker")
    later = timezone.now() + timedelta(seconds=ledger.lease_seconds() + 1)

    again = ledger.claim_next([wave.pk], "new-worker", now=later)

    assert again.pk == row.pk and again.attempts == 2 and again.lease_owner == "new-worker"
    assert not ledger.renew(row.pk, "dead-worker")
    with pytest.raises(ledger.LeaseLostError):
        ledger.advance(row.pk, StudyState.UPLOADING, "dead-worker")


@pytest.mark.django_db
def test_failures_back_off_then_quarantine_once_attempts_are_used_up(settings):
    settings.MIGRATION_MAX_ATTEMPTS = 2
    wave = make_wave(1)
    row = ledger.claim_next([wave.pk], "w")

    assert ledger.fail(row, "w", "timeout", "the PACS did not answer") == StudyState.FAILED
    failed = WaveStudy.objects.get(pk=row.pk)
    assert failed.not_before > timezone.now()
    assert ledger.claim_next([wave.pk], "w") is None  # not before its retry time

    row = ledger.claim_next([wave.pk], "w", now=failed.not_before + timedelta(seconds=1))
    assert ledger.fail(row, "w", "timeout", "again") == StudyState.QUARANTINED
    assert WaveStudy.objects.get(pk=row.pk).last_error == "again"


@pytest.mark.django_db
def test_bad_data_quarantines_at_once():
    wave = make_wave(1)
    row = ledger.claim_next([wave.pk], "w")
    assert ledger.fail(row, "w", "bad_data", "unreadable") == StudyState.QUARANTINED


def test_retry_delays_grow_exponentially_with_jitter_and_stay_under_the_cap(settings):
    settings.MIGRATION_RETRY_BASE_SECONDS = 10
    settings.MIGRATION_RETRY_MAX_SECONDS = 100
    delays = {attempt: [ledger.retry_delay(attempt) for _ in range(50)] for attempt in (1, 2, 3, 9)}
    assert all(5 <= d <= 10 for d in delays[1])
    assert all(10 <= d <= 20 for d in delays[2])
    assert all(20 <= d <= 40 for d in delays[3])
    assert all(50 <= d <= 100 for d in delays[9])
    assert len(set(delays[1])) > 1


@pytest.mark.django_db
def test_a_worker_that_died_on_its_last_attempt_leaves_a_quarantined_study(settings):
    settings.MIGRATION_MAX_ATTEMPTS = 1
    wave = make_wave(1)
    row = ledger.claim_next([wave.pk], "dead")
    later = timezone.now() + timedelta(seconds=ledger.lease_seconds() + 1)

    assert ledger.claim_next([wave.pk], "other", now=later) is None
    assert ledger.expire_abandoned(now=later) == [row.pk]
    row.refresh_from_db()
    assert (row.state, row.error_class) == (StudyState.QUARANTINED, "worker_lost")


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_claim_the_same_study():
    wave = make_wave(12)
    claims, barrier = [], threading.Barrier(6)

    def work(name):
        barrier.wait()
        try:
            while (row := ledger.claim_next([wave.pk], name)) is not None:
                claims.append((row.pk, name))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(pk for pk, _name in claims) == sorted(wave.ledger.values_list("pk", flat=True))
    owners = dict(WaveStudy.objects.values_list("pk", "lease_owner"))
    assert all(owners[pk] == name for pk, name in claims)


@pytest.mark.django_db
def test_studies_of_draft_or_cancelled_waves_are_not_claimed_when_the_wave_is_not_running():
    wave = make_wave(2, state=WaveState.DRAFT)
    assert ledger.running_waves(wave.source_id) == []
    Wave.objects.filter(pk=wave.pk).update(state=WaveState.RUNNING)
    assert ledger.running_waves(wave.source_id) == [wave.pk]
