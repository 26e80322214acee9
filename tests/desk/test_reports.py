"""Reports: tickets per day by category and priority, MTTA and MTTR, SLA compliance, top
recurring problems, CSV export; and the measure other apps read."""

import csv
import io

from desk import measures, reports, tickets
from tests.desk.ticketing import minutes, open_ticket

NOW = minutes(3 * 24 * 60)


def _history(cast):
    fast = open_ticket("PACS slow", impact="high", urgency="high", category="performance")
    tickets.transition(fast, "acknowledged", cast.staff, now=minutes(10))
    tickets.transition(fast, "resolved", cast.staff, now=minutes(70))
    late = open_ticket(
        "PACS slow", impact="high", urgency="high", category="performance", at=60 * 24
    )
    tickets.transition(late, "acknowledged", cast.staff, now=minutes(60 * 24 + 30))
    tickets.transition(late, "resolved", cast.staff, now=minutes(60 * 24 + 330))
    open_ticket(
        "How do I hang priors?", impact="low", urgency="low", category="training", at=60 * 48
    )
    return fast, late


def test_tickets_per_day_by_priority_and_category(cast):
    _history(cast)
    data = reports.per_day(days=4, now=NOW)
    assert [d.day for d in data["days"]] == [2, 3, 4, 5]
    assert data["by_priority"]["P1"] == [1, 1, 0, 0]
    assert data["by_category"]["training"] == [0, 0, 1, 0]


def test_mean_time_to_acknowledge_and_to_resolve(cast):
    _history(cast)
    assert reports.response_times(days=4, now=NOW) == {
        "mtta_minutes": 20.0,
        "mttr_minutes": 200.0,
        "acknowledged": 2,
        "resolved": 2,
    }


def test_sla_compliance_counts_decided_tickets(cast):
    _history(cast)
    result = reports.compliance(days=4, now=NOW)
    assert result["by_priority"]["P1"] == {"met": 1, "breached": 1, "share": 0.5}
    assert result["by_priority"]["P4"] == {"met": 0, "breached": 0, "share": None}
    assert result["share"] == 0.5


def test_top_recurring_problems_rank_by_occurrences(cast, django_capture_on_commit_callbacks):
    _history(cast)
    for _ in range(3):
        tickets.ingest_alert(
            {"source": "migration", "cause": "migration.failed.wave-2", "title": "Wave 2 failing"},
            now=minutes(60 * 50),
        )
    top = reports.top_problems(days=4, now=NOW)
    assert (top[0]["title"], top[0]["occurrences"]) == ("Wave 2 failing", 3)
    assert (top[1]["title"], top[1]["tickets"]) == ("PACS slow", 2)


def test_the_csv_export_has_one_row_per_ticket(cast, client_for):
    _history(cast)
    text = reports.csv_text(days=4, now=NOW)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["title"] for r in rows] == ["PACS slow", "PACS slow", "How do I hang priors?"]
    assert rows[0]["minutes_to_resolve"] == "70.0" and rows[1]["sla_breached"] == "yes"
    tickets.create_ticket(title="Opened today", impact="low", urgency="low")
    response = client_for(cast.pm).get("/command-center/reports/tickets.csv?days=1")
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode()
    assert "Opened today" in body and "PACS slow" not in body


def test_the_report_page_draws_its_charts_as_svg(cast, client_for):
    tickets.create_ticket(title="Opened today", impact="low", urgency="low", category="viewer")
    page = client_for(cast.pm).get("/command-center/reports/?days=7").content.decode()
    assert page.count("<svg") == 2 and "Top recurring problems" in page
    assert "Opened today" in page


def test_open_ticket_counts_per_priority(cast):
    _history(cast)
    open_ticket("Another", impact="high", urgency="medium")
    assert measures.open_ticket_counts() == {"P1": 0, "P2": 1, "P3": 0, "P4": 1}
