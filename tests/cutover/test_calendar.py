"""The working-day calendar: weekends and holidays skipped, indices both ways."""

from datetime import date

import pytest

from cutover.calendar import WorkCalendar

HOLIDAY = date(2026, 3, 13)  # a Friday


@pytest.fixture
def calendar():
    return WorkCalendar(date(2026, 3, 2), holidays=[HOLIDAY])


def test_index_zero_is_the_first_working_day_on_or_after_the_origin():
    assert WorkCalendar(date(2026, 2, 28)).day(0) == date(2026, 3, 2)  # Saturday -> Monday


def test_days_skip_weekends_and_holidays(calendar):
    assert calendar.day(4) == date(2026, 3, 6)  # Friday
    assert calendar.day(5) == date(2026, 3, 9)  # next Monday
    assert calendar.day(8) == date(2026, 3, 12)  # Thursday
    assert calendar.day(9) == date(2026, 3, 16)  # Friday is a holiday, so Monday


def test_negative_indices_run_backwards_over_the_weekend(calendar):
    assert calendar.day(-1) == date(2026, 2, 27)
    assert calendar.day(-5) == date(2026, 2, 23)


def test_index_and_day_are_inverse(calendar):
    for i in range(-30, 60):
        assert calendar.index(calendar.day(i)) == i


def test_a_non_working_day_rounds_forward_or_backward(calendar):
    assert calendar.index(HOLIDAY) == 9
    assert calendar.index(HOLIDAY, forward=False) == 8
    assert calendar.index(date(2026, 3, 1)) == 0
    assert calendar.index(date(2026, 3, 1), forward=False) == -1


def test_add_and_between_count_working_days(calendar):
    assert calendar.add(date(2026, 3, 11), 2) == date(2026, 3, 16)
    assert calendar.between(date(2026, 3, 11), date(2026, 3, 16)) == 2
    assert calendar.between(date(2026, 3, 16), date(2026, 3, 11)) == -2


def test_a_calendar_without_working_days_is_refused():
    with pytest.raises(ValueError, match="working weekday"):
        WorkCalendar(date(2026, 3, 2), weekend=range(7))
