"""The training REST API: sessions and enrolment, sign-offs, modules, highlights, schema."""

from datetime import timedelta

from django.utils import timezone

from training import actions

API = "/training/api"


def test_enrolment_through_the_api_reports_seat_waitlist_and_conflicts(
    cast, client_for, new_session
):
    session = new_session(capacity=1)
    pm = client_for(cast.pm).post(f"{API}/sessions/{session.pk}/enrol/")
    assert pm.status_code == 201 and pm.json()["status"] == "enrolled"
    clinician = client_for(cast.clinician)
    assert clinician.post(f"{API}/sessions/{session.pk}/enrol/").json()["status"] == "waitlisted"
    again = clinician.post(f"{API}/sessions/{session.pk}/enrol/")
    assert again.status_code == 409
    assert again.json() == {"detail": "You are already on the waitlist for this session."}
    assert clinician.post(f"{API}/sessions/999/enrol/").status_code == 404


def test_cancelling_through_the_api_hands_the_seat_on(cast, client_for, new_session):
    session = new_session(capacity=1)
    actions.enrol(session.pk, cast.pm)
    actions.enrol(session.pk, cast.clinician)
    assert client_for(cast.pm).post(f"{API}/sessions/{session.pk}/cancel/").status_code == 200
    mine = client_for(cast.clinician).get(f"{API}/my/enrolments/").json()
    assert [e["status"] for e in mine] == ["enrolled"]


def test_a_past_session_refuses_enrolment_with_a_message(cast, client_for, new_session):
    session = new_session(starts_in=timedelta(days=-1))
    response = client_for(cast.clinician).post(f"{API}/sessions/{session.pk}/enrol/")
    assert response.status_code == 400 and "already started" in response.json()["detail"]


def test_sessions_list_shows_seats(cast, client_for, new_session):
    session = new_session(capacity=3)
    actions.enrol(session.pk, cast.pm)
    rows = client_for(cast.clinician).get(f"{API}/sessions/").json()["results"]
    assert rows[0]["seats"]["seats_left"] == 2 and rows[0]["name"] == "Cloud viewer essentials"


def test_the_trainer_reads_the_roster_and_records_attendance(cast, client_for, new_session):
    session = new_session(trainer=cast.engineer)
    actions.enrol(session.pk, cast.clinician)
    session.starts_at = timezone.now() - timedelta(minutes=5)
    session.save()
    trainer = client_for(cast.engineer)
    assert [e["user"] for e in trainer.get(f"{API}/sessions/{session.pk}/roster/").json()] == [
        "clinician"
    ]
    body = {"present": [cast.clinician.pk]}
    response = trainer.post(f"{API}/sessions/{session.pk}/attendance/", body, "application/json")
    assert response.json() == {"present": 1, "absent": 0}
    other = client_for(cast.clinician).get(f"{API}/sessions/{session.pk}/roster/")
    assert other.status_code == 403


def test_the_project_team_creates_modules_and_sessions(cast, client_for):
    client = client_for(cast.pm)
    module = client.post(
        f"{API}/modules/",
        {"title": "Reporting", "items": ["Open a worklist", "Sign a report"]},
        "application/json",
    )
    assert module.status_code == 201 and len(module.json()["items"]) == 2
    starts = timezone.now() + timedelta(days=3)
    session = client.post(
        f"{API}/sessions/",
        {
            "module": module.json()["id"],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "location": "Room 1",
            "capacity": 4,
        },
        "application/json",
    )
    assert session.status_code == 201, session.json()
    refused = client_for(cast.clinician).post(f"{API}/modules/", {"title": "x", "items": ["y"]})
    assert refused.status_code == 403


def test_sign_off_through_the_api_checks_permission(clinician_in, client_for, module):
    lead = clinician_in("Radiology", "rad_lead", lead=True)
    colleague = clinician_in("Radiology", "rad_colleague")
    items = list(module.items.values_list("pk", flat=True))
    body = {"module": module.pk, "clinician": colleague.pk, "items": items}
    refused = client_for(colleague).post(
        f"{API}/sign-offs/", {**body, "clinician": lead.pk}, "application/json"
    )
    assert refused.status_code == 403
    done = client_for(lead).post(f"{API}/sign-offs/", body, "application/json")
    assert done.status_code == 201 and done.json()["signed_by"] == "rad_lead"
    mine = client_for(colleague).get(f"{API}/sign-offs/").json()["results"]
    assert [s["clinician"] for s in mine] == ["rad_colleague"]


def test_highlights_are_read_by_all_and_written_by_the_team(cast, client_for):
    created = client_for(cast.pm).post(f"{API}/highlights/", {"title": "New", "body": "Text"})
    assert created.status_code == 201
    assert (
        client_for(cast.clinician)
        .post(f"{API}/highlights/", {"title": "x", "body": "y"})
        .status_code
        == 403
    )
    assert (
        client_for(cast.clinician).get(f"{API}/highlights/").json()["results"][0]["title"] == "New"
    )


def test_the_schema_documents_the_training_api(cast, client_for):
    schema = client_for(cast.admin).get("/api/schema/?format=json").json()
    for path in (
        "/training/api/sessions/{id}/enrol/",
        "/training/api/feedback/",
        "/training/api/readiness/",
        "/training/api/sign-offs/",
        "/training/api/feedback/stats/",
    ):
        assert path in schema["paths"], path


def test_the_project_team_adds_departments_and_marks_lead_users(cast, client_for):
    pm = client_for(cast.pm)
    department = pm.post(f"{API}/departments/", {"name": "Radiology"}).json()
    assert pm.post(f"{API}/departments/", {"name": "Radiology"}).status_code == 400
    body = {"department": department["id"], "is_lead": True, "contact": "x2020"}
    changed = pm.patch(f"{API}/profiles/{cast.clinician.pk}/", body, "application/json")
    assert changed.json() == {"user": "clinician", **body}
    assert pm.get(f"{API}/profiles/").json()["results"][0]["is_lead"] is True
    assert client_for(cast.clinician).get(f"{API}/profiles/").status_code == 403


def test_the_trainer_adds_a_file_and_clinicians_download_it_after_login(
    cast, client_for, new_session, client
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    session = new_session(trainer=cast.engineer)
    upload = SimpleUploadedFile("quick guide.pdf", b"%PDF-1.4 guide", "application/pdf")
    added = client_for(cast.engineer).post(
        f"{API}/sessions/{session.pk}/materials/", {"title": "Quick guide", "file": upload}
    )
    assert added.status_code == 201 and added.json()["has_file"] is True
    refused = client_for(cast.clinician).post(
        f"{API}/sessions/{session.pk}/materials/", {"title": "x", "url": "https://x.test"}
    )
    assert refused.status_code == 403
    material_url = f"/training/materials/{added.json()['id']}/"
    download = client_for(cast.clinician).get(material_url)
    assert b"".join(download.streaming_content) == b"%PDF-1.4 guide"
    client.logout()
    assert client.get(material_url).status_code == 302
