"""Inventory pages and API: who sees what, PHI only for view_phi and always audited,
constant query counts, CSV exports and the OpenAPI schema."""

import csv
import io
import json
import re
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import PHIAccess
from inventory.models import CrawlRun, PacsSource, Series, Study

pytestmark = pytest.mark.django_db

PATIENT = "Åström^Ingrid"
PAGES = (
    "/inventory/",
    "/inventory/studies/",
    "/inventory/sources/",
    "/inventory/catalogue/",
    "/inventory/api/studies/",
    "/inventory/api/summary/",
)
STUDY_LINK = re.compile(r'<td><a href="/inventory/studies/\d+/">')


@pytest.fixture
def ledger():
    source = PacsSource.objects.create(name="main", ae_title="MAIN", host="h", port=104)
    run = CrawlRun.objects.create(source=source, status="done", complete=True)
    rows = []
    for n in range(120):
        rows.append(
            Study(
                source=source,
                study_uid=f"1.2.3.{n}",
                patient_id=f"PID{n:04d}",
                patient_name=PATIENT,
                accession_number=f"ACC{n:05d}",
                study_date=date(2010 + n % 12, 1 + n % 12, 1) if n % 10 else None,
                modalities=["CT", "MR", "CR\\SR"][n % 3],
                description="CHEST",
                num_series=2,
                num_instances=10 + n,
                charset="ISO_IR 100",
                seen_run=run,
                problems=[{"code": "odd_date", "detail": "StudyDate '2011' is odd"}]
                if n == 7
                else [],
                has_problems=n == 7,
            )
        )
    Study.objects.bulk_create(rows)
    study = Study.objects.get(study_uid="1.2.3.5")
    Series.objects.create(
        study=study,
        series_uid="1.2.3.5.1",
        modality="MR",
        num_instances=15,
        sop_class="1.2.840.10008.5.1.4.1.1.4",
        transfer_syntax="1.2.840.10008.1.2.1",
        sample_bytes=600,
    )
    return source


@pytest.mark.parametrize(
    ("who", "status"),
    [("engineer", 200), ("pm", 200), ("lead", 200), ("admin", 200), ("staff", 403),
     ("clinician", 403), ("nobody", 403)],
)  # fmt: skip
def test_the_inventory_pages_need_view_inventory(ledger, cast, client_for, who, status):
    client = client_for(getattr(cast, who))
    for url in PAGES:
        assert client.get(url).status_code == status, url


def test_the_dashboard_shows_totals_charts_formats_largest_and_problem_studies(
    ledger, cast, client_for
):
    page = client_for(cast.pm).get("/inventory/").content.decode()
    assert 'data-total="studies">120<' in page
    for chart in ("hbars", "columns", "growth"):
        assert f'data-chart="{chart}"' in page
    assert "MR Image Storage" in page and "Explicit VR Little Endian" in page
    assert 'data-problem="odd_date"' in page
    largest = page.split('id="big-h"')[1].split("</table>")[0]
    assert "<td>129</td>" in largest  # 1.2.3.119 has the most instances
    assert PATIENT not in page


def test_the_study_list_shows_phi_only_to_view_phi_and_records_each_view(ledger, cast, client_for):
    pm_page = client_for(cast.pm).get("/inventory/studies/").content.decode()
    assert PATIENT not in pm_page and "PID0119" not in pm_page and "ACC00119" not in pm_page
    assert not PHIAccess.objects.exists()

    engineer_page = client_for(cast.engineer).get("/inventory/studies/").content.decode()

    assert PATIENT in engineer_page and "PID0119" in engineer_page
    access = PHIAccess.objects.get()
    assert (access.user, access.what, access.count) == (cast.engineer, "inventory.study", 50)


def test_the_study_list_pages_by_keyset_with_a_constant_number_of_queries(ledger, cast, client_for):
    client = client_for(cast.engineer)
    with CaptureQueriesContext(connection) as first:
        page1 = client.get("/inventory/studies/?problems=")
    text = page1.content.decode()
    assert len(STUDY_LINK.findall(text)) == 50
    before = text.split("before=")[1].split('"')[0]
    with CaptureQueriesContext(connection) as second:
        page2 = client.get(f"/inventory/studies/?before={before}")
    assert len(STUDY_LINK.findall(page2.content.decode())) == 50
    assert len(first.captured_queries) == len(second.captured_queries) <= 10
    sql = " ".join(q["sql"] for q in second.captured_queries).upper()
    assert "OFFSET" not in sql and "COUNT(" not in sql


def test_patient_ids_are_searched_by_post_never_in_the_url(ledger, cast, client_for):
    found = client_for(cast.engineer).post("/inventory/studies/", {"patient_id": "PID0042"})
    assert found.content.decode().count('class="phi">PID') == 1
    ignored = client_for(cast.engineer).get("/inventory/studies/?patient_id=PID0042")
    assert ignored.content.decode().count('class="phi">PID') == 50  # GET does not filter by it


def test_the_ledger_csv_has_phi_columns_only_for_view_phi(ledger, cast, client_for):
    pm_rows = list(
        csv.reader(io.StringIO(_body(client_for(cast.pm).get("/inventory/studies.csv"))))
    )
    assert len(pm_rows) == 121 and "patient_name" not in pm_rows[0]
    eng = _body(client_for(cast.engineer).get("/inventory/studies.csv?modality=CT"))
    rows = list(csv.DictReader(io.StringIO(eng)))
    assert len(rows) == 40 and rows[0]["patient_name"] == PATIENT
    assert PHIAccess.objects.filter(user=cast.engineer, count=40).exists()


def test_the_summary_csv_and_api_add_up(ledger, cast, client_for):
    client = client_for(cast.pm)
    rows = list(csv.reader(io.StringIO(_body(client.get("/inventory/summary.csv")))))
    assert ["totals", "studies", "", "", "120"] in rows
    summary = client.get("/inventory/api/summary/").json()
    assert summary["totals"]["studies"] == 120
    assert {r["modality"]: r["studies"] for r in summary["by_modality"]}["SR"] == 40
    assert summary["by_year"]["years"][-1] == "undated"
    assert summary["growth"]["projection"]


def test_the_studies_api_pages_by_cursor_and_hides_phi_without_view_phi(ledger, cast, client_for):
    pm = client_for(cast.pm).get("/inventory/api/studies/?modality=CT").json()
    assert len(pm["results"]) == 40 and "patient_name" not in pm["results"][0]
    engineer = client_for(cast.engineer)
    page = engineer.get("/inventory/api/studies/").json()
    assert len(page["results"]) == 100 and page["next"]
    assert page["results"][0]["patient_name"] == PATIENT
    assert PHIAccess.objects.filter(user=cast.engineer, count=100).exists()
    search = engineer.post(
        "/inventory/api/studies/search/",
        json.dumps({"patient_id": "PID0003"}),
        content_type="application/json",
    )
    assert [s["study_uid"] for s in search.json()] == ["1.2.3.3"]
    assert client_for(cast.pm).post("/inventory/api/studies/search/", {}).status_code == 403


def test_sources_api_reads_for_view_inventory_and_writes_for_operate_inventory(
    ledger, cast, client_for
):
    payload = {"name": "second", "ae_title": "SECOND", "host": "h", "port": 104}
    assert client_for(cast.pm).get("/inventory/api/sources/").json()["count"] == 1
    assert client_for(cast.pm).post("/inventory/api/sources/", payload).status_code == 403
    created = client_for(cast.engineer).post("/inventory/api/sources/", payload)
    assert created.status_code == 201 and created.json()["calling_ae_title"] == "MIGRATOR"
    bad = client_for(cast.engineer).post("/inventory/api/sources/", {**payload, "port": 0})
    assert bad.status_code == 400 and "port" in bad.json()


def test_the_openapi_schema_lists_the_inventory_endpoints(cast, client_for):
    schema = client_for(cast.engineer).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for path in ("/inventory/api/sources/{id}/echo/", "/inventory/api/sources/{id}/crawl/",
                 "/inventory/api/crawls/{id}/cancel/", "/inventory/api/studies/",
                 "/inventory/api/summary/", "/inventory/api/catalogue/integrations/"):  # fmt: skip
        assert path in paths, path


def _body(response):
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()
