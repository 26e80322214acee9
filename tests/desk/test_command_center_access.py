"""Who may do what in the command center: clinicians see none of its internals, staff
triage, only leads (and administrators) change escalation policies and the roster."""

import pytest

from core.access import can_subscribe
from desk.models import EscalationPolicy
from tests.desk.ticketing import open_ticket

EVERYONE = ("staff", "lead", "pm", "clinician", "engineer", "admin", "nobody")
BOARD_PAGES = [
    "/command-center/",
    "/command-center/overview/",
    "/command-center/breaches/",
    "/command-center/escalation/",
    "/command-center/board/columns/new/",
    "/command-center/tickets/{pk}/",
    "/command-center/api/tickets/",
    "/command-center/api/tickets/{pk}/",
    "/command-center/api/tickets/{pk}/history/",
    "/command-center/api/escalation-policies/",
    "/command-center/api/breaches/",
    "/command-center/api/priority-matrix/",
]
OTHER_PAGES = {
    "/command-center/tickets/new/": {"staff", "lead", "engineer", "admin"},
    "/command-center/roster/": {"staff", "lead", "pm", "engineer", "admin"},
    "/command-center/monitoring/": {"staff", "lead", "engineer", "admin"},
    "/command-center/reports/": {"staff", "lead", "pm", "admin"},
    "/command-center/reports/tickets.csv": {"staff", "lead", "pm", "admin"},
    "/command-center/api/on-call/": {"staff", "lead", "pm", "engineer", "admin"},
    "/command-center/api/open-ticket-counts/": {"staff", "lead", "pm", "admin"},
    "/command-center/api/monitoring/": {"staff", "lead", "engineer", "admin"},
}


def _expect(cast, client_for, path, allowed):
    for name in EVERYONE:
        status = client_for(getattr(cast, name)).get(path).status_code
        assert status == (200 if name in allowed else 403), f"{name} on {path}"


@pytest.mark.parametrize("path", BOARD_PAGES)
def test_only_the_command_center_roles_see_the_board_internals(cast, client_for, path):
    ticket = open_ticket()
    _expect(cast, client_for, path.format(pk=ticket.pk), {"staff", "lead", "admin"})


@pytest.mark.parametrize("path,allowed", OTHER_PAGES.items())
def test_each_command_center_page_is_for_the_roles_that_need_it(cast, client_for, path, allowed):
    _expect(cast, client_for, path, allowed)


def test_clinicians_cannot_subscribe_to_board_alert_or_monitoring_topics(cast):
    for topic in ("board", "alerts.migration", "monitoring", "monitoring.summary", "oncall"):
        assert not can_subscribe(cast.clinician, topic)
        assert can_subscribe(cast.staff, topic)


def test_staff_triage_moves_assigns_and_comments(cast, client_for):
    ticket = open_ticket()
    client = client_for(cast.staff)
    api = f"/command-center/api/tickets/{ticket.pk}/"
    assert client.post(api + "transition/", {"status": "acknowledged"}).status_code == 200
    response = client.patch(api, {"assignee": cast.staff.pk}, content_type="application/json")
    assert response.status_code == 200 and response.json()["assignee"] == cast.staff.pk
    assert client.post(api + "comments/", {"body": "On it"}).status_code == 201


@pytest.mark.parametrize("name", ["pm", "clinician", "engineer", "nobody"])
def test_other_roles_cannot_triage(cast, client_for, name):
    ticket = open_ticket()
    client = client_for(getattr(cast, name))
    api = f"/command-center/api/tickets/{ticket.pk}/"
    assert client.post(api + "transition/", {"status": "acknowledged"}).status_code == 403
    assert client.post(api + "comments/", {"body": "hi"}).status_code == 403
    response = client.post(
        f"/command-center/tickets/{ticket.pk}/status/", {"status": "acknowledged"}
    )
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == "new"


def _policy_payload():
    return {
        "name": "P3 nudge",
        "priority": "P3",
        "active": True,
        "repeat_times": 0,
        "repeat_after_minutes": 60,
        "steps": [
            {"order": 1, "after_minutes": 120, "condition": "unacknowledged", "target": "lead"}
        ],
    }


@pytest.mark.parametrize("name", ["staff", "pm", "clinician", "engineer"])
def test_only_leads_change_escalation_policies(cast, client_for, name):
    client = client_for(getattr(cast, name))
    url = "/command-center/api/escalation-policies/"
    assert client.post(url, _policy_payload(), content_type="application/json").status_code == 403
    assert client.get("/command-center/escalation/new/").status_code == 403
    assert client.post("/command-center/escalation/new/", {"name": "x"}).status_code == 403
    assert not EscalationPolicy.objects.filter(priority="P3").exists()


@pytest.mark.parametrize("name", ["lead", "admin"])
def test_leads_create_and_change_escalation_policies(cast, client_for, name):
    client = client_for(getattr(cast, name))
    url = "/command-center/api/escalation-policies/"
    response = client.post(url, _policy_payload(), content_type="application/json")
    assert response.status_code == 201, response.content
    policy = EscalationPolicy.objects.get(priority="P3")
    assert [s.after_minutes for s in policy.steps.all()] == [120]
    response = client.patch(
        f"{url}{policy.pk}/", {"repeat_times": 2}, content_type="application/json"
    )
    assert response.status_code == 200
    policy.refresh_from_db()
    assert policy.repeat_times == 2 and policy.steps.count() == 1


def test_a_lead_edits_a_policy_and_its_steps_in_the_form(cast, client_for):
    policy = EscalationPolicy.objects.create(name="P4 slow", priority="P4")
    step = policy.steps.create(order=1, after_minutes=600, condition="unresolved", target="lead")
    form = {
        "name": "P4 slow",
        "priority": "P4",
        "active": "on",
        "repeat_times": "1",
        "repeat_after_minutes": "120",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "1",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-id": str(step.pk),
        "steps-0-order": "1",
        "steps-0-after_minutes": "480",
        "steps-0-condition": "unresolved",
        "steps-0-target": "lead",
        "steps-1-order": "2",
        "steps-1-after_minutes": "700",
        "steps-1-condition": "unresolved",
        "steps-1-target": "person",
        "steps-1-person": "",
    }
    client = client_for(cast.lead)
    response = client.post(f"/command-center/escalation/{policy.pk}/", form)
    assert response.status_code == 200 and "Choose the person" in response.content.decode()
    form["steps-1-person"] = str(cast.staff.pk)
    response = client.post(f"/command-center/escalation/{policy.pk}/", form)
    assert response.status_code == 302
    assert [(s.after_minutes, s.target) for s in policy.steps.all()] == [
        (480, "lead"),
        (700, "person"),
    ]


def test_only_leads_add_roster_overrides(cast, client_for):
    from desk.models import Override, Rotation

    rotation = Rotation.objects.create(
        name="Primary", role_label="Primary", starts_at="2026-03-01T07:00Z"
    )
    form = {
        "rotation": rotation.pk,
        "user": cast.staff.pk,
        "starts_at": "2026-03-02T07:00",
        "ends_at": "2026-03-02T19:00",
        "reason": "swap",
    }
    assert client_for(cast.staff).post("/command-center/roster/overrides/", form).status_code == 403
    assert client_for(cast.lead).post("/command-center/roster/overrides/", form).status_code == 302
    assert Override.objects.get().user == cast.staff
