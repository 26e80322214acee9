"""The REST API: roadmaps, tasks with go-live previews, dependencies, CSV, plans, readiness."""

import io

import pytest
from rest_framework.test import APIClient

from cutover import actions
from cutover.models import ChecklistItem, Roadmap
from tests.cutover.factories import task, worked_example

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    def as_user(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return as_user


def test_the_openapi_schema_lists_the_cutover_endpoints(client_for, cast):
    schema = client_for(cast.pm).get("/api/schema/", {"format": "json"}).json()
    for path in (
        "/roadmap/api/roadmaps/",
        "/roadmap/api/tasks/{id}/preview/",
        "/roadmap/api/dependencies/",
        "/roadmap/api/items/{id}/sign/",
        "/roadmap/api/stages/{id}/open/",
        "/roadmap/api/probes/{id}/run/",
        "/roadmap/api/readiness/",
    ):
        assert path in schema["paths"], path


def test_a_project_manager_creates_the_template_roadmap(api, cast):
    response = api(cast.pm).post(
        "/roadmap/api/roadmaps/",
        {"name": "Via API", "start_date": "2026-01-05", "template": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["go_live_date"] == "2026-05-12"
    tasks = api(cast.engineer).get(f"/roadmap/api/roadmaps/{response.json()['id']}/tasks/").json()
    gl1 = next(t for t in tasks if t["code"] == "GL1")
    assert gl1["critical"] and gl1["depends_on"][0]["kind"] == "FS"


def test_patching_a_task_answers_how_go_live_moved(api, cast):
    roadmap = worked_example()
    b = task(roadmap, "B")
    preview = api(cast.pm).post(
        f"/roadmap/api/tasks/{b.pk}/preview/", {"duration": 6}, format="json"
    )
    assert preview.json()["message"] == "this moves go-live by 3 working days"
    saved = api(cast.pm).patch(f"/roadmap/api/tasks/{b.pk}/", {"duration": 6}, format="json")
    assert saved.status_code == 200 and saved.json()["shift"] == 3
    assert task(roadmap, "M").early_start.isoformat() == "2026-03-25"


def test_a_cycle_is_a_400_naming_it(api, cast):
    roadmap = worked_example()
    response = api(cast.pm).post(
        "/roadmap/api/dependencies/",
        {"predecessor": task(roadmap, "E").pk, "successor": task(roadmap, "B").pk},
        format="json",
    )
    assert response.status_code == 400
    assert "dependency cycle" in response.json()["detail"][0]


def test_readers_may_read_but_not_write(api, cast):
    roadmap = worked_example()
    assert api(cast.engineer).get(f"/roadmap/api/roadmaps/{roadmap.pk}/").status_code == 200
    b = task(roadmap, "B")
    assert (
        api(cast.engineer).patch(f"/roadmap/api/tasks/{b.pk}/", {"duration": 1}).status_code == 403
    )
    assert api(cast.clinician).get("/roadmap/api/roadmaps/").status_code == 403
    assert APIClient().get("/roadmap/api/roadmaps/").status_code in (401, 403)


def test_csv_import_over_the_api_reports_bad_lines(api, cast):
    roadmap = worked_example()
    upload = io.BytesIO(b"code,workstream,name,duration\nQ,Work,Q,abc\n")
    upload.name = "t.csv"
    response = api(cast.pm).post(f"/roadmap/api/roadmaps/{roadmap.pk}/tasks.csv", {"file": upload})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"line": 2, "error": "duration must be a whole number, not 'abc'"}
    ]
    csv_text = api(cast.engineer).get(f"/roadmap/api/roadmaps/{roadmap.pk}/tasks.csv")
    assert csv_text.content.startswith(b"code,workstream,name")


def test_baselines_and_slips_over_the_api(api, cast):
    roadmap = worked_example()
    created = api(cast.pm).post(f"/roadmap/api/roadmaps/{roadmap.pk}/baselines/", {"name": "v1"})
    actions.save_task(task(roadmap, "B"), {"duration": 6}, cast.pm)
    slips = api(cast.lead).get(f"/roadmap/api/baselines/{created.json()['id']}/compare/").json()
    assert {s["code"]: s["finish_slip"] for s in slips if s["slipped"]} == {"B": 3, "E": 3, "M": 3}


def test_plans_sign_and_gates_over_the_api(api, cast, integration):
    response = api(cast.pm).post(
        "/roadmap/api/plans/", {"integration": integration.pk}, format="json"
    )
    assert response.status_code == 201
    stage = response.json()["stages"][0]
    refused = api(cast.pm).post(f"/roadmap/api/stages/{stage['id']}/open/")
    assert refused.status_code == 409 and "4 unsigned" in refused.json()["detail"][0]
    for item in stage["items"]:
        signed = api(cast.pm).post(f"/roadmap/api/items/{item['id']}/sign/")
        assert signed.json()["signed_name"] == "pm"
    opened = api(cast.pm).post(f"/roadmap/api/stages/{stage['id']}/open/")
    assert opened.status_code == 200 and opened.json()["gate_open"]
    assert ChecklistItem.objects.filter(signed_by=cast.pm).count() == 4


def test_readiness_over_the_api(api, cast):
    body = api(cast.engineer).get("/roadmap/api/readiness/").json()
    assert body["verdict"] == "NO-GO" and len(body["criteria"]) == 12
    migrated = next(c for c in body["criteria"] if c["key"] == "studies_migrated")
    assert migrated["evidence_url"] == "/migration/" and migrated["threshold"] == 100.0
    assert Roadmap.objects.count() == 0
