"""The forecast and the cost against worked examples computed by hand.

History (one host, h1), MB = 10^6 bytes:

    A 00:00:00–00:00:10  40 MB      B 00:00:00–00:00:10  40 MB
    C 00:00:10–00:00:20  60 MB      D 00:00:10–00:00:20  60 MB

    busy 20 s, 200 MB → 10 MB/s; peak in flight 2 → 5 MB/s per slot; 1 host → 10 MB/s
    per host; per association 200 MB / (4 × 10 s) = 5 MB/s.
    Two runs (A,B) 80 MB/10 s = 8 MB/s and (C,D) 120 MB/10 s = 12 MB/s: median 10,
    p10 = 8 + 0.1 × 4 = 8.4 → low 0.84; p90 = 11.6 → high 1.16.

Forecast from Monday 1 March 2027 00:00, PACS limit 2 slots, 1 host:
    capacity = min(2 × 5, 1 × 10, link) MB/s.
    Link 100 Mbps = 12.5 MB/s → 10 MB/s. A wave of 36,000 MB takes 3,600 s: 01:00.
        p10 at 11.6 MB/s (still under the link): 3,103.45 s → 00:51:43.4
        p90 at 8.4 MB/s: 4,285.71 s → 01:11:25.7
    Link 40 Mbps = 5 MB/s: 7,200 s → 02:00, and the band closes (even 8.4 MB/s > 5).
    Two hours a day (20:00–22:00), 108,000 MB at 10 MB/s = 3 window hours:
        Mon 20–22 moves 72,000 MB, Tue 20:00–21:00 the rest → Tue 2 March 21:00.
    Growth of 8,640 MB/day = 0.1 MB/s: 36,000 MB at 10 − 0.1 MB/s = 3,636.36 s.

Needs, target Thursday 11 March 2027 (10 days, 2 window hours a day = 20 h):
    2,160,000 MB / 72,000 s = 30 MB/s → 240 Mbps, 3 hosts (10 MB/s each), 6 slots (5 each).

Shipping 108,000 MB on 50 GB devices: 3 devices; copied by Tue 21:00 (the engine's
rate in the window, no link), + 7 days' turnaround → Tue 9 March 21:00; 3 × $300.

Cost (storage 0.02 STANDARD, 0.01 STANDARD_IA per GiB-month; PUT 0.005, GET 0.0004 and
0.001 IA, transition to IA 0.01 per 1,000; IA retrieval 0.01 and egress 0.09 per GiB):
100 GiB stored already, 1,500 GiB moved evenly 1–31 March (50 GiB a day), objects of
1 MiB (1,024 per GiB), lifecycle to IA after 30 days, viewers read 1% a month, all egress.

    March (closing 1 April): stored 1,600; cold = stored by 2 March = 150 GiB.
      standard 1,450 × 0.02 = 29.00; cold 150 × 0.01 = 1.50
      PUT 1,500 × 1,024 / 1,000 × 0.005 = 7.68; transition 150 × 1.024 × 0.01 = 1.536
      reads 16 GiB (16,384 objects), cold share 150/1,600 = 0.09375:
        GET 16.384 × 0.90625 × 0.0004 + 16.384 × 0.09375 × 0.001 = 0.0074752
        retrieval 16 × 0.09375 × 0.01 = 0.015; egress 16 × 0.09 = 1.44
      total 41.1784752
    April (closing 1 May): all 1,600 cold (stored by 1 April).
      cold 16.00; transition 1,450 × 1.024 × 0.01 = 14.848; GET 16.384 × 0.001 = 0.016384
      retrieval 0.16; egress 1.44; total 32.464384
"""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from migration import forecast as fc

T0 = datetime(2027, 3, 1, tzinfo=UTC)
H0 = datetime(2027, 1, 4, tzinfo=UTC)
GIB = 2**30
PRICES = {
    "storage_gb_month": {"STANDARD": 0.02, "STANDARD_IA": 0.01},
    "put_per_1000": {"STANDARD": 0.005},
    "get_per_1000": {"STANDARD": 0.0004, "STANDARD_IA": 0.001},
    "transition_per_1000": {"STANDARD_IA": 0.01},
    "retrieval_gb": {"STANDARD": 0.0, "STANDARD_IA": 0.01},
    "egress_gb": 0.09,
    "device_job": 300.0,
}


def at(seconds):
    return H0 + timedelta(seconds=seconds)


HISTORY = [
    fc.Study(at(0), at(10), 40_000_000, "h1"),
    fc.Study(at(0), at(10), 40_000_000, "h1"),
    fc.Study(at(10), at(20), 60_000_000, "h1"),
    fc.Study(at(10), at(20), 60_000_000, "h1"),
]


@pytest.fixture
def measured():
    return fc.measure(HISTORY, chunks=2)


def plan(mbps=100, **fields):
    return fc.Plan(link=fc.Link(mbps), hosts=1, slots_limit=2, **fields)


def test_throughput_per_slot_host_and_association_with_its_spread(measured):
    assert (measured.mb_s, measured.per_slot, measured.per_host) == (10, 5, 10)
    assert measured.per_association == 5
    assert (measured.slots, measured.hosts, measured.busy_seconds) == (2, 1, 20)
    assert measured.low == pytest.approx(0.84) and measured.high == pytest.approx(1.16)


def test_the_rate_is_the_recent_halfs_once_there_is_enough_history():
    """Ten studies one after another: the first five of 10 MB in 10 s each (1 MB/s, the
    engine warming up), the last five of 10 MB in 5 s each (2 MB/s): the rate is 2 MB/s,
    the spread still spans both (two runs: 1 and 2 MB/s, median 1.5)."""
    slow = [fc.Study(at(10 * n), at(10 * n + 10), 10_000_000) for n in range(5)]
    fast = [fc.Study(at(50 + 5 * n), at(55 + 5 * n), 10_000_000) for n in range(5)]

    measured = fc.measure(slow + fast, chunks=2)

    assert measured.mb_s == 2 and measured.busy_seconds == 25
    assert measured.low == pytest.approx(1.1 / 1.5) and measured.high == pytest.approx(1.9 / 1.5)


def test_busy_time_bridges_short_gaps_but_not_long_ones():
    studies = [
        fc.Study(at(0), at(10), 1),
        fc.Study(at(40), at(50), 1),
        fc.Study(at(200), at(210), 1),
    ]
    assert fc.busy_seconds(studies) == 50 + 10


def test_a_wave_finishes_when_its_bytes_have_moved_with_a_band_from_the_spread(measured):
    outcome = fc.forecast([fc.Wave("ct", 36_000e6, plan())], measured, T0)

    assert outcome.finish == T0 + timedelta(hours=1)
    assert (outcome.finish_p10 - T0).total_seconds() == pytest.approx(36_000 / 11.6)
    assert (outcome.finish_p90 - T0).total_seconds() == pytest.approx(36_000 / 8.4)


def test_a_slow_link_bounds_the_finish_and_closes_the_band(measured):
    outcome = fc.forecast([fc.Wave("ct", 36_000e6, plan(mbps=40))], measured, T0)

    assert outcome.finish == outcome.finish_p10 == outcome.finish_p90 == T0 + timedelta(hours=2)


def test_a_link_busy_by_day_pauses_the_migration_between_8_and_18(measured):
    """From 07:30 at 10 MB/s: 18,000 MB by 08:00, nothing until 18:00, the other 18,000
    MB by 18:30."""
    by_day = fc.Link(100, by_hour=(1,) * 8 + (0,) * 10 + (1,) * 6)
    start = T0 + timedelta(hours=7, minutes=30)

    outcome = fc.forecast([fc.Wave("ct", 36_000e6, replace(plan(), link=by_day))], measured, start)

    assert outcome.finish == T0 + timedelta(hours=18, minutes=30)


def test_a_two_hour_nightly_window_spreads_the_wave_over_two_evenings(measured):
    outcome = fc.forecast([fc.Wave("ct", 108_000e6, plan(hours_per_day=2))], measured, T0)

    assert outcome.finish == datetime(2027, 3, 2, 21, tzinfo=UTC)


def test_waves_run_one_after_another_in_the_order_given(measured):
    waves = [fc.Wave("ct", 36_000e6, plan()), fc.Wave("mr", 18_000e6, plan())]

    outcome = fc.forecast(waves, measured, T0)

    assert [row["finish"] for row in outcome.waves] == [
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=1, minutes=30),
    ]
    assert outcome.finish == T0 + timedelta(hours=1, minutes=30)


def test_growth_during_the_migration_is_migrated_too(measured):
    outcome = fc.forecast([fc.Wave("ct", 36_000e6, plan())], measured, T0, 8_640e6)

    assert (outcome.finish - T0).total_seconds() == pytest.approx(36_000 / 9.9)


def test_the_link_hosts_and_slots_needed_to_finish_by_a_target_date(measured):
    need = fc.needed(2_160_000e6, plan(hours_per_day=2), measured, T0, date(2027, 3, 11))

    assert need["window_hours"] == 20
    assert need["required_mbps"] == pytest.approx(240)
    assert (need["hosts_needed"], need["slots_needed"]) == (3, 6)


def test_shipping_devices_copy_at_the_engines_rate_then_travel(measured):
    waves = [fc.Wave("ct", 108_000e6, plan(mbps=1, hours_per_day=2))]

    result = fc.shipping(waves, measured, T0, device_tb=0.05, turnaround_days=7, prices=PRICES)

    assert result == {
        "devices": 3,
        "finish": datetime(2027, 3, 9, 21, tzinfo=UTC),
        "cost": 900.0,
    }


def test_monthly_cost_by_storage_class_after_lifecycle_requests_retrieval_and_egress():
    series = [(T0, 0.0), (datetime(2027, 3, 31, tzinfo=UTC), 1500 * GIB)]
    storage = fc.Storage(stored_bytes=100 * GIB, bytes_per_object=2**20, transition_days=30,
                         reads_per_month=0.01)  # fmt: skip

    rows = fc.monthly_costs(series, storage, PRICES, series[-1][0], T0, months_after=1)

    assert [r["month"] for r in rows] == ["2027-03", "2027-04"]
    march, april = rows
    assert march["storage_standard"] == pytest.approx(29.0)
    assert march["storage_cold"] == pytest.approx(1.5)
    assert march["requests"] == pytest.approx(7.68 + 1.536 + 0.0074752)
    assert (march["retrieval"], march["egress"]) == (pytest.approx(0.015), pytest.approx(1.44))
    assert march["total"] == pytest.approx(41.1784752)
    assert april["storage_standard"] == pytest.approx(0)
    assert april["storage_cold"] == pytest.approx(16.0)
    assert april["total"] == pytest.approx(32.464384)


def test_without_history_there_is_no_finish_date_rather_than_a_guess():
    outcome = fc.forecast([fc.Wave("ct", 1e9, plan())], fc.measure([]), T0)

    assert (outcome.finish, outcome.finish_p10, outcome.finish_p90) == (None, None, None)
