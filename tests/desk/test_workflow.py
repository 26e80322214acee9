"""The status workflow: every allowed move works, every other one is refused and changes
nothing; a move the workflow allows may still need a role."""

import itertools

import pytest

from desk import tickets, workflow
from desk.models import Ticket, Transition
from tests.desk.ticketing import minutes, open_ticket

PAIRS = [(a, b) for a, b in itertools.permutations(workflow.STATUSES, 2)]


def _ticket_in(status):
    ticket = open_ticket()
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    ticket.refresh_from_db()
    return ticket


@pytest.mark.parametrize("source,target", PAIRS)
def test_every_transition_is_allowed_or_refused_as_the_table_says(cast, source, target):
    ticket = _ticket_in(source)
    allowed = (source, target) in workflow.DEFAULT_TRANSITIONS
    if allowed:
        moved = tickets.transition(ticket, target, cast.lead, now=minutes(5))
        assert moved.status == target
        change = moved.history.get(kind="status")
        assert (change.before, change.after) == (
            workflow.STATUSES[source],
            workflow.STATUSES[target],
        )
    else:
        with pytest.raises(workflow.TransitionRefused, match="cannot go from"):
            tickets.transition(ticket, target, cast.lead)
        ticket.refresh_from_db()
        assert ticket.status == source
        assert not ticket.history.filter(kind="status").exists()


def test_the_table_starts_as_the_defaults_and_a_row_can_forbid_a_move(cast):
    Transition.objects.all().delete()
    assert workflow.transitions() == workflow.DEFAULT_TRANSITIONS
    Transition.objects.create(source="new", target="resolved", allowed=False)
    with pytest.raises(workflow.TransitionRefused):
        tickets.transition(_ticket_in("new"), "resolved", cast.lead)


def test_reopening_a_closed_ticket_needs_a_lead(cast):
    ticket = _ticket_in("closed")
    with pytest.raises(workflow.TransitionForbidden, match="manage_escalation"):
        tickets.transition(ticket, "in_progress", cast.staff)
    assert tickets.transition(ticket, "in_progress", cast.lead).status == "in_progress"


def test_an_unknown_status_is_refused(cast):
    with pytest.raises(workflow.TransitionRefused, match="unknown status"):
        tickets.transition(open_ticket(), "done-ish", cast.staff)


def test_a_configured_transition_takes_effect_without_a_release(cast):
    ticket = _ticket_in("new")
    with pytest.raises(workflow.TransitionRefused):
        tickets.transition(ticket, "closed", cast.staff)
    Transition.objects.create(source="new", target="closed", rule="triage_tickets")
    assert tickets.transition(ticket, "closed", cast.staff).status == "closed"


def test_leaving_new_acknowledges_and_resolving_stamps_the_time(cast):
    ticket = open_ticket()
    ticket = tickets.transition(ticket, "in_progress", cast.staff, now=minutes(3))
    assert ticket.acknowledged_at == minutes(3)
    ticket = tickets.transition(ticket, "resolved", cast.staff, now=minutes(40))
    assert ticket.resolved_at == minutes(40)
    ticket = tickets.transition(ticket, "in_progress", cast.staff, now=minutes(50))
    assert ticket.resolved_at is None and ticket.acknowledged_at == minutes(3)


def test_allowed_targets_depend_on_the_users_role(cast):
    assert workflow.allowed_targets("closed", cast.staff) == []
    assert workflow.allowed_targets("closed", cast.lead) == ["in_progress"]
    assert workflow.allowed_targets("new") == ["acknowledged", "in_progress", "resolved"]
