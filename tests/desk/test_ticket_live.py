"""The ticket page updates live: every change publishes the page's parts once, after the
board's card, with nothing in them that belongs to one viewer."""

import pytest

from core import events
from core.access import can_subscribe
from desk import forms, ticket_page, tickets
from desk.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def _changes(cast, do):
    heard = []
    listener = events.subscribe_local(lambda topic, message: heard.append((topic, message)))
    try:
        do()
    finally:
        events._listeners.remove(listener)
    return heard


def test_each_change_publishes_the_rendered_page_parts_after_the_card(cast):
    ticket = tickets.create_ticket(title="Priors missing", impact="high", urgency="high")
    topic = ticket_page.topic(ticket.pk)

    def work():
        tickets.transition(ticket, "acknowledged", cast.staff)
        tickets.update_ticket(ticket, cast.staff, assignee=cast.lead)
        tickets.add_comment(ticket, cast.staff, "Calling the radiology desk")

    heard = _changes(cast, work)
    assert [t for t, _ in heard if t in ("board", topic)] == ["board", topic] * 3
    status, assigned, commented = [m for t, m in heard if t == topic]
    assert status["data"]["status"] == "acknowledged"
    assert 'data-ticket-status="acknowledged"' in status["html"]
    assert "changed status: New → Acknowledged" in status["html"]
    assert f"data-ticket-assignee>{cast.lead.get_username()}<" in assigned["html"]
    assert "Calling the radiology desk" in commented["html"]
    for part in ("head", "details", "moves", "comments", "attachments", "escalations"):
        assert f'id="ticket-{part}" data-part' in commented["html"]
    assert 'id="history" data-part' in commented["html"]


def test_the_published_parts_hold_every_move_with_its_rule_and_no_token(cast):
    ticket = tickets.create_ticket(title="Archive slow", impact="low", urgency="low")
    tickets.transition(ticket, "resolved", cast.staff)
    heard = _changes(cast, lambda: tickets.transition(ticket, "closed", cast.staff))
    [message] = [m for t, m in heard if t == ticket_page.topic(ticket.pk)]
    assert 'value="in_progress" data-rule="manage_escalation"' in message["html"]
    assert "csrfmiddlewaretoken" not in message["html"]


def test_the_page_subscribes_to_its_ticket_and_shows_only_the_viewers_moves(cast, client_for):
    ticket = tickets.create_ticket(title="Archive slow", impact="low", urgency="low")
    for target in ("resolved", "closed"):
        tickets.transition(ticket, target, cast.staff)
    path = f"/command-center/tickets/{ticket.pk}/"
    staff_page = client_for(cast.staff).get(path).content.decode()
    assert f'data-live-topic="board.ticket.{ticket.pk}"' in staff_page
    assert "Move to In progress" not in staff_page
    assert "No status change available to you." in staff_page
    lead_page = client_for(cast.lead).get(path).content.decode()
    assert "Move to In progress" in lead_page and "manage_escalation" in lead_page


def test_only_people_who_see_the_board_may_follow_a_ticket(cast):
    topic = ticket_page.topic(42)
    assert can_subscribe(cast.staff, topic) and can_subscribe(cast.lead, topic)
    assert not can_subscribe(cast.clinician, topic) and not can_subscribe(cast.pm, topic)


def _shown_form(ticket):
    """What the edit form posts as the page showed it: each value and its initial twin."""
    form = forms.TicketEditForm(instance=Ticket.objects.get(pk=ticket.pk))
    data = {}
    for field in form:
        value = field.value()
        data[field.html_name] = data[field.html_initial_name] = "" if value is None else value
    return data


def test_saving_a_page_that_changed_meanwhile_keeps_the_other_persons_changes(cast, client_for):
    ticket = tickets.create_ticket(title="Worklist empty", impact="low", urgency="low")
    staff_form = _shown_form(ticket)
    lead_form = _shown_form(ticket)
    path = f"/command-center/tickets/{ticket.pk}/edit/"
    client_for(cast.lead).post(path, {**lead_form, "assignee": cast.lead.pk})
    client_for(cast.staff).post(path, {**staff_form, "title": "Worklist empty in ED"})
    ticket.refresh_from_db()
    assert (ticket.title, ticket.assignee) == ("Worklist empty in ED", cast.lead)
    assert [h.field for h in ticket.history.filter(kind="changed")] == ["assignee", "title"]
