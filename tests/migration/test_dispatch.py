"""Who runs what: streams per PACS never outnumber its limit, a paused hour or the global
pause starts nothing, and finished waves close themselves."""

import pytest
from kombu import Connection

from inventory.models import PacsSource, Study
from migration import actions, dispatch, throttle
from migration.models import Destination, EngineControl, StudyState, Wave, WaveState, WaveStudy

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiet_queue(settings, engine_settings):
    """A queue no worker reads, emptied afterwards."""
    settings.MIGRATION_QUEUE = f"{engine_settings['MIGRATION_QUEUE']}-quiet"
    yield settings.MIGRATION_QUEUE
    with Connection(settings.CELERY_BROKER_URL) as connection:
        connection.default_channel.queue_purge(settings.MIGRATION_QUEUE)


def running(studies=4, max_associations=3, schedule=None):
    source = PacsSource.objects.create(
        name="p", ae_title="P", host="127.0.0.1", port=104, max_associations=max_associations
    )
    destination = Destination.objects.create(name="d", kind="filesystem", path="/tmp")
    wave = Wave.objects.create(
        name="w", source=source, destination=destination, state=WaveState.RUNNING,
        schedule=schedule or [],
    )  # fmt: skip
    for n in range(studies):
        WaveStudy.objects.create(
            wave=wave, study=Study.objects.create(source=source, study_uid=f"1.{n}")
        )
    return wave


def test_dispatch_starts_as_many_streams_as_the_pacs_allows_and_no_more(quiet_queue):
    wave = running(max_associations=3)
    assert dispatch.dispatch(wave.source) == 3
    assert dispatch.dispatch(wave.source) == 0  # three are waiting in the queue already
    assert dispatch.Pending(wave.source_id).count() == 3


def test_a_paused_hour_starts_nothing(quiet_queue):
    wave = running(schedule=throttle.parse_schedule("* *=0"))
    assert dispatch.dispatch(wave.source) == 0
    assert dispatch.migrate_next(wave.source) == "paused"
    assert wave.ledger.filter(state=StudyState.QUEUED).count() == 4


def test_the_global_pause_starts_nothing_until_resumed(quiet_queue):
    wave = running()
    actions.set_paused(True, reason="PACS maintenance")
    assert EngineControl.get().paused
    assert dispatch.dispatch(wave.source) == 0
    assert dispatch.migrate_next(wave.source) == "paused"
    actions.set_paused(False)
    assert dispatch.dispatch(wave.source) == 3


def test_a_wave_whose_studies_are_all_finished_closes_itself(quiet_queue):
    wave = running(studies=2)
    wave.ledger.update(state=StudyState.DONE)
    WaveStudy.objects.filter(pk=wave.ledger.first().pk).update(state=StudyState.QUARANTINED)
    assert dispatch.migrate_next(wave.source) == "idle"
    wave.refresh_from_db()
    assert wave.state == WaveState.DONE and wave.finished_at is not None


def test_cancelling_a_wave_cancels_its_waiting_studies(quiet_queue):
    wave = running(studies=3)
    actions.change_wave(wave, "cancel")
    assert set(wave.ledger.values_list("state", flat=True)) == {StudyState.CANCELLED}
    with pytest.raises(actions.ActionError, match="cannot resume wave w: it is cancelled"):
        actions.change_wave(wave, "resume")
