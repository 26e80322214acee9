"""Chromium: a project manager builds the roadmap, moves go-live, signs a checklist item;
the go/no-go screen turns from NO-GO to GO live as the evidence arrives."""

import re

import pytest
from playwright.sync_api import expect

from cutover import actions
from tests.cutover import world
from tests.cutover.mllp import MllpListener

pytestmark = pytest.mark.django_db(transaction=True)
WIDE = {"width": 1600, "height": 1000}


def subscribed(page, topic):
    expect(page.locator("#live-status")).to_have_attribute(
        "data-subscribed", re.compile(rf"(^| ){re.escape(topic)}( |$)")
    )


def test_a_project_manager_plans_the_roadmap_and_sees_go_live_move(
    browser_as, asgi_server, cast, integration
):
    page = browser_as(cast.pm, viewport=WIDE)
    page.goto(f"{asgi_server.url}/roadmap/")
    page.fill("#id_tpl_name", "Hospital migration")
    page.fill("#id_tpl_start", "2026-01-05")
    page.get_by_role("button", name="Create from the standard template").click()
    page.wait_for_url(re.compile(r"/roadmap/\d+/$"))
    gantt = page.locator("#gantt svg.gantt")
    expect(gantt).to_be_visible()
    expect(page.locator("#gantt a.bar.critical")).to_have_count(19)
    expect(page.locator("#gantt path.link.critical").first).to_be_visible()
    expect(page.locator("#go-live-date")).to_have_text("Tue 12 May 2026")

    # Edit: click the pilot wave's bar, lengthen it, see the effect before saving.
    page.locator('#gantt a.bar[data-code="MG1"]').click()
    page.wait_for_url(re.compile(r"/roadmap/tasks/\d+/$"))
    page.fill("#id_duration", "8")
    expect(page.locator("#go-live-preview")).to_contain_text(
        "This moves go-live by 3 working days (go-live Tue 12 May 2026 → Fri 15 May 2026)"
    )
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r"/roadmap/\d+/$"))
    expect(page.locator(".messages")).to_contain_text("this moves go-live by 3 working days")
    expect(page.locator("#go-live-date")).to_have_text("Fri 15 May 2026")

    # Drag: move the bulk migration bar one week later; confirm in the dialog.
    subscribed(page, f"roadmap.{page.url.rstrip('/').rsplit('/', 1)[1]}")
    bar = page.locator('#gantt a.bar[data-code="MG2"]')
    bar.scroll_into_view_if_needed()
    box, frame = bar.bounding_box(), page.locator("#gantt").bounding_box()
    x, y = max(box["x"], frame["x"]) + 20, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    px_per_day = float(page.locator("#gantt svg").get_attribute("data-px-per-day"))
    page.mouse.move(x + 7 * px_per_day, y, steps=12)
    page.mouse.up()
    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("This moves go-live by 5 working days")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#go-live-date")).to_have_text("Fri 22 May 2026")  # live, no reload
    page.screenshot(path=str(world.ARTIFACTS / "roadmap-gantt.png"), full_page=True)

    # Sign a checklist item of an integration's cutover plan.
    page.goto(f"{asgi_server.url}/roadmap/cutover/")
    page.get_by_role("button", name="Create plan for RIS orders").click()
    page.wait_for_url(re.compile(r"/roadmap/cutover/\d+/$"))
    first_item = page.locator('[data-stage="prepare"] li[data-item]').first
    first_item.get_by_role("button", name=re.compile("^Sign")).click()
    expect(page.locator('[data-stage="prepare"] li[data-item]').first).to_contain_text(
        "signed by pm on"
    )
    expect(page.locator('[data-stage="prepare"] [data-role="gate"]')).to_have_text("gate closed")


def test_the_readiness_screen_turns_from_no_go_to_go_live(
    browser_as, asgi_server, cast, integration
):
    plan = world.beside(actions.create_plan, integration, cast.pm)
    page = browser_as(cast.engineer, viewport=WIDE)
    page.goto(f"{asgi_server.url}/roadmap/readiness/")
    subscribed(page, "cutover.readiness")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_text("NO-GO")

    def row(key):
        return page.locator(f'tr.criterion[data-key="{key}"]')

    world.migration_ledger(studies=3, done=3)
    world.beside(actions.publish_readiness)  # what beat and the migration-event follower do
    expect(row("studies_migrated")).to_have_attribute("data-state", "met")
    expect(row("inventory_complete")).to_have_attribute("data-state", "not met")
    world.inventory_proven()
    world.beside(actions.publish_readiness)
    expect(row("inventory_complete")).to_have_attribute("data-state", "met")

    world.legacy_viewers()
    world.beside(world.cloud_viewer_tested, cast.pm)
    expect(row("viewer_pass_rate")).to_have_attribute("data-state", "met")

    session, _people = world.clinicians({"Radiology": 2}, {"Radiology": 2})
    world.train(session, [cast.clinician])
    world.beside(actions.publish_readiness)
    expect(row("clinicians_trained")).to_have_attribute("data-state", "met")

    world.beside(world.cut_over, plan, cast.pm)
    expect(row("stages_signed")).to_have_attribute("data-state", "met")
    with MllpListener(["AA"]) as listener:
        plan.probes.update(port=listener.port)
        assert world.beside(actions.run_probe, plan.probes.get()).ok
    expect(row("probes_passing")).to_have_attribute("data-state", "met")
    expect(verdict).to_have_text("NO-GO")
    expect(page.locator(".reasons")).to_have_text("Waves validated: no evidence yet")

    world.beside(actions.waive_criterion, "waves_validated", "validated after go-live", cast.pm)
    expect(verdict).to_have_text("GO")
    expect(page.locator(".waivers")).to_contain_text("validated after go-live")
    page.screenshot(path=str(world.ARTIFACTS / "readiness-go.png"), full_page=True)
