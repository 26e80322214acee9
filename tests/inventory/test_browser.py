"""In Chromium: an engineer starts a crawl, watches its progress update live, then sees the
dashboard's charts."""

import pytest
from playwright.sync_api import expect

from tests.inventory.conftest import register, studies, upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_engineer_watches_a_crawl_live_and_sees_the_dashboard_charts(
    orthanc_factory, cast, browser_as, celery_worker
):
    orthanc = orthanc_factory(aet="LIVECRAWL", limit_find_results=10)
    upload(orthanc, studies(40, seed=81, undated=3).values())
    source = register("live-orthanc", orthanc, find_pause_ms=120)
    page = browser_as(cast.engineer)

    page.goto(f"{page.url}inventory/sources/{source.pk}/")
    page.get_by_label("Also query series and sample instances").uncheck()
    page.get_by_role("button", name="Start crawl").click()

    progress = page.locator("#crawl-progress")
    expect(page.locator("#live-status")).to_have_attribute(
        "data-subscribed", f"inventory.crawl.{source.crawls.get().pk}", timeout=15000
    )
    page.evaluate("window.__sameDocument = true")
    done = progress.locator('[data-stat="ranges_done"]')
    first = done.inner_text()
    expect(done).not_to_have_text(first, timeout=30000)
    expect(progress.locator(".crawl-progress")).to_have_attribute(
        "data-status", "done", timeout=90000
    )
    expect(progress).to_contain_text("complete: every leaf answered under the cap")
    expect(progress.locator('[data-stat="studies_found"]')).to_have_text("40")
    assert page.evaluate("window.__sameDocument") is True  # updated live, never reloaded

    page.get_by_role("navigation", name="Inventory").get_by_role("link", name="Dashboard").click()
    expect(page.locator('[data-total="studies"]')).to_have_text("40")
    for chart in ("hbars", "columns", "growth"):
        svg = page.locator(f'svg[data-chart="{chart}"]')
        expect(svg).to_be_visible()
        box = svg.bounding_box()
        assert box["width"] > 200 and box["height"] > 50
    expect(page.locator('svg[data-chart="growth"] polyline.projection')).to_have_count(1)
    expect(page.locator('svg[data-chart="hbars"] rect')).to_have_count(5)
