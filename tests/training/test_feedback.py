"""Viewer feedback: routing by severity, who sees what, PHI, screenshots, triage and replies."""

import pytest
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.models import PHIAccess
from tests.conftest import make_user
from tests.training.conftest import noisy_png_bytes, png_bytes
from training import actions
from training.actions import TrainingError
from training.models import Feedback

ACCESSION = "ACC20240917X"


def blocking(reporter, **extra):
    fields = {
        "viewer": "cloud_diagnostic",
        "kind": "missing",
        "severity": "blocks",
        "description": f"Priors for {ACCESSION} are missing; cannot compare for the read.",
        "accession_number": ACCESSION,
    }
    return actions.submit_feedback(reporter, **{**fields, **extra})


def suggestion(reporter, text="Bigger measurement labels please."):
    return actions.submit_feedback(
        reporter, viewer="cloud_web", kind="tools", severity="suggestion", description=text
    )


def screenshot(data=None, name="Smith John CT.png", content_type="image/png"):
    return SimpleUploadedFile(name, data if data is not None else png_bytes(), content_type)


# --- routing --------------------------------------------------------------------------


def test_feedback_that_blocks_patient_care_raises_a_ticket_at_once(
    cast, heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        feedback = blocking(cast.clinician)

    alerts = [m["data"] for topic, m in heard if topic == "alerts.feedback"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["cause"] == f"feedback.{feedback.pk}"
    assert alert["title"] == (
        "Clinician feedback: missing images or priors in Cloud diagnostic viewer "
        "blocks patient care"
    )
    assert (alert["category"], alert["impact"], alert["urgency"]) == (
        "missing/incorrect images",
        "high",
        "high",
    )
    assert alert["links"] == {"feedback": feedback.pk}
    assert ACCESSION not in str(alert) and "[accession number]" in alert["detail"]
    assert Feedback.objects.get(pk=feedback.pk).escalated


def test_the_command_center_opens_a_p1_or_p2_ticket_for_it(
    cast, django_capture_on_commit_callbacks
):
    from desk.models import Ticket

    with django_capture_on_commit_callbacks(execute=True):
        feedback = blocking(cast.clinician, kind="access")
    ticket = Ticket.objects.get(cause=f"feedback.{feedback.pk}")
    assert ticket.priority in ("P1", "P2")
    assert ticket.category == "image_access"
    assert ACCESSION not in ticket.title + ticket.description


@pytest.mark.parametrize("severity", ["slows", "suggestion"])
def test_other_feedback_goes_to_the_queue_without_a_ticket(
    cast, heard, severity, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        feedback = actions.submit_feedback(
            cast.clinician, viewer="mobile", kind="speed", severity=severity, description="Slow."
        )
    assert not feedback.escalated
    assert [t for t, _ in heard if t.startswith("alerts.")] == []
    queue = [m for t, m in heard if t == "feedback.queue"]
    assert queue[0]["data"]["feedback"] == feedback.pk


def test_no_event_carries_the_accession_number(cast, heard, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        feedback = blocking(cast.clinician)
        actions.reply_to_feedback(feedback.pk, cast.pm, "Restored the priors.", status="resolved")
    assert heard and all(ACCESSION not in str(message) for _, message in heard)


def test_lead_users_feedback_is_flagged(clinician_in, client_for, cast):
    lead = clinician_in("Radiology", "rad_lead", lead=True)
    feedback = suggestion(lead)
    assert feedback.from_lead_user and feedback.department.name == "Radiology"
    page = client_for(cast.pm).get(reverse("training:feedback_queue")).content.decode()
    assert 'class="badge lead"' in page


# --- who sees what --------------------------------------------------------------------


def test_clinicians_see_only_their_own_feedback(cast, client_for):
    other = make_user("other_clinician", "clinician")
    mine, theirs = suggestion(cast.clinician, "Mine."), suggestion(other, "Theirs.")
    client = client_for(cast.clinician)

    page = client.get(reverse("training:feedback_mine")).content.decode()
    assert "Mine." in page and "Theirs." not in page
    assert client.get(reverse("training:feedback", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("training:feedback", args=[mine.pk])).status_code == 200
    assert client.get(reverse("training:feedback_queue")).status_code == 403
    assert client.get(reverse("training:feedback_dashboard")).status_code == 403
    listed = client.get("/training/api/feedback/").json()["results"]
    assert [row["id"] for row in listed] == [mine.pk]
    assert client.get(f"/training/api/feedback/{theirs.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("role", "sees_queue"),
    [("pm", True), ("lead", True), ("admin", True), ("staff", True), ("engineer", False)],
)
def test_the_queue_is_for_the_project_team_leads_and_command_center(
    cast, client_for, role, sees_queue
):
    suggestion(cast.clinician)
    response = client_for(getattr(cast, role)).get(reverse("training:feedback_queue"))
    assert response.status_code == (200 if sees_queue else 403)


def test_a_clinical_lead_user_sees_and_triages_the_queue(clinician_in, cast, client_for):
    lead = clinician_in("Radiology", "rad_lead", lead=True)
    feedback = suggestion(cast.clinician)
    client = client_for(lead)
    assert client.get(reverse("training:feedback_queue")).status_code == 200
    client.post(
        reverse("training:feedback_triage", args=[feedback.pk]),
        {"themes": "Measurement, Labels", "status": "triaged"},
    )
    feedback.refresh_from_db()
    assert sorted(t.name for t in feedback.themes.all()) == ["Labels", "Measurement"]


def test_the_accession_number_is_shown_only_with_view_phi_and_audited(cast, client_for):
    feedback = blocking(cast.clinician)
    url = reverse("training:feedback", args=[feedback.pk])

    assert ACCESSION not in client_for(cast.clinician).get(url).content.decode()
    assert ACCESSION not in client_for(cast.pm).get(url).content.decode()
    assert not PHIAccess.objects.exists()

    assert ACCESSION in client_for(cast.staff).get(url).content.decode()
    access = PHIAccess.objects.get()
    assert (access.user, access.what, access.object_id) == (
        cast.staff,
        "training.feedback.accession",
        str(feedback.pk),
    )


def test_the_api_gives_the_accession_number_only_to_view_phi_and_audits_it(cast, client_for):
    feedback = blocking(cast.clinician)
    url = f"/training/api/feedback/{feedback.pk}/"
    assert "accession_number" not in client_for(cast.pm).get(url).json()
    assert client_for(cast.lead).get(url).json()["accession_number"] == ACCESSION
    assert PHIAccess.objects.filter(user=cast.lead).count() == 1
    listed = client_for(cast.lead).get("/training/api/feedback/").json()["results"]
    assert ACCESSION not in str(listed)


def test_the_audit_log_masks_the_accession_number(cast):
    feedback = blocking(cast.clinician)
    entry = LogEntry.objects.get_for_object(feedback).get(action=LogEntry.Action.CREATE)
    assert ACCESSION not in str(entry.changes)
    assert entry.changes_dict["accession_number"][1] == "[redacted]"


# --- screenshots ------------------------------------------------------------------------


def test_a_screenshot_is_stored_under_a_random_name_and_served_only_to_allowed_people(
    cast, client_for, settings
):
    feedback = actions.submit_feedback(
        cast.clinician,
        viewer="cloud_web",
        kind="image_quality",
        severity="slows",
        description="Washed out.",
        screenshot=screenshot(),
    )
    assert (
        feedback.screenshot.name.startswith("feedback/") and "Smith" not in feedback.screenshot.name
    )
    assert (settings.MEDIA_ROOT / feedback.screenshot.name).exists()
    url = reverse("training:feedback_screenshot", args=[feedback.pk])

    own = client_for(cast.clinician).get(url)
    assert own.status_code == 200 and own["Content-Type"] == "image/png"
    assert b"".join(own.streaming_content) == png_bytes()
    assert own["Cache-Control"] == "private, no-store"
    assert not PHIAccess.objects.exists()

    assert client_for(make_user("someone_else", "clinician")).get(url).status_code == 404
    assert client_for(cast.pm).get(url).status_code == 403  # may triage, may not see PHI
    assert client_for(cast.staff).get(url).status_code == 200
    assert PHIAccess.objects.get().what == "training.feedback.screenshot"


def test_media_is_not_served_at_a_public_url(cast, client_for):
    feedback = actions.submit_feedback(
        cast.clinician,
        viewer="cloud_web",
        kind="other",
        severity="slows",
        description="x",
        screenshot=screenshot(),
    )
    assert client_for(cast.admin).get(f"/media/{feedback.screenshot.name}").status_code == 404


def test_a_non_image_screenshot_is_refused_and_the_text_is_kept(cast, client_for):
    response = client_for(cast.clinician).post(
        reverse("training:feedback_new"),
        {
            "viewer": "cloud_web",
            "kind": "tools",
            "severity": "slows",
            "description": "The ruler tool snaps to the wrong edge.",
            "accession_number": "A123",
            "screenshot": screenshot(b"%PDF-1.4 not an image", "notes.pdf", "application/pdf"),
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Screenshots must be GIF, JPEG, PNG, WEBP images; this file is not an image." in html
    assert "The ruler tool snaps to the wrong edge." in html
    assert 'name="accession_number" value="A123"' in html
    assert 'value="slows" required id="id_severity_1" checked' in html
    assert not Feedback.objects.exists()


def test_an_oversized_screenshot_is_refused_with_its_size(cast, client_for, settings):
    settings.TRAINING_SCREENSHOT_MAX_BYTES = 20_000
    response = client_for(cast.clinician).post(
        reverse("training:feedback_new"),
        {
            "viewer": "cloud_web",
            "kind": "tools",
            "severity": "slows",
            "description": "Kept text.",
            "screenshot": screenshot(noisy_png_bytes(30_000)),
        },
    )
    html = response.content.decode()
    assert "The screenshot is too large" in html and "the limit is 19.5 KB" in html
    assert "Kept text." in html
    assert not Feedback.objects.exists()


def test_a_good_screenshot_with_a_missing_field_asks_to_choose_it_again(cast, client_for):
    response = client_for(cast.clinician).post(
        reverse("training:feedback_new"),
        {
            "viewer": "cloud_web",
            "kind": "tools",
            "description": "No severity.",
            "screenshot": screenshot(),
        },
    )
    html = response.content.decode()
    assert "choose your screenshot again" in html and "No severity." in html


def test_the_api_refuses_a_non_image_screenshot(cast, client_for):
    response = client_for(cast.clinician).post(
        "/training/api/feedback/",
        {
            "viewer": "cloud_web",
            "kind": "tools",
            "severity": "slows",
            "description": "x",
            "screenshot": screenshot(b"GIF89a-but-broken", "x.gif", "image/gif"),
        },
    )
    assert response.status_code == 400
    assert "not an image" in str(response.json()["screenshot"])


def test_the_api_accepts_feedback_with_a_screenshot(cast, client_for):
    response = client_for(cast.clinician).post(
        "/training/api/feedback/",
        {
            "viewer": "mobile",
            "kind": "speed",
            "severity": "slows",
            "description": "Slow.",
            "screenshot": screenshot(),
        },
    )
    assert response.status_code == 201 and response.json()["has_screenshot"] is True


# --- closing the loop -------------------------------------------------------------------


def test_the_clinician_sees_the_reply_and_the_status(cast, client_for):
    feedback = suggestion(cast.clinician)
    actions.triage_feedback(feedback.pk, cast.pm, themes=["Measurement"])
    actions.reply_to_feedback(feedback.pk, cast.pm, "Coming in release 2.", status="in_progress")
    page = client_for(cast.clinician).get(reverse("training:feedback_mine")).content.decode()
    assert "Coming in release 2." in page and "Being worked on" in page


def test_clinicians_cannot_triage_or_reply(cast, client_for):
    feedback = suggestion(cast.clinician)
    client = client_for(cast.clinician)
    url = reverse("training:feedback_reply", args=[feedback.pk])
    assert client.post(url, {"reply": "Fixed it myself"}).status_code == 403
    api = client.post(f"/training/api/feedback/{feedback.pk}/reply/", {"reply": "x"})
    assert api.status_code == 403


def test_status_moves_follow_the_transition_table(cast):
    feedback = suggestion(cast.clinician)
    actions.triage_feedback(feedback.pk, cast.pm, status="closed")
    with pytest.raises(TrainingError, match="closed cannot become triaged"):
        actions.triage_feedback(feedback.pk, cast.pm, status="triaged")


def test_the_dashboard_shows_volume_kinds_and_top_themes(cast, client_for):
    for text in ("a", "b"):
        feedback = suggestion(cast.clinician, text)
        actions.triage_feedback(feedback.pk, cast.pm, themes=["Measurement"])
    blocking(cast.clinician)
    page = client_for(cast.pm).get(reverse("training:feedback_dashboard")).content.decode()
    assert page.count("<svg") == 2
    assert ">Measurement</a></th><td>2</td><td>2</td>" in page
    stats = client_for(cast.pm).get("/training/api/feedback/stats/").json()
    assert stats["by_kind"]["tools"]["suggestion"] == 2
    assert stats["summary"]["blocking_open"] == 1
    assert sum(stats["volume"][-1]["counts"].values()) == 3


def test_staff_follow_blocking_feedback_to_its_ticket(
    cast, client_for, django_capture_on_commit_callbacks
):
    from desk.models import Ticket

    with django_capture_on_commit_callbacks(execute=True):
        feedback = blocking(cast.clinician)
    ticket = Ticket.objects.get(cause=f"feedback.{feedback.pk}")
    page = client_for(cast.staff).get(reverse("training:feedback", args=[feedback.pk]))
    assert f'href="/command-center/tickets/{ticket.pk}/">open the ticket' in page.content.decode()
