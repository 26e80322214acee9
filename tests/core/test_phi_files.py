"""Patient images and files (ticket attachments, viewer-test screenshots, checklist
evidence) are served only to roles with view_phi, every view is recorded, nothing is
cached, and an upload is an image only when Pillow decodes it."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from core.models import PHIAccess
from cutover import actions as cutover_actions
from cutover.models import ChecklistItem
from desk.models import Attachment
from tests.cutover import world
from tests.cutover.conftest import integration  # noqa: F401
from tests.desk.ticketing import open_ticket

pytestmark = pytest.mark.django_db
API = "/command-center/api/tickets/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def png(name="shot.png"):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def assert_served_privately(response, user, what):
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert PHIAccess.objects.filter(user=user, what=what).count() == 1


def test_a_ticket_attachment_is_served_no_store_and_recorded(cast, client_for):
    ticket = open_ticket()
    client_for(cast.staff).post(f"{API}{ticket.pk}/attachments/", {"file": png("DOE^JANE.png")})
    item = Attachment.objects.get()
    assert "DOE" not in item.name and "JANE" not in item.name
    served = client_for(cast.lead).get(f"/command-center/attachments/{item.pk}/")
    assert_served_privately(served, cast.lead, "desk.attachment")
    assert "DOE" not in served["Content-Disposition"]


def test_viewer_screenshots_and_evidence_need_view_phi_and_are_recorded(
    cast,
    client_for,
    integration,  # noqa: F811
):
    plan = cutover_actions.create_plan(integration, cast.pm)
    item = plan.stages.get(kind="prepare").items.first()
    evidence = SimpleUploadedFile("spec.pdf", b"signed interface specification v3")
    client_for(cast.pm).post(reverse("cutover:item_evidence", args=[item.pk]),
                             {"evidence_note": "v3", "evidence_file": evidence})  # fmt: skip
    assert ChecklistItem.objects.get(pk=item.pk).evidence_file
    world.legacy_viewers()
    case = cutover_actions.create_cloud_viewer({"name": "Cloud B"}, cast.pm).cases.first()
    client_for(cast.pm).post(reverse("cutover:case_record", args=[case.pk]),
                             {"result": "pass", "screenshot": png()})  # fmt: skip
    case.refresh_from_db()
    assert case.screenshot

    evidence_url = reverse("cutover:item_evidence_file", args=[item.pk])
    shot_url = reverse("cutover:case_screenshot", args=[case.pk])
    for url in (evidence_url, shot_url):
        assert client_for(cast.pm).get(url).status_code == 403  # view_roadmap, no view_phi
    assert not PHIAccess.objects.exists()
    assert_served_privately(client_for(cast.engineer).get(evidence_url), cast.engineer,
                            "cutover.evidence")  # fmt: skip
    assert_served_privately(client_for(cast.lead).get(shot_url), cast.lead,
                            "cutover.viewer_screenshot")  # fmt: skip


def test_a_viewer_screenshot_is_judged_by_decoding_it_not_by_its_name(cast, client_for):
    world.legacy_viewers()
    case = cutover_actions.create_cloud_viewer({"name": "Cloud C"}, cast.pm).cases.first()
    url = reverse("cutover:case_record", args=[case.pk])
    fake = SimpleUploadedFile("shot.png", b"\x89PNG\r\n\x1a\n but not an image at all")
    page = client_for(cast.pm).post(url, {"result": "pass", "screenshot": fake}, follow=True)
    assert "a screenshot is a PNG, JPEG or WebP image" in page.content.decode()
    case.refresh_from_db()
    assert not case.screenshot
    client_for(cast.pm).post(url, {"result": "pass", "screenshot": png("capture.bin")})
    case.refresh_from_db()
    assert case.screenshot
