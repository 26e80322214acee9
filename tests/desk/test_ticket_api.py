"""Tickets through the REST API and the staff form: intake, edits, moves, comments,
screenshots (checked by content and size), history, and the OpenAPI schema."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from desk import tickets
from desk.models import Attachment, Ticket
from tests.desk.ticketing import minutes, open_ticket

API = "/command-center/api/tickets/"


def png(size=(16, 16), name="shot.png"):
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_another_system_opens_a_ticket_through_the_api(cast, client_for):
    response = client_for(cast.engineer).post(
        API,
        {
            "title": "HL7 feed to RIS stalled",
            "category": "integration",
            "impact": "high",
            "urgency": "high",
            "links": {"integration": 4},
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["priority"], body["status"], body["source"]) == ("P1", "new", "api")
    assert body["sla"]["kind"] == "acknowledge" and body["team"] == "integration"
    assert Ticket.objects.get().reporter == cast.engineer


def test_the_api_deduplicates_on_a_cause(cast, client_for):
    client = client_for(cast.engineer)
    payload = {"title": "Disk 90 % full", "cause": "nas.disk.full", "impact": "medium"}
    assert client.post(API, payload, content_type="application/json").status_code == 201
    again = client.post(API, payload, content_type="application/json")
    assert again.status_code == 200 and again.json()["occurrences"] == 2
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"title": ""}, "title"),
        ({"title": "x", "impact": "catastrophic"}, "impact"),
        ({"title": "x", "category": "gossip"}, "category"),
        ({"title": "x", "links": {"patient": "DOE^JANE"}}, "links"),
        ({"title": "x", "assignee": 99999}, "assignee"),
    ],
)
def test_bad_payloads_get_a_clear_error_and_open_nothing(cast, client_for, payload, field):
    response = client_for(cast.staff).post(API, payload, content_type="application/json")
    assert response.status_code == 400 and field in response.json()
    assert not Ticket.objects.exists()


def test_the_list_filters_like_the_board(cast, client_for):
    mine = open_ticket("Mine", impact="high", urgency="high", assignee=cast.staff)
    open_ticket("Other", impact="low", urgency="low")
    client = client_for(cast.staff)
    titles = lambda query: [t["title"] for t in client.get(API + query).json()["results"]]  # noqa: E731
    assert titles("?priority=P1") == ["Mine"]
    assert titles("?mine=1") == ["Mine"]
    assert titles(f"?assignee={cast.staff.pk}") == ["Mine"]
    assert titles("?breached=1") == ["Other", "Mine"]  # opened at T0, long ago
    tickets.transition(mine, "resolved", cast.staff)
    assert titles("?status=resolved") == ["Mine"]


def test_a_refused_move_answers_409_with_the_reason_and_changes_nothing(cast, client_for):
    ticket = open_ticket()
    response = client_for(cast.staff).post(
        f"{API}{ticket.pk}/transition/", {"status": "closed"}, content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "a ticket cannot go from New to Closed"
    ticket.refresh_from_db()
    assert ticket.status == "new"


def test_a_move_the_role_may_not_make_answers_403(cast, client_for):
    ticket = open_ticket()
    Ticket.objects.filter(pk=ticket.pk).update(status="closed")
    response = client_for(cast.staff).post(
        f"{API}{ticket.pk}/transition/", {"status": "in_progress"}, content_type="application/json"
    )
    assert response.status_code == 403 and "manage_escalation" in response.json()["detail"]


def test_the_history_records_who_changed_what_before_and_after(cast, client_for):
    ticket = open_ticket(reporter=cast.staff)
    client = client_for(cast.lead)
    client.patch(
        f"{API}{ticket.pk}/",
        {"urgency": "high", "assignee": cast.staff.pk},
        content_type="application/json",
    )
    client.post(f"{API}{ticket.pk}/transition/", {"status": "acknowledged"})
    history = client.get(f"{API}{ticket.pk}/history/").json()
    rows = [(h["actor"], h["kind"], h["field"], h["before"], h["after"]) for h in history]
    assert rows[0][:2] == ("staff", "created")
    assert ("lead", "changed", "urgency", "medium", "high") in rows
    assert ("lead", "changed", "priority", "P3", "P2") in rows
    assert ("lead", "changed", "assignee", "—", "staff") in rows
    assert ("lead", "status", "status", "New", "Acknowledged") in rows


def test_a_screenshot_is_kept_and_served_to_the_board_roles(cast, client_for):
    ticket = open_ticket()
    client = client_for(cast.staff)
    response = client.post(f"{API}{ticket.pk}/attachments/", {"file": png()})
    assert response.status_code == 201, response.content
    item = Attachment.objects.get()
    assert (item.content_type, item.name) == ("image/png", "shot.png")
    served = client.get(f"/command-center/attachments/{item.pk}/")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert (
        client_for(cast.clinician).get(f"/command-center/attachments/{item.pk}/").status_code == 403
    )


@pytest.mark.parametrize(
    "upload,message",
    [
        (
            SimpleUploadedFile("shot.png", b"MZ\x90\x00 not an image", "image/png"),
            "not a readable image",
        ),
        (SimpleUploadedFile("shot.png", b"BM" + b"\x00" * 64, "image/png"), "not a readable image"),
    ],
)
def test_a_file_that_is_not_an_image_is_refused_whatever_its_name(
    cast, client_for, upload, message
):
    ticket = open_ticket()
    response = client_for(cast.staff).post(f"{API}{ticket.pk}/attachments/", {"file": upload})
    assert response.status_code == 400 and message in response.json()["file"][0]
    assert not Attachment.objects.exists()


def test_an_image_of_another_type_or_too_big_is_refused(cast, client_for, monkeypatch):
    ticket = open_ticket()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="TIFF")
    tiff = SimpleUploadedFile("shot.png", buffer.getvalue(), "image/png")
    client = client_for(cast.staff)
    response = client.post(f"{API}{ticket.pk}/attachments/", {"file": tiff})
    assert response.status_code == 400 and "TIFF" in response.json()["file"][0]
    monkeypatch.setattr(tickets, "MAX_ATTACHMENT_BYTES", 100)
    response = client.post(f"{API}{ticket.pk}/attachments/", {"file": png((64, 64))})
    assert response.status_code == 400 and "at most" in response.json()["file"][0]
    assert not Attachment.objects.exists()


def test_the_staff_form_opens_a_ticket_with_links_and_a_screenshot(cast, client_for):
    response = client_for(cast.staff).post(
        "/command-center/tickets/new/",
        {
            "title": "Priors missing in ED viewer",
            "category": "missing_images",
            "department": "Emergency",
            "impact": "high",
            "urgency": "medium",
            "wave": "3",
            "screenshot": png(),
        },
    )
    ticket = Ticket.objects.get()
    assert (
        response.status_code == 302
        and response["Location"] == f"/command-center/tickets/{ticket.pk}/"
    )
    assert (ticket.priority, ticket.links, ticket.reporter) == ("P2", {"wave": 3}, cast.staff)
    assert ticket.attachments.count() == 1


def test_a_bad_screenshot_keeps_the_form_and_opens_nothing(cast, client_for):
    response = client_for(cast.staff).post(
        "/command-center/tickets/new/",
        {
            "title": "Priors missing",
            "category": "viewer",
            "impact": "high",
            "urgency": "medium",
            "screenshot": SimpleUploadedFile("x.png", b"garbage", "image/png"),
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="Priors missing"' in page and 'role="alert"' in page
    assert not Ticket.objects.exists()


def test_the_detail_page_shows_history_and_only_allowed_moves(cast, client_for):
    ticket = open_ticket("Viewer freezes", at=0)
    tickets.transition(ticket, "acknowledged", cast.staff, now=minutes(3))
    page = client_for(cast.staff).get(f"/command-center/tickets/{ticket.pk}/").content.decode()
    assert "New → Acknowledged" in page
    assert 'value="in_progress"' in page and 'value="closed"' not in page


def test_every_command_center_endpoint_is_in_the_openapi_schema(cast, client_for):
    schema = client_for(cast.staff).get("/api/schema/?format=json").json()
    for path in (
        "/command-center/api/tickets/",
        "/command-center/api/tickets/{id}/",
        "/command-center/api/tickets/{id}/transition/",
        "/command-center/api/tickets/{id}/attachments/",
        "/command-center/api/escalation-policies/",
        "/command-center/api/on-call/",
        "/command-center/api/open-ticket-counts/",
        "/command-center/api/monitoring/",
        "/command-center/api/reports/",
        "/command-center/api/notifications/",
    ):
        assert path in schema["paths"], path
