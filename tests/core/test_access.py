"""Who sees which page: every page needs login, and each section its role."""

import pytest
from django.contrib.auth.models import Group

from core.access import ROLES, can_subscribe, has_rule

PAGES = {
    "/": {"staff", "lead", "pm", "clinician", "engineer", "admin", "nobody"},
    "/inventory/": {"engineer", "pm", "lead", "admin"},
    "/migration/": {"engineer", "pm", "staff", "lead", "admin"},
    "/roadmap/": {"pm", "engineer", "lead", "admin"},
    "/command-center/": {"staff", "lead", "admin"},
    "/training/": {"staff", "lead", "pm", "clinician", "engineer", "admin"},
    "/api/me/": {"staff", "lead", "pm", "clinician", "engineer", "admin", "nobody"},
    "/api/schema/": {"staff", "lead", "pm", "clinician", "engineer", "admin", "nobody"},
}


@pytest.mark.django_db
def test_the_migration_creates_every_role_group():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


@pytest.mark.parametrize("path", [*PAGES, "/accounts/password/", "/admin/"])
def test_anonymous_visitors_are_sent_to_the_login_page_and_the_api_answers_401(client, db, path):
    response = client.get(path)
    if path.startswith("/api/"):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
    else:
        assert response.status_code == 302
        assert "/login/" in response["Location"]


@pytest.mark.parametrize("path,allowed", PAGES.items())
def test_each_role_sees_exactly_the_pages_it_needs(cast, client_for, path, allowed):
    for name in ("staff", "lead", "pm", "clinician", "engineer", "admin", "nobody"):
        response = client_for(getattr(cast, name)).get(path)
        expected = 200 if name in allowed else 403
        assert response.status_code == expected, f"{name} on {path}"


def test_navigation_shows_only_the_sections_a_clinician_may_open(cast, client_for):
    html = client_for(cast.clinician).get("/").content.decode()
    assert 'href="/training/"' in html
    assert 'href="/command-center/"' not in html
    assert 'href="/inventory/"' not in html


def test_a_superuser_holds_every_rule(db):
    from django.contrib.auth.models import User

    root = User.objects.create_superuser("root", "root@hospital.test", "x")
    assert has_rule(root, "manage_escalation") and has_rule(root, "view_phi")


def test_an_inactive_user_holds_no_rule(cast):
    cast.lead.is_active = False
    assert not has_rule(cast.lead, "view_board")


def test_unknown_rules_fail_loudly(cast):
    with pytest.raises(KeyError):
        has_rule(cast.admin, "view_evrything")


def test_topics_follow_the_rules_and_private_topics_belong_to_their_user(cast):
    assert can_subscribe(cast.staff, "board")
    assert not can_subscribe(cast.clinician, "board")
    assert can_subscribe(cast.clinician, "health")
    assert can_subscribe(cast.clinician, f"user.{cast.clinician.pk}")
    assert not can_subscribe(cast.clinician, f"user.{cast.staff.pk}")
    assert not can_subscribe(cast.admin, "nonsense.topic")


def test_phi_is_for_the_roles_that_need_it(cast):
    holders = {
        n
        for n in ("staff", "lead", "pm", "clinician", "engineer", "admin")
        if has_rule(getattr(cast, n), "view_phi")
    }
    assert holders == {"staff", "lead", "engineer", "admin"}


def test_login_logout_and_password_change_work(cast, client):
    from tests.conftest import PASSWORD

    response = client.post("/accounts/login/", {"username": "pm", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer new secret 42",
            "new_password2": "a much longer new secret 42",
        },
    )
    assert response.status_code == 302
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302
    response = client.post(
        "/accounts/login/", {"username": "pm", "password": "a much longer new secret 42"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
