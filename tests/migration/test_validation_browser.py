"""In Chromium: a command-center lead (a reviewer allowed PHI: thumbnails are patient
images) compares the source and cloud thumbnails of migrated
JPEG, RLE and JPEG 2000 studies side by side and signs "Renders correctly"."""

import pytest
from playwright.sync_api import expect

from migration.models import RenderReview, StudyState
from tests.migration import validation_support as vs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOADED = "img => img.complete && img.naturalWidth > 0"


def migrated_compressed_wave(orthanc, studies, s3, bucket):
    """A wave of one JPEG baseline (CR), one RLE (US) and one JPEG 2000 (MG) study, run
    through the engine in this process."""
    chosen = vs.one_of_each(studies, vs.COMPRESSED)
    wave = vs.migrate_in_process(vs.new_wave("reviewed", orthanc, chosen, s3, bucket))
    assert {row.state for row in wave.ledger.all()} == {StudyState.DONE}
    return wave


def test_a_reviewer_sees_both_thumbnails_of_compressed_studies_and_signs_them(
    cast, browser_as, mixed_pacs, migration_s3, bucket
):
    orthanc, studies = mixed_pacs
    wave = migrated_compressed_wave(orthanc, studies, migration_s3, bucket)
    page = browser_as(cast.lead)
    base = page.url.rstrip("/")

    for row in wave.ledger.select_related("study").order_by("pk"):
        page.goto(f"{base}/migration/waves/{wave.name}/validation/studies/{row.pk}/")
        expect(page.locator("#live-status")).to_have_attribute(
            "data-subscribed", f"validation.reviews.{row.pk}"
        )
        for side in ("source", "destination"):
            page.wait_for_function(f"() => ({LOADED})(document.querySelector('#thumb-{side}'))")
            src = page.locator(f"#thumb-{side}").evaluate("img => img.currentSrc")
            answer = page.request.get(src)  # the same session: a PNG, not the error image
            assert (answer.status, answer.headers["content-type"]) == (200, "image/png"), side

        page.get_by_role("button", name="Renders correctly").click()

        signed = page.locator("#sign-area .signed")
        expect(signed).to_contain_text("Renders correctly by lead at")
        review = RenderReview.objects.get(ledger=row)
        assert (review.reviewer, review.verdict) == (cast.lead, "ok")
        expect(signed.locator("time")).to_have_text(review.signed_at.strftime("%Y-%m-%d %H:%M:%S"))
        live = page.locator(f"#reviews #review-{review.pk}")
        expect(live).to_contain_text("signed by lead")  # pushed over the websocket
    assert RenderReview.objects.filter(ledger__wave=wave, verdict="ok").count() == 3


@pytest.mark.worker
def test_an_engineer_starts_a_reconciliation_and_watches_the_wave_become_validated_live(
    cast, browser_as, mixed_pacs, migration_s3, bucket, migration_worker
):
    orthanc, studies = mixed_pacs
    wave = migrated_compressed_wave(orthanc, studies, migration_s3, bucket)
    page = browser_as(cast.engineer)
    page.goto(page.url.rstrip("/") + f"/migration/waves/{wave.name}/validation/")
    expect(page.locator("#validated-badge")).to_have_text("✘ Not validated")
    expect(page.locator("#live-status")).to_have_attribute(
        "data-subscribed", f"validation.{wave.name}"
    )
    page.evaluate("window.__notReloaded = true")

    page.get_by_role("button", name="Start a reconciliation").click()

    expect(page.locator("#validated-badge")).to_have_text("✔ Validated", timeout=60_000)
    expect(page.locator("#run-progress")).to_have_attribute("data-state", "done")
    expect(page.locator('#run-progress [role="progressbar"]')).to_have_attribute(
        "aria-valuenow", "100"
    )
    assert page.evaluate("window.__notReloaded"), "the page changed live, without reloading"
