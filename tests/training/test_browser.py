"""In Chromium at a phone-sized viewport: sending feedback with a screenshot, bad input that
keeps what was typed, and enrolling in a session, with live updates."""

import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.training.conftest import noisy_png_bytes, png_bytes
from training import actions
from training.models import Feedback

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


def phone_for(browser_as, user, path):
    page = browser_as(user, viewport=PHONE)
    page.goto(page.url.rstrip("/") + path)
    return page


def elsewhere(action, *args, **kwargs):
    """Run an action in another thread, as a web request or worker would: Playwright's event
    loop owns the test thread, and events cannot be sent to Redis from inside it."""
    errors = []

    def run():
        try:
            action(*args, **kwargs)
        except Exception as exc:  # re-raised in the test thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]


def wait_subscribed(page, topic):
    pattern = re.compile(rf"(^|\s){re.escape(topic)}(\s|$)")
    expect(page.locator("#live-status")).to_have_attribute("data-subscribed", pattern)


def fill_feedback(page, description, accession=""):
    page.get_by_label("Which viewer?").select_option("cloud_diagnostic")
    page.get_by_label("Missing images or priors").check()
    page.get_by_label("Slows me down").check()
    page.get_by_label("What happened?").fill(description)
    if accession:
        page.get_by_label("Accession number (optional)").fill(accession)


def attach(page, name, data, mime="image/png"):
    page.get_by_label("Screenshot (optional)").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )


def test_a_clinician_on_a_phone_sends_feedback_with_a_screenshot_and_sees_the_reply_live(
    cast, browser_as
):
    page = phone_for(browser_as, cast.clinician, "/training/feedback/new/")
    fill_feedback(page, "Priors from 2019 do not load in the comparison view.")
    attach(page, "viewer.png", png_bytes())
    page.get_by_role("button", name="Send feedback").click()

    expect(page).to_have_url(re.compile(r"/training/feedback/mine/$"))
    feedback = Feedback.objects.get()
    row = page.locator(f"#my-feedback-{feedback.pk}")
    expect(row).to_contain_text("Priors from 2019 do not load")
    expect(row).to_contain_text("Received")
    expect(row.get_by_role("link", name="screenshot")).to_be_visible()
    assert feedback.screenshot and feedback.screenshot_type == "image/png"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    wait_subscribed(page, f"user.{cast.clinician.pk}")
    elsewhere(
        actions.reply_to_feedback,
        feedback.pk,
        cast.pm,
        "Fixed: priors load again.",
        status="resolved",
    )
    expect(row).to_contain_text("Fixed: priors load again.")
    expect(row).to_contain_text("Resolved")


def test_a_rejected_screenshot_keeps_everything_typed_on_a_phone(cast, browser_as, settings):
    settings.TRAINING_SCREENSHOT_MAX_BYTES = 20_000
    page = phone_for(browser_as, cast.clinician, "/training/feedback/new/")
    fill_feedback(page, "Hanging protocol swaps the PA and lateral.", accession="ACC777")
    attach(page, "big.png", noisy_png_bytes(30_000))
    page.get_by_role("button", name="Send feedback").click()

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("The screenshot is too large")
    expect(page.get_by_label("What happened?")).to_have_value(
        "Hanging protocol swaps the PA and lateral."
    )
    expect(page.get_by_label("Accession number (optional)")).to_have_value("ACC777")
    expect(page.get_by_label("Slows me down")).to_be_checked()
    expect(page.get_by_label("Which viewer?")).to_have_value("cloud_diagnostic")

    attach(page, "notes.txt", b"just text", mime="text/plain")
    page.get_by_role("button", name="Send feedback").click()
    expect(page.get_by_role("alert")).to_contain_text("this file is not an image")
    expect(page.get_by_label("What happened?")).to_have_value(
        "Hanging protocol swaps the PA and lateral."
    )
    assert not Feedback.objects.exists()

    attach(page, "small.png", png_bytes())
    page.get_by_role("button", name="Send feedback").click()
    expect(page).to_have_url(re.compile(r"/training/feedback/mine/$"))
    assert Feedback.objects.get().accession_number == "ACC777"


def test_a_clinician_on_a_phone_enrols_and_sees_seats_change_live(cast, browser_as, new_session):
    session = new_session(capacity=2, title="Cloud viewer hands-on")
    page = phone_for(browser_as, cast.clinician, "/training/sessions/")
    card = page.locator(f"#session-{session.pk}")
    expect(card).to_contain_text("2 of 2 seats left")

    card.get_by_role("button", name=re.compile("^Enrol in Cloud viewer hands-on")).click()

    expect(page.get_by_text("You are enrolled in Cloud viewer hands-on.")).to_be_visible()
    card = page.locator(f"#session-{session.pk}")
    expect(card).to_contain_text("You are enrolled")
    expect(card).to_contain_text("1 of 2 seats left")
    expect(card.get_by_role("button", name="Cancel my place")).to_be_visible()

    wait_subscribed(page, f"training.session.{session.pk}")
    elsewhere(actions.enrol, session.pk, cast.pm)
    expect(card.locator(".seats")).to_contain_text("Full")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_enrolling_from_a_stale_page_explains_the_double_enrolment(cast, browser_as, new_session):
    session = new_session(capacity=5, title="Measuring in the cloud viewer")
    page = phone_for(browser_as, cast.clinician, f"/training/sessions/{session.pk}/")
    actions.enrol(session.pk, cast.clinician)  # e.g. from another tab

    page.get_by_role("button", name=re.compile("^Enrol in Measuring")).click()

    expect(page.get_by_text("You are already enrolled in this session.")).to_be_visible()
    assert session.enrolments.count() == 1
