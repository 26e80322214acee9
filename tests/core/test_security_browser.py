"""In Chromium: the Content-Security-Policy blocks nothing the pages need, the browser
warns before the idle logoff and then shows the login page, and logging out closes the
page's websocket."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "/",
    "/command-center/",
    "/inventory/",
    "/migration/",
    "/roadmap/",
    "/training/",
    "/api/docs/",
    "/accounts/two-factor/",
]


def test_no_page_breaks_the_content_security_policy(cast, browser_as, asgi_server):
    page = browser_as(cast.admin)
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    page.on("pageerror", lambda e: violations.append(str(e)))
    for path in PAGES:
        page.goto(f"{asgi_server.url}{path}")
        page.wait_for_load_state("networkidle")
        if path != "/api/docs/":
            expect(page.locator("#live-status")).to_have_text("live")
    expect(page.locator(".swagger-ui")).to_have_count(0)  # last page was two-factor
    assert violations == []


def test_swagger_ui_renders_under_the_policy(cast, browser_as, asgi_server):
    page = browser_as(cast.admin)
    violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    page.goto(f"{asgi_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    assert violations == []


def test_the_browser_warns_before_the_idle_logoff_then_shows_the_login_page(
    cast, browser_as, asgi_server, settings
):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 0.15  # 9 s
    settings.SESSION_IDLE_WARNING_SECONDS = 4
    page = browser_as(cast.staff)
    warning = page.locator("#session-warning")
    expect(warning).to_be_hidden()
    expect(warning).to_be_visible(timeout=20000)
    expect(page.locator("#session-countdown")).to_contain_text("s")
    page.wait_for_url(f"{asgi_server.url}/accounts/login/**", timeout=30000)
    expect(page.locator("#id_username")).to_be_visible()


def test_stay_signed_in_renews_the_session(cast, browser_as, asgi_server, settings):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 0.2  # 12 s
    settings.SESSION_IDLE_WARNING_SECONDS = 6
    page = browser_as(cast.staff)
    warning = page.locator("#session-warning")
    expect(warning).to_be_visible(timeout=20000)
    page.click("#session-stay")
    expect(warning).to_be_hidden()
    page.wait_for_timeout(7000)  # past the deadline the page had before renewing
    assert page.url == f"{asgi_server.url}/"
    page.reload()
    assert page.url == f"{asgi_server.url}/"


def test_logging_out_in_another_tab_signs_the_page_out(cast, browser_as, asgi_server):
    page = browser_as(cast.staff)
    status = page.locator("#live-status")
    expect(status).to_have_text("live")
    other = page.context.new_page()
    other.goto(f"{asgi_server.url}/")
    other.click("form[action='/accounts/logout/'] button")
    expect(status).to_have_text("signed out")
