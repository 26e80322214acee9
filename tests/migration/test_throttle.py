"""Protecting the PACS: leased association slots in Redis, weekly schedules, AIMD."""

import time
from datetime import datetime

import pytest
from django.utils import timezone

from inventory.models import PacsSource
from migration import throttle
from migration.throttle import Aimd, ScheduleError


def test_slots_never_exceed_the_limit_and_a_released_slot_is_free_again():
    slots = throttle.Slots("s-limit", lease=30)
    first, second = slots.acquire(2), slots.acquire(2)
    assert first and second and first != second
    assert slots.acquire(2) is None
    assert slots.in_use() == 2
    slots.release(first)
    assert slots.acquire(2) is not None


def test_a_c_move_study_holds_two_of_the_pacs_associations_so_a_crawl_never_exceeds_it():
    slots = throttle.Slots("s-weight", lease=0.5)
    moving = slots.acquire(3, weight=2)  # the C-MOVE and the PACS's C-STORE back to us
    assert moving and slots.in_use() == 2
    assert slots.acquire(3, weight=2) is None, "a second C-MOVE would make 4 of 3"
    crawl = slots.acquire(3)
    assert crawl and slots.acquire(3) is None
    assert slots.renew(moving) and slots.in_use() == 3
    time.sleep(0.6)
    assert not slots.renew(moving) and slots.in_use() == 0  # both expired together
    slots.release(crawl)


def test_the_aimd_limit_never_leaves_a_c_move_source_less_than_one_study(db):
    source = PacsSource.objects.create(
        name="aimd-move", ae_title="PACS", host="127.0.0.1", port=104, max_associations=8,
        retrieve_method="move", move_destination="CC",
    )  # fmt: skip
    throttle.client().hset(throttle.key("aimd", source.pk), mapping={"limit": 1.0})
    assert throttle.pacs_limit(source, [None]) == 2
    source.retrieve_method = "get"
    assert throttle.pacs_limit(source, [None]) == 1


def test_a_slot_whose_holder_stopped_renewing_expires_so_nothing_leaks():
    dead = throttle.Slots("s-lease", lease=0.2)
    token = dead.acquire(1)
    assert throttle.Slots("s-lease", lease=30).acquire(1) is None
    time.sleep(0.3)
    assert not dead.renew(token)
    assert throttle.Slots("s-lease", lease=30).acquire(1) is not None


def test_a_held_slot_is_kept_by_renewing_it():
    slots = throttle.Slots("s-renew", lease=0.5)
    token = slots.acquire(1)
    assert slots.renew(token)
    assert slots.in_use() == 1


def test_a_schedule_reads_days_hours_and_limits_and_later_lines_win():
    table = throttle.parse_schedule("* *=4\nmon-fri 7-19=1; sat,sun 0-6=pacs\nwed 12=0")
    assert table[0][6] == 4 and table[0][7] == 1 and table[0][18] == 1 and table[0][19] == 4
    assert table[2][12] == 0
    assert table[5][3] is None and table[6][6] == 4
    assert throttle.parse_schedule(throttle.format_schedule(table)) == table


@pytest.mark.parametrize(
    "spec, message",
    [
        ("mon-fri", "cannot read"),
        ("funday 1-2=3", "unknown day"),
        ("mon 25=1", "not between"),
        ("mon 9-7=1", "empty or runs backwards"),
    ],
)
def test_a_bad_schedule_is_rejected_with_the_reason(spec, message):
    with pytest.raises(ScheduleError, match=message):
        throttle.parse_schedule(spec)


def test_the_scheduled_limit_follows_local_time():
    table = throttle.parse_schedule("mon 7-19=1")
    monday_noon = timezone.make_aware(datetime(2024, 1, 1, 12, 0))
    monday_night = timezone.make_aware(datetime(2024, 1, 1, 22, 0))
    assert throttle.scheduled_limit(table, monday_noon) == 1
    assert throttle.scheduled_limit(table, monday_night) is None
    assert throttle.scheduled_limit([], monday_noon) is None


def test_aimd_halves_the_limit_when_latency_rises_and_recovers_slowly():
    state = Aimd(limit=8)
    state = throttle.aimd_step(state, 3000, bound_ms=500, ceiling=8, now=100)
    assert state.limit == 4
    state = throttle.aimd_step(state, 3000, bound_ms=500, ceiling=8, now=101)
    assert state.limit == 4  # at most one decrease per cooldown
    state = throttle.aimd_step(state, 3000, bound_ms=500, ceiling=8, now=106)
    assert state.limit == 2
    limits = []
    for second in range(200, 260):
        state = throttle.aimd_step(state, 10, bound_ms=500, ceiling=8, now=second)
        limits.append(state.limit)
    assert min(limits) >= 1
    recovering = limits[limits.index(min(limits)) :]
    assert recovering == sorted(recovering)  # only up once latency is low again
    assert recovering[1] - recovering[0] <= 0.25  # slowly
    assert limits[-1] == 8


@pytest.mark.django_db
def test_the_pacs_limit_is_the_smallest_of_its_cap_the_aimd_limit_and_the_schedule():
    source = PacsSource.objects.create(
        name="capped", ae_title="P", host="127.0.0.1", port=104, max_associations=4
    )
    assert throttle.pacs_limit(source, [None]) == 4
    assert throttle.pacs_limit(source, [2, 1]) == 2
    assert throttle.pacs_limit(source, [0]) == 0
    assert throttle.pacs_limit(source, []) == 0
    for _ in range(3):
        throttle.record_latency(source.pk, 10_000, ceiling=4, bound_ms=100)
    assert throttle.pacs_limit(source, [None]) == 2
    status = throttle.status(source)
    assert status["latency_ms"] > 100 and status["associations"] == 0
