"""In Chromium, two people on the board: a ticket created or moved by one appears or
moves for the other without a reload, and the ticket's own page follows the change;
drag and drop and the keyboard go through the server's checks; SLA clocks change colour
band as the page's clock advances; escalations arrive as a toast and a badge."""

import re

import pytest
from playwright.sync_api import expect

from desk import tickets
from desk.models import EscalationPolicy, Ticket
from desk.tasks import run_escalations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SUBSCRIBED = re.compile(r"(^| )board( |$)")


def open_board(page, base, query=""):
    page.goto(f"{base}/command-center/{query}")
    expect(page.locator("#live-status")).to_have_attribute("data-subscribed", SUBSCRIBED)
    return page


def column(page, status):
    return page.locator(f'ol.cards[data-status="{status}"]')


def test_two_people_see_each_others_tickets_appear_and_move_live(cast, browser_as, asgi_server):
    staff = open_board(browser_as(cast.staff), asgi_server.url)
    lead = open_board(browser_as(cast.lead), asgi_server.url)
    filtered = open_board(browser_as(cast.admin), asgi_server.url, "?priority=P4")

    staff.get_by_role("link", name="New ticket").first.click()
    staff.get_by_label("Title").fill("ED viewer freezes on CT head")
    staff.get_by_label("Category").select_option("viewer")
    staff.get_by_label("Impact").select_option("high")
    staff.get_by_label("Urgency").select_option("high")
    staff.get_by_role("button", name="Open ticket").click()
    expect(staff.get_by_role("heading", level=1)).to_contain_text("ED viewer freezes")
    ticket = Ticket.objects.get()

    card = column(lead, "new").locator(f"#ticket-{ticket.pk}")
    expect(card).to_contain_text("ED viewer freezes on CT head")
    expect(card.locator(".prio")).to_have_text("P1")
    expect(lead.locator('[data-count-priority="P1"]').first).to_have_text("1")
    expect(filtered.locator(f"#ticket-{ticket.pk}")).to_have_count(0)  # its filter says P4

    open_board(staff, asgi_server.url)
    staff.locator(f"#ticket-{ticket.pk}").drag_to(
        staff.locator('section.column[data-status="acknowledged"]')
    )
    expect(column(lead, "acknowledged").locator(f"#ticket-{ticket.pk}")).to_be_visible()
    expect(column(lead, "new").locator(f"#ticket-{ticket.pk}")).to_have_count(0)
    assert Ticket.objects.get().status == "acknowledged"

    staff.locator(f"#ticket-{ticket.pk}").drag_to(
        staff.locator('section.column[data-status="closed"]')
    )
    expect(staff.locator("#board-message")).to_contain_text("cannot go from Acknowledged to Closed")
    expect(column(staff, "acknowledged").locator(f"#ticket-{ticket.pk}")).to_be_visible()

    detail = filtered  # the third person now follows the ticket's own page
    detail.goto(f"{asgi_server.url}/command-center/tickets/{ticket.pk}/")
    expect(detail.locator("#live-status")).to_have_attribute(
        "data-subscribed", re.compile(rf"board\.ticket\.{ticket.pk}")
    )
    lead.locator(f"#ticket-{ticket.pk}").focus()
    lead.keyboard.press("Shift+ArrowRight")
    expect(column(staff, "in_progress").locator(f"#ticket-{ticket.pk}")).to_be_visible()
    expect(lead.locator(f"#ticket-{ticket.pk}")).to_be_focused()
    assert Ticket.objects.get().status == "in_progress"
    expect(detail.locator("[data-ticket-status]")).to_have_text("In progress")
    expect(detail.locator("#history")).to_contain_text("Acknowledged → In progress")
    tickets.add_comment(ticket, cast.lead, "Radiology desk called back")
    expect(detail.locator("#ticket-comments")).to_contain_text("Radiology desk called back")
    expect(detail.get_by_role("button", name="Move to Waiting")).to_be_visible()


def test_the_keyboard_walks_the_cards_and_enter_opens_one(cast, browser_as, asgi_server):
    first = tickets.create_ticket(title="First", impact="high", urgency="high")
    second = tickets.create_ticket(title="Second", impact="low", urgency="low")
    doing = tickets.create_ticket(title="Doing", impact="low", urgency="low")
    tickets.transition(doing, "in_progress", cast.staff)
    page = open_board(browser_as(cast.staff), asgi_server.url)
    page.locator(f"#ticket-{first.pk}").focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator(f"#ticket-{second.pk}")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page.locator(f"#ticket-{doing.pk}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/command-center/tickets/{doing.pk}/$"))


def test_an_sla_clock_changes_colour_band_as_time_passes(cast, browser_as, asgi_server):
    ticket = tickets.create_ticket(title="Slow worklist", impact="medium", urgency="medium")
    page = browser_as(cast.staff)
    page.clock.install()
    open_board(page, asgi_server.url)
    sla = page.locator(f"#ticket-{ticket.pk} [data-sla]")  # P3: 4 h to acknowledge
    expect(sla).to_have_class(re.compile(r"\bband-ok\b"))
    page.clock.fast_forward("03:01:00")
    expect(sla).to_have_class(re.compile(r"\bband-warn\b"))
    page.clock.fast_forward("00:30:00")
    expect(sla).to_have_class(re.compile(r"\bband-critical\b"))
    page.clock.fast_forward("00:30:00")
    expect(sla).to_have_class(re.compile(r"\bband-breached\b"))
    expect(sla.locator(".left")).to_have_text(re.compile(r"^-0:0[01]:"))


def test_an_escalation_arrives_as_a_toast_and_a_badge(cast, browser_as, asgi_server, celery_worker):
    policy, _ = EscalationPolicy.objects.get_or_create(priority="P1", defaults={"name": "P1"})
    policy.steps.all().delete()
    policy.steps.create(
        order=1, after_minutes=0, condition="unacknowledged", target="person", person=cast.lead
    )
    page = open_board(browser_as(cast.lead), asgi_server.url)
    expect(page.locator("#live-status")).to_have_attribute(
        "data-subscribed", re.compile(rf"user\.{cast.lead.pk}")
    )
    expect(page.locator("#cc-badge")).to_have_text("0")
    tickets.create_ticket(title="Archive unreachable", impact="high", urgency="high")
    run_escalations.delay()  # what beat does every minute, on a real worker
    expect(page.locator("#toasts .toast")).to_contain_text("Archive unreachable")
    expect(page.locator("#cc-badge")).to_have_text("1")
