"""The role × route matrix: every route the URL resolver knows (DRF routers included),
every method it answers, requested as every role and anonymously; each answer must match
the access rule the view declares (core.access.RULES)."""

import pytest

from core.access import PUBLIC, holds
from tests.conftest import CAST
from tests.core.pages import inline_scripts, page_problems
from tests.core.routes import ADMIN_SITE, declared_rules, methods, routes

ROLES = ["anonymous", *CAST]
LOGIN_PAGES = ("/accounts/login/", "/admin/login/")
HEALTH = ("/healthz", "/api/health/")  # 503 is their answer while a worker is missing


def test_every_route_declares_an_access_rule_for_every_method():
    undeclared = []
    for route in routes():
        for method in methods(route):
            try:
                declared_rules(route, method)
            except LookupError as exc:
                undeclared.append(str(exc))
    assert undeclared == []


def test_the_matrix_covers_hundreds_of_routes():
    checked = [(r, m) for r in routes() for m in methods(r)]
    assert len(checked) > 300


def _expected(route, rules, user):
    """'allow', 'login' (sent to log in: 302 for pages, 401 for the API) or 'deny' (403)."""
    if all(rule == PUBLIC for rule in rules):
        return "allow"
    if user is None:
        return "login"
    if ADMIN_SITE in rules:
        return "allow" if user.is_staff and user.is_active else "login"
    return "allow" if all(holds(user, rule) for rule in rules) else "deny"


def _outcome(response):
    location = response.get("Location", "")
    to_login = location.startswith(LOGIN_PAGES) or location == "/admin/"  # admin: its index
    if response.status_code == 401 or (response.status_code == 302 and to_login):
        return "login"
    return "deny" if response.status_code == 403 else "allow"


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_as_its_rule_says(role, cast, client, settings):
    user = None if role == "anonymous" else getattr(cast, role)
    wrong = []
    for route in routes():
        for method in methods(route):
            if user is not None:
                client.force_login(user)
            expected = _expected(route, declared_rules(route, method), user)
            try:
                response = _send(client, method, route.path)
            except Exception as exc:  # the test client re-raises a view's exception
                wrong.append(f"{method.upper()} {route.path}: raised {exc!r}")
                continue
            failed = response.status_code >= 500 and route.path not in HEALTH  # 503: down
            if expected != _outcome(response) or failed:
                answer = f"{response.status_code} {response.get('Location', '')}"
                wrong.append(f"{method.upper()} {route.path}: {answer}, expected {expected}")
            wrong.extend(f"{route.path}: {problem}" for problem in page_problems(response))
    assert wrong == [], "\n".join(wrong)


def _send(client, method, path):
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, data="{}", content_type="application/json")


def test_the_page_check_finds_inline_scripts_handlers_and_javascript_urls():
    html = '<script>x()</script><script src="/s.js"></script><a href="javascript:x()" onclick="y">'
    assert len(inline_scripts(html)) == 3
    assert inline_scripts('<script src="/static/js/live.js" defer></script>') == []
