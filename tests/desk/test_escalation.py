"""Escalation: ordered steps after N minutes, repeated up to K times, recorded on the
ticket, notified live and by e-mail. The clock is an argument: no test sleeps."""

from datetime import timedelta

import pytest

from core import events
from desk import escalation, tickets
from desk.models import EscalationPolicy, EscalationStep, Notification, Rotation
from desk.roster import add_member
from tests.desk.ticketing import T0, minutes, open_ticket


@pytest.fixture
def rotation(cast):
    night = Rotation.objects.create(
        name="Primary", role_label="Primary on call", starts_at=T0 - timedelta(hours=1)
    )
    add_member(night, cast.staff, contact="+41 79 000 00 01")
    return night


@pytest.fixture
def p1_policy(cast, rotation):
    """The seeded P1 policy, made explicit: lead after 5 min unacknowledged (repeated twice,
    every 15 min), the on-call after 30 min unresolved."""
    policy, _ = EscalationPolicy.objects.get_or_create(priority="P1", defaults={"name": "P1"})
    policy.repeat_times, policy.repeat_after_minutes, policy.active = 2, 15, True
    policy.save()
    policy.steps.all().delete()
    policy.steps.create(
        order=1, after_minutes=5, condition="unacknowledged", target="person", person=cast.lead
    )
    policy.steps.create(
        order=2, after_minutes=30, condition="unresolved", target="on_call", rotation=rotation
    )
    return policy


def p1():
    return open_ticket("PACS down for ED", impact="high", urgency="high")


def fired(ticket):
    return [(e.step.order, e.cycle) for e in ticket.escalation_log.select_related("step")]


def test_nothing_fires_before_the_first_step_is_due(p1_policy):
    p1()
    assert escalation.run(minutes(4)) == []


def test_an_unacknowledged_p1_escalates_to_the_lead_and_records_it(
    cast, p1_policy, mailoutbox, django_capture_on_commit_callbacks
):
    ticket = p1()
    pushed = []
    listener = events.subscribe_local(lambda topic, message: pushed.append((topic, message)))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            escalation.run(minutes(5))
    finally:
        events._listeners.remove(listener)
    ticket.refresh_from_db()
    assert fired(ticket) == [(1, 0)] and ticket.escalations == 1
    assert ticket.history.get(kind="escalated").note.endswith("notified lead")
    note = Notification.objects.get(user=cast.lead)
    assert "PACS down for ED" in note.text and note.read_at is None
    assert [m.to for m in mailoutbox] == [["lead@hospital.test"]]
    toast = [m for t, m in pushed if t == f"user.{cast.lead.pk}"]
    assert toast[0]["data"]["unread"] == 1 and "PACS down for ED" in toast[0]["html"]
    assert any(t == "board" and m["data"]["id"] == ticket.pk for t, m in pushed)


def test_a_p1_nobody_acknowledges_re_escalates_up_to_k_times(p1_policy):
    ticket = p1()
    for at in (5, 6, 19, 20, 21, 35, 50, 65, 80):
        escalation.run(minutes(at))
    assert [f for f in fired(ticket) if f[0] == 1] == [(1, 0), (1, 1), (1, 2)]


def test_acknowledging_stops_the_unacknowledged_step(cast, p1_policy):
    ticket = p1()
    escalation.run(minutes(5))
    tickets.transition(ticket, "acknowledged", cast.staff, now=minutes(8))
    escalation.run(minutes(20))
    escalation.run(minutes(35))
    assert fired(ticket) == [(1, 0), (2, 0)]


def test_the_unresolved_step_notifies_whoever_is_on_call(cast, p1_policy):
    ticket = p1()
    tickets.transition(ticket, "in_progress", cast.staff, now=minutes(1))
    [done] = escalation.run(minutes(30))
    assert done.notified == ["staff"]
    assert Notification.objects.filter(user=cast.staff, ticket=ticket).count() == 1


def test_catching_up_after_downtime_fires_each_step_once_not_in_a_burst(p1_policy):
    ticket = p1()
    escalation.run(minutes(40))
    assert sorted(fired(ticket)) == [(1, 2), (2, 0)]
    assert escalation.run(minutes(41)) == []


def test_time_waiting_does_not_count_towards_escalation(cast, p1_policy):
    ticket = p1()
    tickets.transition(ticket, "acknowledged", cast.staff, now=minutes(1))
    tickets.transition(ticket, "waiting", cast.staff, now=minutes(10))
    assert escalation.run(minutes(100)) == []
    tickets.transition(ticket, "in_progress", cast.staff, now=minutes(100))
    assert escalation.run(minutes(119)) == []
    assert [e.step.order for e in escalation.run(minutes(121))] == [2]


def test_with_nobody_on_call_the_leads_are_notified(cast, p1_policy, rotation):
    rotation.members.all().delete()
    ticket = p1()
    tickets.transition(ticket, "in_progress", cast.staff, now=minutes(1))
    [done] = escalation.run(minutes(30))
    assert done.notified == ["lead"]


def test_resolved_tickets_and_inactive_policies_do_not_escalate(cast, p1_policy):
    ticket = p1()
    tickets.transition(ticket, "resolved", cast.staff, now=minutes(2))
    assert escalation.run(minutes(60)) == []
    p1_policy.active = False
    p1_policy.save()
    p1()
    assert escalation.run(minutes(60)) == []


def test_a_step_can_only_fire_once_even_if_two_beats_race(p1_policy):
    ticket = p1()
    step = EscalationStep.objects.get(policy=p1_policy, order=1)
    assert escalation.fire(ticket, step, 0, minutes(5)) is not None
    assert escalation.fire(ticket, step, 0, minutes(5)) is None
    assert fired(ticket) == [(1, 0)]
