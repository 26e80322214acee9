"""In Chromium: an engineer edits a destination's design, runs its conformance check
against moto's S3 server and reads the result requirement by requirement; a project
manager moves the what-if page's sliders and the finish date changes without a reload."""

import uuid

import pytest
from playwright.sync_api import expect

from migration import actions
from migration.models import Destination, DestinationDesign
from tests.migration import forecast_support
from tests.migration.test_conformance import DESIGN, KEY_ENV, SECRET_ENV, configure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def moto_bucket_destination(moto_s3, monkeypatch):
    """A destination on a moto bucket that meets DESIGN except for its tags."""
    monkeypatch.setenv(KEY_ENV, moto_s3.access_key)
    monkeypatch.setenv(SECRET_ENV, moto_s3.secret_key)
    bucket = configure(moto_s3.client(), f"browse-{uuid.uuid4().hex[:10]}", broken="tags")
    destination = Destination.objects.create(
        name="archive", kind="s3", bucket=bucket, region="us-east-1",
        endpoint_url=moto_s3.endpoint_url, access_key_env=KEY_ENV, secret_key_env=SECRET_ENV,
    )  # fmt: skip
    actions.save_design(destination, **DESIGN)
    return destination


def test_an_engineer_edits_the_design_and_reads_the_conformance_result(
    cast, browser_as, moto_bucket_destination
):
    page = browser_as(cast.engineer)
    page.goto(page.url.rstrip("/") + "/migration/destinations/archive/design/")
    expect(page.locator("#conformance")).to_contain_text("Never checked")
    page.evaluate("window.__notReloaded = true")

    page.get_by_role("button", name="Check conformance now").click()

    expect(page.locator("#conformance .verdict")).to_have_attribute("data-conforms", "false")
    tags = page.locator('tr.requirement[data-name="tags"]')
    expect(tags).to_have_attribute("data-ok", "false")
    expect(tags).to_contain_text("project=pacs-migration")
    expect(page.locator('tr.requirement[data-ok="true"]')).to_have_count(7)
    assert page.evaluate("window.__notReloaded"), "the result arrived without a reload"

    page.get_by_label("Required tags").fill('{"project": "pacs-migration"}')
    page.get_by_role("button", name="Save design").click()

    expect(page.locator(".messages")).to_contain_text("Design of archive saved.")
    design = DestinationDesign.objects.get(destination=moto_bucket_destination)
    assert design.required_tags == {"project": "pacs-migration"}
    page.get_by_role("button", name="Check conformance now").click()
    expect(page.locator("#conformance .verdict")).to_have_attribute("data-conforms", "true")
    expect(page.locator("#conformance")).to_contain_text("Conforms")


def test_moving_the_hours_slider_changes_the_finish_date_without_a_reload(cast, browser_as):
    forecast_support.wave_with_history(studies=400, done=6, size=60_000_000)
    page = browser_as(cast.pm)
    page.goto(page.url.rstrip("/") + "/migration/forecast/?hours_per_day=24")
    finish = page.locator("#finish-date")
    before = finish.inner_text()
    assert before != "unknown"
    page.evaluate("window.__notReloaded = true")

    page.locator("#hours_per_day").fill("1")

    expect(page.locator('output[data-for="hours_per_day"]')).to_have_text("1")
    expect(finish).not_to_have_text(before)
    assert finish.inner_text() > before
    assert page.evaluate("window.__notReloaded"), "the charts were redrawn without a reload"
    expect(page.locator("#forecast-results svg.cumulative")).to_have_count(1)
    expect(page.locator("#forecast-results svg.cost polygon")).to_have_count(5)


def finish_three_more(wave):
    from datetime import timedelta

    from django.utils import timezone

    from migration.models import StudyState

    now = timezone.now()
    for n, row in enumerate(wave.ledger.exclude(state=StudyState.DONE).order_by("pk")[:3]):
        row.state, row.host, row.bytes_stored, row.instances_stored = "done", "h1", 6_000_000, 6
        row.started_at = now - timedelta(seconds=6 * (3 - n))
        row.finished_at = row.started_at + timedelta(seconds=6)
        row.save()
    actions.publish_progress(wave.pk, force=True)


def test_the_forecast_follows_the_engine_live(cast, browser_as):
    from tests.cutover import world

    wave = forecast_support.wave_with_history()
    page = browser_as(cast.pm)
    page.goto(page.url.rstrip("/") + "/migration/forecast/")
    expect(page.locator("#live-status")).to_have_attribute("data-subscribed", "migration.waves")
    remaining = page.locator("#remaining")
    expect(remaining).to_have_text("34.3\xa0MB")  # 6 studies of 6 MB
    page.evaluate("window.__notReloaded = true")

    world.beside(finish_three_more, wave)

    expect(remaining).to_have_text("17.2\xa0MB")
    assert page.evaluate("window.__notReloaded")
