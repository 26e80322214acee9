"""The design, conformance and forecast pages and API: who may see and change what, the
audit of a design change, the printable record, the what-if partial and the CSV."""

import csv
import io

import pytest
from auditlog.models import LogEntry

from migration import actions
from migration.models import (
    ConformanceRun,
    DestinationDesign,
    PriceList,
)
from tests.migration import forecast_support

pytestmark = pytest.mark.django_db

ROLES = ("staff", "lead", "pm", "clinician", "engineer", "admin", "nobody")
VIEW_DESIGN = {"engineer", "pm", "lead", "admin"}
EDIT_DESIGN = {"engineer", "pm", "admin"}
VIEW_FORECAST = {"engineer", "pm", "lead", "admin"}


@pytest.fixture
def destination():
    return actions.add_destination(
        name="cloud", kind="s3", bucket="pacs-archive", endpoint_url="http://127.0.0.1:9"
    )


@pytest.fixture
def history():
    """12 studies of 6 MB, 6 done at 1 MB/s on one association."""
    return forecast_support.wave_with_history()


@pytest.mark.parametrize("url", ["/migration/destinations/cloud/design/",
                                 "/migration/destinations/cloud/design/print/"])  # fmt: skip
def test_the_design_pages_are_for_engineers_pms_and_leads(cast, client_for, destination, url):
    for name in ROLES:
        status = client_for(getattr(cast, name)).get(url).status_code
        assert status == (200 if name in VIEW_DESIGN else 403), name


def test_engineers_and_pms_change_the_design_and_the_change_is_audited(
    cast, client_for, destination
):
    form = {"region": "eu-west-1", "encryption": "aws:kms", "kms_key_id": "alias/pacs",
            "versioning": "on", "block_public_access": "on", "tls_only_policy": "on",
            "transition_days": "30", "transition_class": "STANDARD_IA",
            "required_tags": '{"phi": "yes"}'}  # fmt: skip
    refused = client_for(cast.lead).post("/migration/destinations/cloud/design/", form)
    assert refused.status_code == 403

    response = client_for(cast.pm).post("/migration/destinations/cloud/design/", form)

    assert response.status_code == 302
    design = DestinationDesign.objects.get(destination=destination)
    assert (design.region, design.kms_key_id, design.required_tags) == (
        "eu-west-1", "alias/pacs", {"phi": "yes"},
    )  # fmt: skip
    entry = LogEntry.objects.get_for_object(design).filter(actor=cast.pm).first()
    assert entry is not None and "kms_key_id" in entry.changes_dict
    page = client_for(cast.engineer).get("/migration/destinations/cloud/design/").content.decode()
    assert "kms_key_id" in page  # the change history shows it


def test_bad_design_input_is_refused_with_the_reason(cast, client_for, destination):
    response = client_for(cast.engineer).post(
        "/migration/destinations/cloud/design/",
        {"encryption": "AES256", "kms_key_id": "alias/x", "required_tags": "[1]"},
    )
    assert response.status_code == 400
    assert "write an object of strings" in response.content.decode()
    assert DestinationDesign.objects.get(destination=destination).kms_key_id == ""


def test_running_a_check_needs_edit_design_and_an_unreachable_store_does_not_conform(
    cast, client_for, destination
):
    url = "/migration/destinations/cloud/conform/"
    assert client_for(cast.lead).post(url).status_code == 403

    response = client_for(cast.engineer).post(url, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    run = ConformanceRun.objects.get(destination=destination)
    assert run.conforms is False
    assert all(not r["ok"] for r in run.requirements)
    assert "could not read" in response.content.decode()


def test_only_leads_record_a_waiver_and_it_needs_a_reason(cast, client_for, history):
    url = "/migration/waves/ct/waiver/"
    assert client_for(cast.engineer).post(url, {"reason": "x"}).status_code == 403
    client_for(cast.lead).post(url, {"reason": ""})
    assert not history.conformance_waivers.exists()

    client_for(cast.lead).post(url, {"reason": "KMS key pending"})

    assert history.conformance_waivers.get().reason == "KMS key pending"


def test_the_design_api_reads_changes_and_checks(cast, client_for, destination):
    listed = client_for(cast.lead).get("/migration/api/designs/").json()["results"]
    assert [d["destination"] for d in listed] == ["cloud"]
    design_id = listed[0]["id"]
    assert (
        client_for(cast.lead)
        .patch(
            f"/migration/api/designs/{design_id}/",
            {"versioning": False},
            content_type="application/json",
        )
        .status_code
        == 403
    )

    changed = client_for(cast.pm).patch(
        f"/migration/api/designs/{design_id}/", {"required_tags": {"phi": "yes"}},
        content_type="application/json",
    )  # fmt: skip
    checked = client_for(cast.engineer).post(
        "/migration/api/conformance/", {"destination": "cloud"}, content_type="application/json"
    )

    assert changed.json()["required_tags"] == {"phi": "yes"}
    assert checked.status_code == 201 and checked.json()["conforms"] is False
    latest = client_for(cast.lead).get("/migration/api/destinations/cloud/conformance/").json()
    assert latest["id"] == checked.json()["id"]
    assert client_for(cast.staff).get("/migration/api/conformance/").status_code == 403


def test_the_api_waiver_is_for_leads(cast, client_for, history):
    body = {"wave": "ct", "reason": "accepted by the CISO"}
    url = "/migration/api/waivers/"
    assert (
        client_for(cast.engineer).post(url, body, content_type="application/json").status_code
        == 403
    )
    made = client_for(cast.lead).post(url, body, content_type="application/json")
    assert made.status_code == 201 and made.json()["granted_by"] == "lead"


@pytest.mark.parametrize(
    "url",
    [
        "/migration/forecast/",
        "/migration/forecast/report/",
        "/migration/forecast.csv",
        "/migration/api/forecast/",
    ],
)
def test_the_forecast_is_for_engineers_pms_and_leads(cast, client_for, url):
    for name in ROLES:
        status = client_for(getattr(cast, name)).get(url).status_code
        assert status == (200 if name in VIEW_FORECAST else 403), f"{name} on {url}"


def test_the_what_if_partial_follows_the_sliders(cast, client_for, history):
    client = client_for(cast.pm)

    full = client.get("/migration/forecast/?hours_per_day=24", HTTP_HX_REQUEST="true")
    night = client.get("/migration/forecast/?hours_per_day=1", HTTP_HX_REQUEST="true")

    assert full.status_code == night.status_code == 200
    assert "<html" not in full.content.decode()
    assert full.context["r"]["finish_at"] < night.context["r"]["finish_at"]
    assert "<svg" in full.content.decode()


def test_the_forecast_api_and_csv_carry_the_waves_and_the_months(cast, client_for, history):
    client = client_for(cast.engineer)
    body = client.get("/migration/api/forecast/?target_date=2099-01-01&hosts=2").json()
    assert {"finish_date", "finish_p10", "finish_p90", "required_mbps", "hosts_needed",
            "monthly_cost"} <= set(body)  # fmt: skip
    assert body["throughput"]["mb_s"] == pytest.approx(1.0)
    assert body["waves"][0]["remaining_bytes"] == 6 * 6 * 1_000_000
    assert client.get("/migration/api/forecast/?hosts=0").status_code == 400

    rows = list(csv.reader(io.StringIO(client.get("/migration/forecast.csv").content.decode())))
    assert rows[0] == ["wave", "remaining_bytes", "finish", "finish_p10", "finish_p90"]
    assert rows[1][:2] == ["ct", "36000000"]
    assert "month" in [r[0] for r in rows if r]


def test_prices_are_editable_data_with_the_date_taken(cast, client_for):
    assert client_for(cast.lead).post("/migration/api/prices/", {}).status_code == 403
    client = client_for(cast.pm)
    listed = client.get("/migration/api/prices/").json()["results"]
    assert listed[0]["name"] == "aws-s3-us-east-1-example" and listed[0]["taken_on"]
    bad = client.post(
        "/migration/api/prices/",
        {"name": "x", "region": "r", "taken_on": "2026-12-01", "prices": {"egress_gb": 0.05}},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "missing" in str(bad.json())
    prices = {**PriceList.objects.get().prices, "egress_gb": 0.05}
    made = client.post(
        "/migration/api/prices/",
        {"name": "negotiated", "region": "eu-west-1", "taken_on": "2026-12-01", "prices": prices},
        content_type="application/json",
    )
    assert made.status_code == 201


def test_the_schema_lists_the_design_and_forecast_endpoints(cast, client_for):
    schema = client_for(cast.engineer).get("/api/schema/?format=json").json()
    for endpoint in ("/migration/api/designs/", "/migration/api/conformance/",
                     "/migration/api/waivers/", "/migration/api/forecast/",
                     "/migration/api/prices/", "/migration/api/forecast/assumptions/"):  # fmt: skip
        assert endpoint in schema["paths"], endpoint


def test_the_roadmaps_live_bound_migration_tasks_show_their_forecast_and_slip(
    cast, client_for, history
):
    from datetime import date

    from cutover.models import Roadmap, Task, Workstream

    roadmap = Roadmap.objects.create(name="Go-live", start_date=date(2026, 1, 5))
    stream = Workstream.objects.create(roadmap=roadmap, name="Migration")
    Task.objects.create(roadmap=roadmap, workstream=stream, code="MIG-CT", name="Migrate CT",
                        measure="migration.waves", measure_params={"waves": [history.pk]},
                        deadline=date(2026, 1, 30))  # fmt: skip

    response = client_for(cast.pm).get("/migration/forecast/")

    row = response.context["tasks"][0]
    finish = response.context["r"]["waves"][0]["finish_date"]
    assert (row["code"], row["forecast"]) == ("MIG-CT", finish)
    assert row["slip_days"] == (date.fromisoformat(finish) - date(2026, 1, 30)).days
    assert "MIG-CT Migrate CT" in response.content.decode()


@pytest.mark.parametrize("url", ["/migration/forecast/assumptions/", "/migration/prices/new/",
                                 "/migration/prices/aws-s3-us-east-1-example/"])  # fmt: skip
def test_assumptions_and_prices_are_edited_by_engineers_and_pms(cast, client_for, url):
    for name in ROLES:
        status = client_for(getattr(cast, name)).get(url).status_code
        assert status == (200 if name in EDIT_DESIGN else 403), f"{name} on {url}"


def test_saved_assumptions_move_the_forecast(cast, client_for, history):
    client = client_for(cast.pm)
    before = client.get("/migration/api/forecast/").json()["finish_at"]
    form = {"link_mbps": "1000", "hosts": "1", "hours_per_day": "1", "reads_per_month": "0.02",
            "egress_share": "1", "device_tb": "80", "device_turnaround_days": "10",
            "months_after": "12"}  # fmt: skip

    assert client.post("/migration/forecast/assumptions/", form).status_code == 302

    assert client.get("/migration/api/forecast/").json()["finish_at"] > before


def test_the_printable_design_record_carries_the_requirements_the_last_check_and_sign_off(
    cast, client_for, destination
):
    actions.check_conformance(destination)

    html = client_for(cast.lead).get("/migration/destinations/cloud/design/print/").content
    text = html.decode()

    assert "Design record: destination cloud" in text
    assert "refuses non-TLS requests" in text and "fully blocked" in text
    assert 'data-name="TLS-only bucket policy"' in text
    assert "Steering committee" in text and "<script" not in text
