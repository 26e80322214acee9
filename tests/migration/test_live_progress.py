"""In Chromium: the wave page's progress bar moves live, over the websocket, to 100 %."""

import pytest
from playwright.sync_api import expect

from migration import actions
from tests.migration import support

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WATCH = """() => {
  window.__seen = [];
  window.__notReloaded = true;
  const bar = document.querySelector('#wave-live');
  new MutationObserver(() => {
    const now = document.querySelector('#wave-progress');
    if (now) window.__seen.push(now.getAttribute('aria-valuenow'));
  }).observe(bar, {childList: true, subtree: true});
}"""


def test_an_engineer_watches_the_progress_bar_move_live_to_100_percent(
    cast, browser_as, mixed_pacs, migration_s3, bucket, migration_worker
):
    orthanc, studies = mixed_pacs
    chosen = dict(list(studies.items())[:12])
    source = support.make_source(orthanc, max_associations=1)
    support.make_inventory(source, chosen)
    wave, _info = actions.create_wave(
        name="watched", source=source, destination=support.s3_destination(migration_s3, bucket)
    )
    page = browser_as(cast.engineer, viewport={"width": 390, "height": 844})
    page.goto(page.url.rstrip("/") + f"/migration/waves/{wave.name}/")
    bar = page.locator("#wave-progress")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#live-status")).to_have_attribute(
        "data-subscribed", f"migration.wave.{wave.pk}"
    )
    page.evaluate(WATCH)

    actions.change_wave(wave, "start")

    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=120_000)
    expect(page.locator("#wave-live .percent")).to_have_text("100 %")
    expect(page.locator('#wave-live [data-count="done"]')).to_have_text("12")
    seen = [int(v) for v in page.evaluate("window.__seen")]
    assert page.evaluate("window.__notReloaded")
    assert seen[-1] == 100 and seen == sorted(seen)
    assert len(set(seen)) >= 2, seen  # it moved through values on the way, live
