"""In Chromium: pages connect, show their live indicator, update when a worker publishes,
and reconnect by themselves."""

import pytest
from playwright.sync_api import expect

from core.tasks import publish_health

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_home_page_updates_live_when_a_celery_task_publishes(cast, browser_as, celery_worker):
    page = browser_as(cast.staff)
    expect(page.locator("#live-status")).to_have_text("live")
    expect(page.locator("#live-status")).to_have_attribute("data-subscribed", "health")
    checked = page.locator("#health-card time.checked-at")
    before = checked.get_attribute("datetime")

    publish_health.delay()

    expect(checked).not_to_have_attribute("datetime", before)
    expect(page.locator('#health-card [data-component="workers"] .state')).to_have_text("up")


def test_the_live_indicator_shows_reconnecting_and_recovers(cast, browser_as):
    page = browser_as(cast.clinician, viewport={"width": 390, "height": 844})
    status = page.locator("#live-status")
    expect(status).to_have_text("live")

    page.evaluate("window.live.socket.close()")

    expect(status).to_have_text("reconnecting…")
    expect(status).to_have_text("live")
    expect(status).to_have_attribute("data-subscribed", "health")


def test_the_layout_fits_a_phone_and_keeps_the_navigation(cast, browser_as):
    page = browser_as(cast.admin, viewport={"width": 390, "height": 844})
    nav = page.get_by_role("navigation", name="Main")
    for section in ("Inventory", "Migration", "Roadmap & Cutover", "Command Center", "Training"):
        expect(nav.get_by_role("link", name=section, exact=True)).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
