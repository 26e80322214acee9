"""SLA clocks: per-priority deadlines, paused while Waiting, colour bands, breaches."""

from datetime import timedelta

import pytest

from desk import sla, tickets, triage
from desk.models import SlaTarget, Ticket
from tests.desk.ticketing import T0, minutes, open_ticket


def test_deadlines_follow_the_priority_targets(db):
    p1 = open_ticket(impact="high", urgency="high")
    assert p1.ack_due == T0 + timedelta(minutes=15)
    assert p1.resolve_due == T0 + timedelta(hours=4)
    p4 = open_ticket(impact="low", urgency="low")
    assert p4.resolve_due == T0 + timedelta(days=5)


def test_targets_are_configurable(db):
    SlaTarget.objects.filter(priority="P1").update(acknowledge_minutes=5)
    assert open_ticket(impact="high", urgency="high").ack_due == minutes(5)


@pytest.mark.parametrize(
    "remaining,band",
    [
        (7200, "ok"),
        (3601, "ok"),
        (3600, "warn"),
        (1801, "warn"),
        (1800, "critical"),
        (1, "critical"),
        (0, "critical"),
        (-1, "breached"),
        (-7200, "breached"),
    ],
)
def test_colour_bands_by_remaining_time(remaining, band):
    assert sla.band(remaining) == band


def test_the_clock_counts_down_and_goes_negative_when_breached(db):
    ticket = open_ticket(impact="high", urgency="high")  # acknowledge within 15 min
    assert sla.clock(ticket, minutes(1))["band"] == "critical"
    late = sla.clock(ticket, minutes(20))
    assert late["breached"] and late["remaining"] == -300
    assert sla.format_remaining(late["remaining"]) == "-0:05:00"


def test_waiting_pauses_both_clocks_and_resuming_moves_the_deadlines(cast):
    ticket = open_ticket(impact="high", urgency="high")  # resolve within 4 h
    ticket = tickets.transition(ticket, "acknowledged", cast.staff, now=minutes(10))
    ticket = tickets.transition(ticket, "waiting", cast.staff, now=minutes(60))
    frozen = sla.clock(ticket, minutes(60))["remaining"]
    assert sla.clock(ticket, minutes(300))["remaining"] == frozen == 180 * 60
    assert sla.clock(ticket, minutes(300))["paused"]
    assert not sla.is_breached(ticket, minutes(300))
    ticket = tickets.transition(ticket, "in_progress", cast.staff, now=minutes(180))
    assert ticket.paused_seconds == 120 * 60
    assert ticket.resolve_due == T0 + timedelta(hours=4, minutes=120)
    assert sla.clock(ticket, minutes(180))["remaining"] == frozen


def test_a_breach_is_found_by_the_board_query_and_by_the_clock_alike(cast):
    on_time = open_ticket(impact="high", urgency="high")
    tickets.transition(on_time, "acknowledged", cast.staff, now=minutes(5))
    open_ticket(impact="high", urgency="high")  # never acknowledged
    waiting = open_ticket(impact="high", urgency="high")
    tickets.transition(waiting, "acknowledged", cast.staff, now=minutes(1))
    tickets.transition(waiting, "waiting", cast.staff, now=minutes(2))
    now = minutes(30)
    by_query = set(Ticket.objects.filter(triage.breached_q(now)).values_list("title", "pk"))
    by_clock = {(t.title, t.pk) for t in Ticket.objects.all() if sla.is_breached(t, now)}
    assert by_query == by_clock and len(by_query) == 1
    assert triage.board_counts(now)["breached"] == 1


def test_acknowledging_late_stays_a_breach(cast):
    ticket = open_ticket(impact="high", urgency="high")
    ticket = tickets.transition(ticket, "acknowledged", cast.staff, now=minutes(40))
    assert sla.is_breached(ticket, minutes(41))
    assert Ticket.objects.filter(triage.breached_q(minutes(41))).count() == 1


def test_breaches_are_listed_per_team(cast):
    open_ticket("Worklist empty", impact="high", urgency="high", category="integration")
    open_ticket("Priors missing", impact="high", urgency="high", category="missing_images")
    open_ticket("Fine", impact="low", urgency="low", category="viewer")
    teams = triage.breached_by_team(minutes(30))
    assert [(t["team"], [x.title for x in t["tickets"]]) for t in teams] == [
        ("migration", ["Priors missing"]),
        ("integration", ["Worklist empty"]),
    ]
