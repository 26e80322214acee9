"""Impact × urgency → priority: the matrix is data, seeded with ITIL's defaults."""

import pytest

from desk.models import PriorityRule
from desk.priority import DEFAULT_MATRIX, matrix, priority_for
from tests.desk.ticketing import open_ticket

EXPECTED = {
    ("high", "high"): "P1",
    ("high", "medium"): "P2",
    ("medium", "high"): "P2",
    ("high", "low"): "P3",
    ("medium", "medium"): "P3",
    ("low", "high"): "P3",
    ("medium", "low"): "P4",
    ("low", "medium"): "P4",
    ("low", "low"): "P4",
}


@pytest.mark.parametrize("cell,priority", EXPECTED.items())
def test_every_cell_of_the_seeded_matrix_gives_its_priority(db, cell, priority):
    assert priority_for(*cell) == priority


def test_the_defaults_hold_for_every_cell_without_a_row(db):
    PriorityRule.objects.all().delete()
    assert matrix() == DEFAULT_MATRIX


def test_a_hospital_can_change_a_cell_and_new_tickets_follow_it(db):
    PriorityRule.objects.filter(impact="low", urgency="high").update(priority="P2")
    assert open_ticket(impact="low", urgency="high").priority == "P2"
    assert open_ticket(impact="medium", urgency="medium").priority == "P3"


def test_an_unknown_level_is_refused_with_a_clear_error(db):
    with pytest.raises(ValueError, match="no priority for impact 'severe'"):
        priority_for("severe", "high")


def test_changing_impact_reprioritises_and_moves_the_sla_deadlines(cast):
    from desk import tickets

    ticket = open_ticket(impact="low", urgency="low")
    before = ticket.resolve_due
    ticket = tickets.update_ticket(ticket, cast.staff, impact="high", urgency="high")
    assert ticket.priority == "P1"
    assert ticket.resolve_due < before
    change = ticket.history.get(field="priority")
    assert (change.before, change.after, change.actor) == ("P4", "P1", cast.staff)
