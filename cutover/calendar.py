"""A working-day calendar: weekdays minus holidays, counted as integer day indices.

Scheduling works on indices (index 0 is the first working day on or after the calendar's
origin, negative indices run backwards from it), so "N working days" is plain integer
arithmetic and the calendar only translates at the edges.
"""

from bisect import bisect_left
from datetime import date, timedelta

WEEKEND = frozenset({5, 6})  # Saturday, Sunday
ONE_DAY = timedelta(days=1)


class WorkCalendar:
    def __init__(self, origin: date, holidays=(), weekend=WEEKEND):
        self.weekend = frozenset(weekend)
        if len(self.weekend) >= 7:
            raise ValueError("a calendar needs at least one working weekday")
        self.holidays = frozenset(holidays)
        self.origin = self.next_working(origin)
        self._forward = [self.origin]  # index i >= 0
        self._backward = []  # index -(i + 1), dates descending

    def is_working(self, day: date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays

    def next_working(self, day: date) -> date:
        """`day` itself when it is a working day, else the next one."""
        while not self.is_working(day):
            day += ONE_DAY
        return day

    def previous_working(self, day: date) -> date:
        while not self.is_working(day):
            day -= ONE_DAY
        return day

    def day(self, index: int) -> date:
        """The date of working day number `index`."""
        if index >= 0:
            while len(self._forward) <= index:
                self._forward.append(self.next_working(self._forward[-1] + ONE_DAY))
            return self._forward[index]
        while len(self._backward) < -index:
            last = self._backward[-1] if self._backward else self.origin
            self._backward.append(self.previous_working(last - ONE_DAY))
        return self._backward[-index - 1]

    def index(self, day: date, forward: bool = True) -> int:
        """Index of `day`; a non-working day counts as the next working day (or, with
        forward=False, the previous one)."""
        day = self.next_working(day) if forward else self.previous_working(day)
        if day >= self.origin:
            while self._forward[-1] < day:
                self.day(len(self._forward))
            return bisect_left(self._forward, day)
        while not self._backward or self._backward[-1] > day:
            self.day(-len(self._backward) - 1)
        ascending = self._backward[::-1]  # ascending[k] is index -(len - k)
        return -(len(ascending) - bisect_left(ascending, day))

    def add(self, day: date, working_days: int) -> date:
        """The working day `working_days` after `day` (before, when negative)."""
        return self.day(self.index(day) + working_days)

    def between(self, start: date, end: date) -> int:
        """Working days from `start` to `end` (negative when `end` is earlier)."""
        return self.index(end) - self.index(start)
