"""In Chromium: an engineer starts a crawl, watches its progress update live, then sees the
dashboard's charts."""

import pytest
from playwright.sync_api import expect

from inventory import actions, engine, witness
from inventory.models import Study
from tests.cutover import world
from tests.inventory.conftest import hidden, register, studies, upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_engineer_watches_a_crawl_live_and_sees_the_dashboard_charts(
    orthanc_factory, cast, browser_as, celery_worker
):
    orthanc = orthanc_factory(aet="LIVECRAWL", limit_find_results=10)
    upload(orthanc, studies(40, seed=81, undated=3).values())
    source = register("live-orthanc", orthanc, find_pause_ms=120)
    page = browser_as(cast.engineer)

    page.goto(f"{page.url}inventory/sources/{source.pk}/")
    page.get_by_label("Also query series and sample instances").uncheck()
    page.get_by_role("button", name="Start crawl").click()

    progress = page.locator("#crawl-progress")
    expect(page.locator("#live-status")).to_have_attribute(
        "data-subscribed", f"inventory.crawl.{source.crawls.get().pk}", timeout=15000
    )
    page.evaluate("window.__sameDocument = true")
    done = progress.locator('[data-stat="ranges_done"]')
    first = done.inner_text()
    expect(done).not_to_have_text(first, timeout=30000)
    expect(progress.locator(".crawl-progress")).to_have_attribute(
        "data-status", "done", timeout=90000
    )
    expect(progress).to_contain_text("not proven complete")
    band = progress.locator('[data-role="unproven"]')
    expect(band).to_be_visible()
    expect(band).to_contain_text("The universal C-FIND was capped (at 10)")
    expect(progress.locator('[data-stat="studies_found"]')).to_have_text("40")
    assert page.evaluate("window.__sameDocument") is True  # updated live, never reloaded

    page.get_by_role("navigation", name="Inventory").get_by_role("link", name="Dashboard").click()
    expect(page.locator('[data-total="studies"]')).to_have_text("40")
    for chart in ("hbars", "columns", "growth"):
        svg = page.locator(f'svg[data-chart="{chart}"]')
        expect(svg).to_be_visible()
        box = svg.bounding_box()
        assert box["width"] > 200 and box["height"] > 50
    expect(page.locator('svg[data-chart="growth"] polyline.projection')).to_have_count(1)
    expect(page.locator('svg[data-chart="hbars"] rect')).to_have_count(5)


def test_the_crawl_page_compare_page_and_go_no_go_show_what_is_unproven_then_proven(
    orthanc_factory, cast, browser_as, asgi_server
):
    orthanc = orthanc_factory(aet="HONEST", limit_find_results=6)
    seeded = studies(30, seed=83)
    uids = sorted(seeded)
    seeded[uids[0]] = hidden(seeded[uids[0]], keep=("PatientID",))
    seeded[uids[0]].PatientID = "QZ-WALKED"
    for uid in uids[1:4]:
        seeded[uid] = hidden(seeded[uid])
    upload(orthanc, seeded.values())
    source = register("honest", orthanc)
    run = world.beside(actions.start_crawl, source, with_series=False, enqueue=False)
    world.beside(engine.execute_crawl, run.pk)
    page = browser_as(cast.pm, viewport={"width": 1400, "height": 1000})

    page.goto(f"{asgi_server.url}/inventory/crawls/{run.pk}/")
    expect(page.locator('[data-role="unproven"]')).to_contain_text("second witness")
    expect(page.locator('[data-role="not-proven"]')).to_have_text("not proven complete")
    walked = page.locator('tr[data-partition="patient"]')
    expect(walked.locator('[data-role="count"]')).to_have_text("1")
    expect(walked).to_contain_text(uids[0])

    page.goto(f"{asgi_server.url}/roadmap/readiness/")
    criterion = page.locator('tr.criterion[data-key="inventory_complete"]')
    expect(criterion).to_have_attribute("data-state", "not met")
    expect(criterion).to_contain_text("honest: The universal C-FIND was capped (at 6)")

    seen = witness.scan(orthanc.workdir / "storage")
    world.beside(actions.record_witness, source, "scan", "orthanc storage", seen)
    result = world.beside(actions.compare_witness, source)
    missed = set(seeded) - set(Study.objects.filter(seen_run=run).values_list(
        "study_uid", flat=True))  # fmt: skip
    assert set(result["only_in_witness"]) == missed and missed <= set(uids[1:4])

    page.goto(f"{asgi_server.url}/inventory/sources/{source.pk}/compare/")
    expect(page.locator("#verdict")).to_have_attribute("data-agree", "false")
    expect(page.locator('[data-count="only_in_witness"]')).to_have_text(str(len(missed)))
    for uid in missed:
        expect(page.locator(f'tr[data-uid="{uid}"]')).to_contain_text("found by scan")

    for uid in missed:  # a later crawl lists them (say the PACS was re-indexed)
        Study.objects.filter(study_uid=uid).update(seen_run=run, found_by="all")
    world.beside(actions.compare_witness, source)
    page.reload()
    expect(page.locator("#verdict")).to_have_attribute("data-agree", "true")
    page.goto(f"{asgi_server.url}/inventory/crawls/{run.pk}/")
    expect(page.locator('[data-role="complete"]')).to_contain_text("lists exactly the studies")
    expect(page.locator('[data-role="unproven"]')).to_have_count(0)
    page.goto(f"{asgi_server.url}/roadmap/readiness/")
    expect(criterion).to_have_attribute("data-state", "met")
