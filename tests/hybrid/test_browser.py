"""In Chromium: an engineer finds a study by accession number on the locator screen, asks
the legacy PACS about it (live C-FIND), presses Migrate now and watches it arrive in the
cloud, verified, without reloading the page (events over the websocket, htmx)."""

import pytest
from playwright.sync_api import expect

from migration import actions
from tests.migration import support

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_an_engineer_locates_a_study_and_watches_migrate_now_bring_it_to_the_cloud(
    cast, browser_as, mixed_pacs, migration_s3, bucket, migration_worker
):
    orthanc, studies = mixed_pacs
    uid, datasets = list(studies.items())[3]
    source = support.make_source(orthanc, name="desk-pacs")
    (study,) = support.make_inventory(source, {uid: datasets})
    actions.create_wave(
        name="later-wave", source=source,
        destination=support.s3_destination(migration_s3, bucket, name="desk-cloud"),
    )  # fmt: skip

    page = browser_as(cast.engineer)
    page.goto(page.url.rstrip("/") + "/migration/")
    page.get_by_role("link", name="Where is this study?").click()
    page.select_option("#locate-key", "accession")
    page.fill("#locate-value", str(datasets[0].AccessionNumber))
    page.get_by_role("button", name="Locate").click()

    card = page.locator(f"#study-{study.pk}")
    expect(card.locator(".state")).to_have_attribute("data-state", "queued")
    expect(card.locator('[data-where="wave"]')).to_contain_text("later-wave")
    expect(card.locator('[data-where="cloud"]')).to_contain_text("not yet")
    card.get_by_role("button", name="Ask the PACS now (C-FIND)").click()
    expect(card.locator(".live-find-result")).to_have_attribute("data-found", "true")
    expect(card.locator(".live-find-result")).to_contain_text(f"{len(datasets)} instances")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "connected")
    page.evaluate("window.__notReloaded = true")

    card.get_by_role("button", name="Migrate now").click()
    outcome = page.locator(f"#outcome-{study.pk}")  # outside the card: live refreshes keep it
    expect(outcome).to_contain_text("moved to the head of wave urgent-")
    expect(card.locator(".state")).to_have_attribute("data-state", "in_cloud", timeout=120_000)
    expect(card.locator('[data-where="cloud"]')).to_contain_text("present and verified")
    expect(card.locator('[data-where="wave"]')).to_contain_text("urgent-")
    assert page.evaluate("window.__notReloaded")
    assert str(datasets[0].PatientName) in page.content()  # engineers hold view_phi
