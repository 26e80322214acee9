"""Pages and permissions per role: project managers edit, engineers and leads read."""

import io

import pytest
from django.urls import reverse
from PIL import Image

from cutover import actions
from cutover.models import ChecklistItem, CloudViewer, Roadmap, Task
from tests.cutover import world
from tests.cutover.factories import START, task, worked_example

pytestmark = pytest.mark.django_db


@pytest.fixture
def roadmap():
    return worked_example()


def test_readers_see_the_roadmap_and_its_gantt(client_for, cast, roadmap):
    for user in (cast.pm, cast.engineer, cast.lead, cast.admin):
        page = client_for(user).get(reverse("cutover:roadmap", args=[roadmap.pk]))
        assert page.status_code == 200
        assert b'<svg xmlns="http://www.w3.org/2000/svg" class="gantt"' in page.content
        assert b"Fri 20 Mar 2026" in page.content  # the go-live


def test_people_without_view_roadmap_are_refused(client_for, cast, roadmap):
    for user in (cast.staff, cast.clinician, cast.nobody):
        client = client_for(user)
        assert client.get(reverse("cutover:index")).status_code == 403
        assert client.get(reverse("cutover:roadmap", args=[roadmap.pk])).status_code == 403
        assert client.get(reverse("cutover:readiness")).status_code == 403


def test_the_login_is_required(client, roadmap):
    page = client.get(reverse("cutover:roadmap", args=[roadmap.pk]))
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]


def test_only_editors_see_the_edit_controls(client_for, cast, roadmap):
    url = reverse("cutover:roadmap", args=[roadmap.pk])
    assert b"Add task" in client_for(cast.pm).get(url).content
    assert b"Add task" not in client_for(cast.engineer).get(url).content


def test_an_engineer_cannot_change_the_roadmap(client_for, cast, roadmap):
    client = client_for(cast.engineer)
    b = task(roadmap, "B")
    assert client.post(reverse("cutover:task_edit", args=[b.pk]), {"name": "x"}).status_code == 403
    assert (
        client.post(
            reverse("cutover:baseline_create", args=[roadmap.pk]), {"name": "b"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("cutover:create_from_template"), {"name": "n", "start_date": "2026-01-05"}
        ).status_code
        == 403
    )
    assert task(roadmap, "B").name == "Task B"


def test_a_project_manager_creates_the_template_roadmap_in_one_click(client_for, cast):
    response = client_for(cast.pm).post(
        reverse("cutover:create_from_template"), {"name": "Hospital", "start_date": "2026-01-05"}
    )
    roadmap = Roadmap.objects.get(name="Hospital")
    assert response.status_code == 302 and response["Location"] == f"/roadmap/{roadmap.pk}/"
    assert roadmap.created_by == cast.pm and roadmap.tasks.count() > 30


def test_the_edit_preview_says_how_go_live_moves_before_saving(client_for, cast, roadmap):
    b = task(roadmap, "B")
    form = {"name": b.name, "workstream": b.workstream_id, "kind": "task", "duration": 6}
    form.update(percent_complete=0, status="not_started", measure_params="{}")
    preview = client_for(cast.pm).post(reverse("cutover:task_preview", args=[b.pk]), form)
    assert b"This moves go-live by 3 working days" in preview.content
    assert task(roadmap, "B").duration == 3
    saved = client_for(cast.pm).post(reverse("cutover:task_edit", args=[b.pk]), form, follow=True)
    assert b"Saved B: this moves go-live by 3 working days." in saved.content
    assert task(roadmap, "M").early_start.isoformat() == "2026-03-25"


def test_a_cycle_added_from_the_page_is_refused_with_its_name(client_for, cast, roadmap):
    a, m = task(roadmap, "A"), task(roadmap, "M")
    page = client_for(cast.pm).post(
        reverse("cutover:dependency_add", args=[a.pk]),
        {"predecessor": m.pk, "kind": "FS", "lag": 0},
        follow=True,
    )
    assert "refused: dependency cycle: A Task A → " in page.content.decode()


def test_csv_export_and_a_bad_import_page(client_for, cast, roadmap):
    client = client_for(cast.pm)
    export = client.get(reverse("cutover:export_csv", args=[roadmap.pk]))
    assert export["Content-Type"].startswith("text/csv") and b"A SS+1" in export.content
    bad = io.BytesIO(b"code,workstream,name,duration\nZ,Work,Zed,lots\n")
    bad.name = "tasks.csv"
    page = client.post(reverse("cutover:import_csv", args=[roadmap.pk]), {"file": bad})
    assert "line 2: duration must be a whole number" in page.content.decode()
    assert not Task.objects.filter(code="Z").exists()


def test_the_gantt_svg_zooms_and_shows_baseline_ghosts(client_for, cast, roadmap):
    baseline = actions.save_baseline(roadmap, "v1", cast.pm)
    url = reverse("cutover:gantt_svg", args=[roadmap.pk])
    svg = client_for(cast.engineer).get(url, {"zoom": "month", "baseline": baseline.pk})
    assert svg["Content-Type"] == "image/svg+xml"
    assert b'data-zoom="month"' in svg.content and b'class="ghost"' in svg.content


def test_the_baseline_page_highlights_slips(client_for, cast, roadmap):
    baseline = actions.save_baseline(roadmap, "v1", cast.pm)
    actions.save_task(task(roadmap, "B"), {"duration": 6}, cast.pm)
    page = client_for(cast.lead).get(reverse("cutover:baseline", args=[baseline.pk]))
    text = page.content.decode()
    assert "<strong>3</strong> tasks finish later than in the baseline" in text
    assert 'class="slipped milestone" data-code="M"' in text


def test_signing_from_the_plan_page_needs_edit_roadmap(client_for, cast, integration):
    plan = actions.create_plan(integration, cast.pm)
    item = plan.stages.get(kind="prepare").items.first()
    url = reverse("cutover:item_sign", args=[item.pk])
    assert client_for(cast.engineer).post(url).status_code == 403
    assert client_for(cast.pm).post(url).status_code == 302
    assert ChecklistItem.objects.get(pk=item.pk).signed_by == cast.pm
    page = client_for(cast.engineer).get(reverse("cutover:plan", args=[plan.pk]))
    assert "signed by pm" in page.content.decode()


def test_opening_a_gate_with_unsigned_items_from_the_page_says_why(client_for, cast, integration):
    plan = actions.create_plan(integration, cast.pm)
    stage = plan.stages.get(kind="prepare")
    page = client_for(cast.pm).post(reverse("cutover:gate_open", args=[stage.pk]), follow=True)
    assert "the Prepare gate stays closed: 4 unsigned" in page.content.decode()


def test_viewer_pages_and_the_matrix(client_for, cast):
    world.legacy_viewers()
    client = client_for(cast.pm)
    response = client.post(reverse("cutover:viewer_create"), {"name": "Cloud A"})
    viewer = CloudViewer.objects.get(name="Cloud A")
    assert response["Location"] == f"/roadmap/viewers/{viewer.pk}/"
    assert viewer.cases.count() == 4
    case = viewer.cases.get(capability__code="mpr")
    no_owner = client.post(
        reverse("cutover:case_record", args=[case.pk]), {"result": "gap"}, follow=True
    )
    assert "a failure or gap needs an owner" in no_owner.content.decode()
    client.post(
        reverse("cutover:case_record", args=[case.pk]),
        {"result": "gap", "gap_owner": "Vendor", "gap_solution": "MPR in release 5", "notes": "n"},
    )
    matrix = client_for(cast.engineer).get(reverse("cutover:viewer_matrix")).content.decode()
    assert "Legacy PACS workstation" in matrix and "Gap (missing)" in matrix


def test_the_readiness_page_shows_every_criterion_and_the_verdict(client_for, cast):
    page = client_for(cast.engineer).get(reverse("cutover:readiness")).content.decode()
    assert 'data-live-topic="cutover.readiness"' in page
    assert 'class="verdict no-go"' in page
    assert page.count('class="criterion ') == 12
    assert (
        b"Change a threshold"
        not in client_for(cast.engineer).get(reverse("cutover:readiness")).content
    )


def test_an_empty_roadmap_can_be_started_and_given_tasks(client_for, cast):
    client = client_for(cast.pm)
    client.post(reverse("cutover:create_roadmap"), {"name": "Small", "start_date": START})
    roadmap = Roadmap.objects.get(name="Small")
    client.post(reverse("cutover:add_workstream", args=[roadmap.pk]), {"name": "Only"})
    stream = roadmap.workstreams.get()
    client.post(
        reverse("cutover:task_new", args=[roadmap.pk]),
        {
            "name": "First",
            "workstream": stream.pk,
            "kind": "task",
            "duration": 3,
            "percent_complete": 0,
            "status": "not_started",
            "measure_params": "",
        },
    )
    first = roadmap.tasks.get()
    assert first.code == "T1" and first.early_finish.isoformat() == "2026-03-04"


def test_evidence_and_screenshots_are_uploaded_checked_and_served_to_readers(
    client_for, cast, integration, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    plan = actions.create_plan(integration, cast.pm)
    item = plan.stages.get(kind="prepare").items.first()
    evidence = io.BytesIO(b"signed interface specification v3")
    evidence.name = "spec.pdf"
    client_for(cast.pm).post(
        reverse("cutover:item_evidence", args=[item.pk]),
        {"evidence_note": "spec v3 agreed", "evidence_file": evidence},
    )
    item = ChecklistItem.objects.get(pk=item.pk)
    assert item.evidence_note == "spec v3 agreed" and item.evidence_file
    download = client_for(cast.engineer).get(reverse("cutover:item_evidence_file", args=[item.pk]))
    assert b"".join(download.streaming_content) == b"signed interface specification v3"

    world.legacy_viewers()
    viewer = actions.create_cloud_viewer({"name": "Cloud B"}, cast.pm)
    case = viewer.cases.first()
    url = reverse("cutover:case_record", args=[case.pk])
    fake = io.BytesIO(b"MZ not an image")
    fake.name = "shot.exe"
    page = client_for(cast.pm).post(url, {"result": "pass", "screenshot": fake}, follow=True)
    assert "a screenshot is a PNG, JPEG or WebP image" in page.content.decode()
    shot = io.BytesIO()
    Image.new("RGB", (4, 4)).save(shot, format="PNG")
    shot.seek(0)
    shot.name = "shot.png"
    client_for(cast.pm).post(url, {"result": "pass", "notes": "fine", "screenshot": shot})
    case.refresh_from_db()
    assert case.result == "pass" and case.tester == cast.pm and case.screenshot
    served = client_for(cast.lead).get(reverse("cutover:case_screenshot", args=[case.pk]))
    assert b"".join(served.streaming_content).startswith(b"\x89PNG")
