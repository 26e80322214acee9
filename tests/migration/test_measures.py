"""The engine's measures for the command center's monitoring board: throughput, PACS
associations and destination latency and errors, read from the engine's own counters."""

import time

import pytest
from django.utils import timezone

from desk import monitoring
from desk.models import MetricSample
from inventory.models import PacsSource
from migration import actions, measures, rates, throttle
from migration.models import Destination

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def source():
    return PacsSource.objects.create(
        name="legacy", ae_title="PACS", host="127.0.0.1", port=104, max_associations=3
    )


@pytest.fixture
def destination(tmp_path):
    return Destination.objects.create(name="cloud", kind="filesystem", path=str(tmp_path))


def test_transfer_totals_add_up_what_the_engine_stored_and_give_recent_rates(destination):
    meter = rates.Meter(wave_id=7, destination_id=destination.pk)
    meter.add(3, 3_000_000, upload_ms=10.0)
    meter.add(2, 2_000_000, upload_ms=20.0)
    meter.flush()
    other_wave = rates.Meter(wave_id=8)
    other_wave.add(1, 1_000_000)
    other_wave.flush()

    totals = measures.transfer_totals()

    assert (totals["instances"], totals["bytes"]) == (6, 6_000_000)
    assert totals["now"] == {"instances_s": 0.1, "mb_s": 0.1}  # 6 in the last minute
    assert round(sum(inst_s for _minute, inst_s, _mb_s in totals["per_minute"]) * 60) == 6
    assert totals["per_minute"][-1][0] == int(time.time()) // 60 * 60
    assert totals["hour"] == {"instances_s": 0.0, "mb_s": 0.002}  # 6 MB in an hour


def test_associations_in_use_count_the_slots_held_on_each_pacs_a_wave_migrates_from(
    source, destination
):
    PacsSource.objects.create(name="idle", ae_title="IDLE", host="127.0.0.1", port=105)
    actions.create_wave(name="w1", source=source, destination=destination)
    slots = throttle.Slots(source.pk)
    assert slots.acquire(3) and slots.acquire(3)

    assert measures.associations_in_use() == {"legacy": 2}
    assert measures.pacs_throttle()["legacy"] == {"in_use": 2, "limit": 3, "latency_ms": None}
    throttle.record_latency(source.pk, 5000.0, 3, bound_ms=100.0)
    assert measures.pacs_throttle()["legacy"] == {"in_use": 2, "limit": 1, "latency_ms": 5000.0}


def test_destination_stats_give_upload_latency_errors_of_the_hour_and_the_last_check(
    destination,
):
    meter = rates.Meter(wave_id=1, destination_id=destination.pk)
    for upload_ms in (10.0, 30.0):
        meter.add(1, 1000, upload_ms=upload_ms)
    meter.flush()
    rates.record_destination_error(destination.pk)
    rates.record_destination_error(destination.pk)
    checked = timezone.now()
    Destination.objects.filter(pk=destination.pk).update(
        last_check_at=checked, last_check_ok=True, last_check_ms=12.5
    )

    (row,) = measures.destination_stats()

    assert row["name"] == "cloud" and row["kind"] == "filesystem"
    assert (row["latency_ms"], row["uploads"], row["errors"]) == (20.0, 2, 2)
    assert row["last_check_at"] == checked.isoformat() and row["last_check_ok"] is True
    assert measures.destination_stats(now=time.time() + 2 * 3600)[0]["errors"] == 0


def test_the_monitoring_sample_keeps_the_engine_measures_and_the_board_shows_them(
    source, destination, cast, client_for
):
    actions.create_wave(name="w1", source=source, destination=destination)
    throttle.Slots(source.pk).acquire(3)
    meter = rates.Meter(wave_id=1, destination_id=destination.pk)
    meter.add(4, 4_000_000, upload_ms=42.0)
    meter.flush()
    MetricSample.objects.create(
        at=timezone.now() - timezone.timedelta(minutes=1),
        transfer={"instances": 0, "bytes": 0},
    )

    row = monitoring.sample()

    assert {p["name"]: p["associations"] for p in row.pacs} == {"legacy": 1}
    assert row.destinations[0]["latency_ms"] == 42.0
    assert row.transfer["instances"] == 4 and row.instances_per_s > 0
    page = client_for(cast.engineer).get("/command-center/monitoring/").content.decode()
    assert "PACS associations in use, latest: legacy: 1" in page
    assert "Destination latency, latest: cloud: 42 ms" in page
