"""The triage board page: columns by status, limited and paged, filters, counts, and one
live event per change carrying the rendered card."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core import events
from desk import tickets, triage
from desk.models import Ticket
from tests.desk.ticketing import open_ticket


def _fresh(title, **fields):
    return tickets.create_ticket(title=title, **{"impact": "low", "urgency": "low", **fields})


def test_the_board_has_a_column_per_status_with_its_cards(cast, client_for):
    new = _fresh("Viewer slow")
    doing = _fresh("Worklist empty", impact="high", urgency="high")
    tickets.transition(doing, "in_progress", cast.staff)
    page = client_for(cast.staff).get("/command-center/").content.decode()
    for label in ("New", "Acknowledged", "In progress", "Waiting", "Resolved", "Closed"):
        assert f">{label} <span" in page
    new_column = page[page.index('ol class="cards" data-status="new"') :]
    assert f'id="ticket-{new.pk}"' in new_column.split("</ol>")[0]
    progress = page[page.index('ol class="cards" data-status="in_progress"') :]
    assert f'id="ticket-{doing.pk}"' in progress.split("</ol>")[0]
    assert 'data-count-priority="P1">1<' in page


def test_a_long_column_shows_a_page_of_cards_and_loads_more_on_demand(cast, client_for):
    for i in range(triage.COLUMN_LIMIT + 5):
        _fresh(f"Ticket {i:02d}")
    client = client_for(cast.staff)
    page = client.get("/command-center/").content.decode()
    column = page[page.index('ol class="cards" data-status="new"') :].split("</ol>")[0]
    assert column.count('class="ticket-card') == triage.COLUMN_LIMIT
    assert f"Show more ({triage.COLUMN_LIMIT} of {triage.COLUMN_LIMIT + 5} shown)" in page
    more = client.get(f"/command-center/board/columns/new/?offset={triage.COLUMN_LIMIT}")
    fragment = more.content.decode()
    assert fragment.count('class="ticket-card') == 5
    assert 'hx-swap-oob="true"' in fragment and "Show more" not in fragment


def test_each_column_shows_its_most_urgent_cards_and_done_columns_fewer(cast, client_for):
    for i in range(triage.COLUMN_LIMIT + 2):
        _fresh(f"Routine {i:02d}")
    urgent = _fresh("Urgent late", impact="high", urgency="high")
    for i in range(triage.DONE_LIMIT + 2):
        tickets.transition(_fresh(f"Done {i:02d}"), "resolved", cast.staff)
    columns = {c["status"]: c for c in triage.columns({}, cast.staff)}
    assert columns["new"]["cards"][0]["t"] == urgent
    assert len(columns["new"]["cards"]) == triage.COLUMN_LIMIT
    assert len(columns["resolved"]["cards"]) == triage.DONE_LIMIT
    assert columns["resolved"]["total"] == triage.DONE_LIMIT + 2
    assert columns["resolved"]["more"] and not columns["closed"]["cards"]


PATHS = {
    "new": [],
    "acknowledged": ["acknowledged"],
    "in_progress": ["in_progress"],
    "waiting": ["acknowledged", "waiting"],
    "resolved": ["resolved"],
    "closed": ["resolved", "closed"],
}


def _one_per_status(cast, round_):
    for status, path in PATHS.items():
        ticket = _fresh(f"{status} {round_}", assignee=cast.staff, description="x" * 500)
        for target in path:
            tickets.transition(ticket, target, cast.lead)


def _board_queries(client, path="/command-center/"):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_the_board_runs_the_same_number_of_queries_however_many_cards_it_shows(cast, client_for):
    client = client_for(cast.staff)
    _one_per_status(cast, 1)
    few = _board_queries(client), _board_queries(client, "/command-center/board/columns/new/")
    for round_ in range(2, 5):
        _one_per_status(cast, round_)
    many = _board_queries(client), _board_queries(client, "/command-center/board/columns/new/")
    assert Ticket.objects.count() == 4 * len(PATHS)
    assert many == few


def test_cards_leave_big_text_in_the_database(cast):
    _one_per_status(cast, 1)
    [card] = triage.column("new", {}, cast.staff, timezone.now())["cards"]
    assert {"description", "links"} <= card["t"].get_deferred_fields()


def test_filters_narrow_every_column(cast, client_for):
    _fresh("Urgent", impact="high", urgency="high", category="viewer", assignee=cast.staff)
    _fresh("Later", category="training")
    client = client_for(cast.staff)
    assert "Later" not in client.get("/command-center/?priority=P1").content.decode()
    assert "Urgent" not in client.get("/command-center/?category=training").content.decode()
    page = client.get("/command-center/?mine=1").content.decode()
    assert "Urgent" in page and "Later" not in page
    page = client.get("/command-center/?priority=P9&assignee=x").content.decode()
    assert "Urgent" in page and "Later" in page  # nonsense filters are ignored
    late = open_ticket("Overdue", impact="high", urgency="high")  # opened at T0, long ago
    page = client.get("/command-center/?breached=1").content.decode()
    assert f'id="ticket-{late.pk}"' in page and "Urgent" not in page
    assert 'data-column-count="new">1<' in page


def test_done_tickets_leave_the_board_after_a_day(cast, client_for):
    old = open_ticket("Fixed last week")  # opened at T0, long ago
    tickets.transition(old, "resolved", cast.staff, now=old.opened_at)
    recent = _fresh("Fixed just now")
    tickets.transition(recent, "resolved", cast.staff)
    page = client_for(cast.staff).get("/command-center/").content.decode()
    assert "Fixed just now" in page and "Fixed last week" not in page


@pytest.mark.django_db(transaction=True)
def test_each_change_is_published_once_with_the_rendered_card(cast):
    heard = []
    listener = events.subscribe_local(lambda topic, message: heard.append((topic, message)))
    try:
        ticket = _fresh("Viewer slow")
        tickets.transition(ticket, "acknowledged", cast.staff)
    finally:
        events._listeners.remove(listener)
    board = [m for topic, m in heard if topic == "board"]
    assert [m["data"]["status"] for m in board] == ["new", "acknowledged"]
    assert all(f'id="ticket-{ticket.pk}"' in m["html"] for m in board)
    assert board[-1]["data"]["counts"]["by_status"]["acknowledged"] == 1


def test_the_card_carries_what_the_browser_needs_to_tick_and_filter(cast):
    ticket = _fresh("Priors missing", impact="high", urgency="high", category="missing_images")
    html = triage.render_card(ticket, timezone.now())
    for attribute in (
        'data-priority="P1"',
        'data-category="missing_images"',
        'data-status="new"',
        "data-due=",
        'data-kind="acknowledge"',
        "data-since=",
        'draggable="true"',
        'tabindex="0"',
    ):
        assert attribute in html
    tickets.transition(ticket, "acknowledged", cast.staff)
    tickets.transition(ticket, "waiting", cast.staff)
    paused = triage.render_card(Ticket.objects.get(pk=ticket.pk))
    assert 'data-paused="1"' in paused and "data-due=" not in paused


def test_the_overview_shows_counts_breaches_and_on_call(cast, client_for):
    open_ticket("Old P1", impact="high", urgency="high", category="integration")
    page = client_for(cast.lead).get("/command-center/overview/").content.decode()
    assert 'data-count-priority="P1">1<' in page
    assert "Breaches by team" in page and "Old P1" in page
    assert 'data-live-topic="oncall"' in page and 'data-live-topic="health"' in page
