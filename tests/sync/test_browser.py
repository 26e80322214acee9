"""In Chromium: the lag panel of the sync page follows the live events (a study verified
moves its figures without a reload), and the appointments page shows upcoming
appointments and their priors turning ready live; the patient only for `view_phi`."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import PacsSource, Study
from migration.actions import publish_progress
from migration.models import Destination, StudyState, Wave, WaveStudy
from sync import actions
from sync.models import Appointment, AppointmentPrior, SyncedStudy, SyncSource

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PATIENT = "BROWSER-PAT-7"


@pytest.fixture
def world():
    source = PacsSource.objects.create(name="legacy", ae_title="PACS", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="cloud", kind="filesystem", path="/tmp/cc-b")
    sync = SyncSource.objects.create(
        source=source, destination=destination, enabled=True, enabled_at=timezone.now()
    )
    wave = Wave.objects.create(name="urgent-w", source=source, destination=destination)
    studies = [
        Study.objects.create(source=source, study_uid=f"1.2.840.5.{n}", patient_id=PATIENT)
        for n in range(3)
    ]
    rows = [WaveStudy.objects.create(wave=wave, study=s) for s in studies]
    return sync, studies, rows


def verify(row, seconds_ago=0):
    WaveStudy.objects.filter(pk=row.pk).update(
        state=StudyState.DONE, finished_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def test_the_lag_panel_updates_live_as_studies_are_verified(cast, browser_as, world):
    sync, studies, rows = world
    now = timezone.now()
    for study, row, sighted in zip(studies, rows, (40, 30, 20), strict=True):
        SyncedStudy.objects.create(
            sync=sync,
            study=study,
            kind="new",
            ledger=row,
            sighted_at=now - timedelta(seconds=sighted),
        )
    page = browser_as(cast.staff)
    page.goto(page.url.rstrip("/") + "/sync/")
    panel = page.locator("#lag-legacy")
    expect(panel.locator('[data-figure="pending"]')).to_have_text("3")
    expect(panel.locator('[data-figure="lag_p95_s"]')).to_have_text("–")
    expect(page.locator("#live-status")).to_have_attribute(
        "data-subscribed", f"migration.sync.{sync.source_id}"
    )
    page.evaluate("window.__notReloaded = true")

    verify(rows[0])
    actions.settle()
    expect(panel.locator('[data-figure="pending"]')).to_have_text("2")
    expect(panel.locator('[data-figure="verified_last_hour"]')).to_have_text("1")
    expect(panel.locator('[data-figure="lag_p95_s"]')).not_to_have_text("–")

    verify(rows[1])
    verify(rows[2])
    actions.settle()
    expect(panel.locator('[data-figure="pending"]')).to_have_text("0")
    expect(panel.locator('[data-figure="oldest_unsynced_s"]')).to_have_text("–")
    assert page.evaluate("window.__notReloaded")


def test_the_appointments_page_shows_priors_turning_ready_live(cast, browser_as, world):
    sync, studies, rows = world
    booked = Appointment.objects.create(
        control_id="B1", message_type="SIU^S12", patient_id=PATIENT, modality="CT",
        scheduled_at=timezone.now() + timedelta(hours=3), raw="MSH|…", state="queued",
    )  # fmt: skip
    for rank, study in enumerate(studies[:2]):
        AppointmentPrior.objects.create(appointment=booked, study=study, rank=rank, outcome="moved")
    page = browser_as(cast.engineer)
    page.goto(page.url.rstrip("/") + "/sync/appointments/")
    row = page.locator(f'tr[data-appointment="{booked.pk}"]')
    expect(row.locator('[data-role="ready"]')).to_have_text("0 of 2")
    expect(row).to_contain_text(PATIENT)  # the engineer holds view_phi
    expect(page.locator("#live-status")).to_have_attribute(
        "data-subscribed", "migration.appointments"
    )
    page.evaluate("window.__notReloaded = true")

    verify(rows[0])
    verify(rows[1])
    publish_progress(rows[0].wave_id, force=True)  # the engine's event; sync follows it
    expect(row.locator('[data-role="ready"]')).to_contain_text("2 of 2")
    expect(row).to_have_class("ready")
    assert page.evaluate("window.__notReloaded")

    other = browser_as(cast.pm)  # no view_phi: the patient column is not there
    other.goto(other.url.rstrip("/") + "/sync/appointments/")
    expect(other.locator(f'tr[data-appointment="{booked.pk}"]')).to_contain_text("2 of 2")
    expect(other.locator("table.appointments")).not_to_contain_text(PATIENT)
