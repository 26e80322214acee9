"""Security findings, each attacked: secure defaults, lockout, tokens instead of Basic
authentication, two-factor, idle logoff, the Content-Security-Policy, throttling."""

import base64
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.throttling import UserRateThrottle

from core import tokens
from core.sessions import LAST_ACTIVITY
from tests.conftest import PASSWORD
from tests.fixtures_processes import REPO

PRODUCTION_ENV = {
    "SECRET_KEY": "a-production-like-secret-key-" + "k" * 40,
    "ALLOWED_HOSTS": "cc.hospital.example",
}


def _django(args, extra_env):
    names = ("DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_COOKIES")
    names += ("DJANGO_ALLOW_ASYNC_UNSAFE",)  # the tests need it; production must not have it
    env = {k: v for k, v in os.environ.items() if k not in names and k not in PRODUCTION_ENV}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


# -- secure by default -----------------------------------------------------------------------


def test_debug_is_off_when_nothing_sets_it():
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    result = _django(
        ["-c", code], {**PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "commandcenter.settings"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_production_refuses_to_start_without_a_secret_key():
    result = _django(["manage.py", "check"], {"ALLOWED_HOSTS": "cc.hospital.example"})
    assert result.returncode == 2
    assert "configuration error: SECRET_KEY" in result.stderr


def test_the_deployment_checklist_reports_nothing_with_production_settings():
    result = _django(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_the_deployment_checklist_catches_debug_left_on():
    result = _django(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        {**PRODUCTION_ENV, "DEBUG": "true"},
    )
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout


def test_tls_settings_come_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, "
        "s.SESSION_COOKIE_SECURE, s.EMAIL_TIMEOUT)"
    )
    env = {
        **PRODUCTION_ENV,
        "DJANGO_SETTINGS_MODULE": "commandcenter.settings",
        "SECURE_HSTS_SECONDS": "600",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    }
    result = _django(["-c", code], env)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == "True 600 ('HTTP_X_FORWARDED_PROTO', 'https') True 10"


def test_every_page_carries_a_content_security_policy_without_inline_script(cast, client_for):
    response = client_for(cast.staff).get("/")
    policy = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "Content-Security-Policy" in client_for(cast.staff).get("/api/me/").headers


# -- passwords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["Short-1", "alllowercaseletterslong", "123456789012345", "password1234"]
)
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password)


def test_a_long_mixed_password_is_accepted():
    validate_password("Rounds-at-0700-ward")


# -- lockout ----------------------------------------------------------------------------------


def _login(client, username, password, address="10.1.1.1", **extra):
    data = {"username": username, "password": password, **extra}
    return client.post("/accounts/login/", data, REMOTE_ADDR=address)


def test_five_wrong_passwords_lock_the_user_even_with_the_right_one(cast, client):
    for _ in range(4):
        assert _login(client, "pm", "wrong guess").status_code == 200
    assert _login(client, "pm", "wrong guess").status_code == 429
    locked = _login(client, "pm", PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_follows_the_user_across_addresses(cast, client):
    for n in range(5):
        _login(client, "pm", "wrong guess", address=f"10.2.0.{n}")
    assert _login(client, "pm", PASSWORD, address="10.2.0.99").status_code == 429
    assert _login(client, "lead", PASSWORD, address="10.2.0.99").status_code == 302


def test_the_lockout_follows_the_address_across_users(cast, client):
    for name in ("staff", "lead", "pm", "clinician", "engineer"):
        _login(client, name, "wrong guess", address="10.3.0.7")
    assert _login(client, "admin", PASSWORD, address="10.3.0.7").status_code == 429
    assert _login(client, "admin", PASSWORD, address="10.3.0.8").status_code == 302


def test_a_success_before_the_limit_resets_the_count(cast, client):
    for _ in range(4):
        _login(client, "pm", "wrong guess")
    assert _login(client, "pm", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        _login(client, "pm", "wrong guess")
    assert _login(client, "pm", PASSWORD).status_code == 302


# -- API authentication -----------------------------------------------------------------------


def test_http_basic_authentication_is_refused(cast, client):
    basic = base64.b64encode(f"pm:{PASSWORD}".encode()).decode()
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 401


def _bearer(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_a_token_holds_only_its_scopes_and_its_users_rules(cast, client):
    token, key = tokens.issue(cast.engineer, "pacs-monitor", ["view_migration"])
    assert client.get("/migration/api/waves/", **_bearer(key)).status_code == 200
    assert client.get("/inventory/api/sources/", **_bearer(key)).status_code == 403
    assert client.get("/api/me/", **_bearer(key)).json()["username"] == "engineer"
    _, clinician_key = tokens.issue(cast.clinician, "wide", ["view_migration", "view_board"])
    assert client.get("/migration/api/waves/", **_bearer(clinician_key)).status_code == 403
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_revoked_or_expired_token_is_refused(cast, client):
    token, key = tokens.issue(cast.engineer, "old", ["view_migration"])
    tokens.revoke(token.pk)
    assert client.get("/migration/api/waves/", **_bearer(key)).status_code == 401
    expired, expired_key = tokens.issue(cast.engineer, "short", ["view_migration"], 1)
    expired.expires_at = timezone.now() - timedelta(seconds=1)
    expired.save()
    assert client.get("/migration/api/waves/", **_bearer(expired_key)).status_code == 401
    assert client.get("/migration/api/waves/", **_bearer("cc_00000000_forged")).status_code == 401


def test_only_the_digest_of_a_token_is_stored(cast):
    token, key = tokens.issue(cast.engineer, "x", ["view_migration"])
    assert key not in {token.digest, token.prefix, token.name}
    assert token.digest == tokens.token_digest(key)


def test_admins_issue_and_revoke_tokens_through_the_api(cast, client_for):
    admin = client_for(cast.admin)
    body = {"user": "engineer", "name": "ci", "scopes": ["view_migration"]}
    created = admin.post("/api/tokens/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    key = created.json()["key"]
    assert admin.delete(f"/api/tokens/{created.json()['id']}/").status_code == 204
    admin.logout()
    assert admin.get("/migration/api/waves/", **_bearer(key)).status_code == 401
    assert client_for(cast.lead).get("/api/tokens/").status_code == 403


def test_the_api_throttles_a_user_who_calls_too_often(cast, client_for, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})
    cache.clear()
    client = client_for(cast.pm)
    statuses = [client.get("/api/me/").status_code for _ in range(4)]
    cache.clear()
    assert statuses == [200, 200, 200, 429]


# -- two-factor -------------------------------------------------------------------------------


def _code(device, steps_ahead=0):
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return totp.token()


def test_a_lead_enrols_totp_and_then_every_login_asks_for_a_code(cast, client_for, client):
    page = client_for(cast.lead)
    assert page.get("/accounts/two-factor/").status_code == 200
    device = TOTPDevice.objects.get(user=cast.lead, confirmed=False)
    assert page.post("/accounts/two-factor/", {"token": _code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    page.logout()

    without = _login(client, "lead", PASSWORD)
    assert without.status_code == 200 and b"Enter the code" in without.content
    right = _login(client, "lead", PASSWORD, otp_token=_code(device, 1))
    assert right.status_code == 302
    assert client.session["otp_device_id"] == device.persistent_id
    client.post("/accounts/logout/")
    wrong = _login(
        client, "lead", PASSWORD, otp_token="000000" if _code(device) != "000000" else "1"
    )
    assert wrong.status_code == 200 and "_auth_user_id" not in client.session


def test_wrong_codes_count_towards_the_lockout(cast, client):
    device = TOTPDevice.objects.create(user=cast.admin, name="app", confirmed=True)
    bad = "000000" if _code(device) != "000000" else "111111"
    for _ in range(5):
        _login(client, "admin", PASSWORD, otp_token=bad)
    assert _login(client, "admin", PASSWORD, otp_token=_code(device)).status_code == 429


def test_two_factor_enrolment_is_for_leads_and_admins(cast, client_for):
    assert client_for(cast.clinician).get("/accounts/two-factor/").status_code == 403
    assert client_for(cast.admin).get("/accounts/two-factor/").status_code == 200


# -- idle logoff ------------------------------------------------------------------------------


def _age_session(client, seconds):
    session = client.session
    session[LAST_ACTIVITY] = time.time() - seconds
    session.save()


def test_a_session_idle_longer_than_the_timeout_is_logged_off(cast, client_for):
    client = client_for(cast.staff)
    assert client.get("/").status_code == 200
    _age_session(client, 15 * 60 + 5)
    response = client.get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get("/").status_code == 302


def test_activity_within_the_timeout_keeps_the_session(cast, client_for):
    client = client_for(cast.staff)
    client.get("/")
    _age_session(client, 14 * 60)
    assert client.get("/").status_code == 200
    assert time.time() - client.session[LAST_ACTIVITY] < 60


def test_the_timeout_is_configurable(cast, client_for, settings):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 1
    client = client_for(cast.staff)
    client.get("/")
    _age_session(client, 90)
    assert client.get("/").status_code == 302


def test_the_page_tells_the_browser_its_timeout_and_warning(cast, client_for):
    html = client_for(cast.staff).get("/").content.decode()
    assert 'data-session-timeout="900"' in html
    assert 'data-session-warning="120"' in html
    assert 'id="session-warning"' in html


def test_an_idle_api_session_is_logged_off_too(cast, client_for):
    client = client_for(cast.staff)
    client.get("/api/me/")
    _age_session(client, 16 * 60)
    assert client.get("/api/me/").status_code == 401


def test_stay_signed_in_renews_the_idle_clock(cast, client_for):
    client = client_for(cast.staff)
    client.get("/")
    _age_session(client, 14 * 60)
    assert client.post("/accounts/session/").json()["idle_timeout_seconds"] == 900
    assert time.time() - client.session[LAST_ACTIVITY] < 60


def test_a_page_under_an_api_path_still_needs_login(rf, db):
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse

    from core.api import me_view
    from core.middleware import LoginRequiredMiddleware

    request = rf.get("/inventory/api/report-page/")
    request.user = AnonymousUser()
    gate = LoginRequiredMiddleware(lambda r: HttpResponse())
    page = gate.process_view(request, lambda r: HttpResponse("PHI"), (), {})
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]
    assert gate.process_view(request, me_view, (), {}) is None  # the API answers 401 itself


def test_the_admin_site_signs_in_through_the_login_page_with_its_two_factor_step(client, db):
    response = client.get("/admin/login/?next=/admin/auth/user/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/auth/user/"
