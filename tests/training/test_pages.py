"""Every training page per role, the support page, what's new, people and session forms."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from training import actions
from training.models import ClinicianProfile, Department, Highlight, TrainingSession

EVERYONE = ["staff", "lead", "pm", "clinician", "engineer", "admin"]
PROJECT_TEAM = ["pm", "lead", "admin"]

OPEN_PAGES = [
    "training:index",
    "training:sessions",
    "training:mine",
    "training:competencies",
    "training:readiness",
    "training:feedback_new",
    "training:feedback_mine",
    "training:whats_new",
    "training:support",
]
TEAM_PAGES = ["training:session_new", "training:people", "training:highlight_new"]
FEEDBACK_PAGES = ["training:feedback_queue", "training:feedback_dashboard"]


def status_for(client_for, user, name):
    return client_for(user).get(reverse(name)).status_code


@pytest.mark.parametrize("name", OPEN_PAGES)
def test_clinical_pages_open_to_every_role_but_not_to_people_without_one(cast, client_for, name):
    assert {role: status_for(client_for, getattr(cast, role), name) for role in EVERYONE} == {
        role: 200 for role in EVERYONE
    }
    assert status_for(client_for, cast.nobody, name) == 403


@pytest.mark.parametrize("name", TEAM_PAGES)
def test_editing_pages_are_for_the_project_team(cast, client_for, name):
    allowed = {role: status_for(client_for, getattr(cast, role), name) == 200 for role in EVERYONE}
    assert allowed == {role: role in PROJECT_TEAM for role in EVERYONE}


@pytest.mark.parametrize("name", FEEDBACK_PAGES)
def test_feedback_overviews_are_for_the_team_leads_and_command_center(cast, client_for, name):
    allowed = {role: status_for(client_for, getattr(cast, role), name) == 200 for role in EVERYONE}
    assert allowed == {role: role in {*PROJECT_TEAM, "staff"} for role in EVERYONE}


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("training:feedback_new"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_support_shows_a_fallback_when_nobody_is_on_the_roster(cast, client_for):
    page = client_for(cast.clinician).get(reverse("training:support")).content.decode()
    assert "Command-center service desk" in page


def test_support_shows_who_is_on_call_from_the_roster(cast, client_for):
    from desk.models import Rotation, RotationMember

    rotation = Rotation.objects.create(
        name="Primary", role_label="Primary on call", starts_at=timezone.now() - timedelta(hours=1)
    )
    RotationMember.objects.create(rotation=rotation, user=cast.staff, position=0, contact="x4357")
    page = client_for(cast.clinician).get(reverse("training:support")).content.decode()
    assert '<strong>staff</strong>, Primary on call: <span class="contact">x4357</span>' in page
    assert "Command-center service desk" not in page


def test_support_names_the_lead_users_of_my_department_first(clinician_in, client_for):
    clinician_in("Radiology", "rad_lead", lead=True)
    clinician_in("Cardiology", "cardio_lead", lead=True)
    me = clinician_in("Radiology", "me")
    page = client_for(me).get(reverse("training:support")).content.decode()
    assert "rad_lead" in page and "cardio_lead" not in page


def test_the_project_team_publishes_a_highlight_that_clinicians_read(cast, client_for):
    response = client_for(cast.pm).post(
        reverse("training:highlight_new"),
        {"title": "Side-by-side priors", "body": "Drag a prior next to the current study."},
        follow=True,
    )
    assert response.status_code == 200
    assert Highlight.objects.get().author == cast.pm
    page = client_for(cast.clinician).get(reverse("training:whats_new")).content.decode()
    assert "Side-by-side priors" in page and "Add a highlight" not in page
    post = client_for(cast.clinician).post(reverse("training:highlight_new"), {"title": "x"})
    assert post.status_code == 403


def test_the_project_team_marks_a_lead_user(cast, client_for):
    client = client_for(cast.pm)
    client.post(reverse("training:people"), {"name": "Radiology"})
    radiology = Department.objects.get(name="Radiology")
    prefix = f"p{cast.clinician.pk}"
    client.post(
        reverse("training:person_update", args=[cast.clinician.pk]),
        {
            f"{prefix}-department": radiology.pk,
            f"{prefix}-is_lead": "on",
            f"{prefix}-contact": "x1",
        },
    )
    profile = ClinicianProfile.objects.get(user=cast.clinician)
    assert (profile.department, profile.is_lead, profile.contact) == (radiology, True, "x1")


def test_a_clinician_sets_their_own_department(cast, client_for):
    radiology = Department.objects.create(name="Radiology")
    client_for(cast.clinician).post(reverse("training:mine"), {"department": radiology.pk})
    assert ClinicianProfile.objects.get(user=cast.clinician).department == radiology


def test_a_session_in_the_past_is_refused_and_the_form_keeps_its_values(cast, client_for, module):
    yesterday = timezone.localtime() - timedelta(days=1)
    data = {
        "module": module.pk,
        "title": "Hands-on",
        "starts_at": yesterday.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (yesterday + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "location": "Room 4",
        "capacity": 8,
    }
    page = client_for(cast.pm).post(reverse("training:session_new"), data).content.decode()
    assert "Schedule new sessions in the future." in page
    assert 'value="Hands-on"' in page and 'value="Room 4"' in page
    assert not TrainingSession.objects.exists()


def test_the_project_team_creates_a_session_and_it_is_announced(
    cast, client_for, module, heard, django_capture_on_commit_callbacks
):
    tomorrow = timezone.localtime() + timedelta(days=1)
    data = {
        "module": module.pk,
        "starts_at": tomorrow.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (tomorrow + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "virtual_link": "https://meet.hospital.test/7",
        "capacity": 8,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.pm).post(reverse("training:session_new"), data)
    session = TrainingSession.objects.get()
    assert response["Location"] == reverse("training:session", args=[session.pk])
    activity = [m for t, m in heard if t == "training"]
    assert activity and "New training session: Cloud viewer essentials" in activity[0]["html"]


def test_the_sessions_page_shows_seats_and_my_place(cast, client_for, new_session):
    session = new_session(capacity=1)
    actions.enrol(session.pk, cast.pm)
    actions.enrol(session.pk, cast.clinician)
    page = client_for(cast.clinician).get(reverse("training:sessions")).content.decode()
    assert '<strong class="full">Full</strong> (1 seat) · 1 on the waitlist' in page
    assert "You are on the waitlist" in page and "Leave the waitlist" in page


def test_feedback_sent_from_the_page_thanks_and_says_when_the_command_center_knows(
    cast, client_for
):
    response = client_for(cast.clinician).post(
        reverse("training:feedback_new"),
        {"viewer": "cloud_web", "kind": "access", "severity": "blocks", "description": "Locked"},
        follow=True,
    )
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("training:feedback_mine")
    assert "your feedback #" in html and "the command center was alerted at once" in html


def test_a_session_for_clinicians_says_so_and_offers_no_button_to_others(
    cast, client_for, new_session
):
    from django.contrib.auth.models import Group

    session = new_session()
    session.audience_roles.add(Group.objects.get(name="clinician"))
    url = reverse("training:session", args=[session.pk])
    mine = client_for(cast.clinician).get(url).content.decode()
    assert "<dt>For</dt><dd>Clinician</dd>" in mine and "Enrol in" in mine
    other = client_for(cast.engineer).get(url).content.decode()
    assert "This session is for another audience" in other and "Enrol in" not in other
