"""What the validation pages show: the reconciliation report of a wave or of a whole PACS
source (from the latest finished whole-wave reconciliation runs), its CSV form, and the
studies a reviewer should look at. UIDs and ledger ids only, never PHI."""

import io

from core.scrub import safe_writer
from migration.discrepancies import wave_validation
from migration.models import Discrepancy, ValidationRun, WaveState

REPORT_COLUMNS = (
    ("wave", "wave"),
    ("ledger_id", "ledger id"),
    ("study_uid", "study instance UID"),
    ("reported_at_inventory", "instances reported at inventory"),
    ("on_pacs_now", "instances on the PACS now"),
    ("in_destination", "instances in the destination"),
    ("verdict", "verdict"),
    ("missing", "missing"),
    ("extra", "extra"),
    ("transcoded", "transcoded"),
)
TOTAL_KEYS = (
    "studies", "complete", "missing_instances", "extra_instances", "transcoded_instances",
    "conflicted", "quarantined",
    "reported_at_inventory", "on_pacs_now", "in_destination",
)  # fmt: skip


def reconciliation_run(wave, run_id=None):
    """The wave's latest finished whole-wave reconciliation, or the run `run_id` of it."""
    runs = wave.validation_runs.filter(
        kind=ValidationRun.Kind.RECONCILE, state=ValidationRun.State.DONE
    )
    if run_id is not None:
        return runs.filter(pk=run_id).first()
    return wave_validation(wave)["last_reconcile"]


def wave_report(wave, run_id=None):
    """{"wave", "run", "totals", "rows", "state"}; rows are empty before a reconciliation."""
    run = reconciliation_run(wave, run_id)
    totals = dict(run.totals) if run else {}
    rows = [{"wave": wave.name, **row} for row in totals.pop("rows", [])]
    return {"wave": wave, "run": run, "totals": totals, "rows": rows,
            "state": wave_validation(wave)}  # fmt: skip


def source_report(source):
    """Every validated-or-not wave of one PACS source, and their totals added up."""
    waves = source.waves.exclude(state__in=[WaveState.DRAFT, WaveState.CANCELLED])
    reports = [wave_report(wave) for wave in waves.select_related("destination")]
    totals = {key: sum(r["totals"].get(key) or 0 for r in reports) for key in TOTAL_KEYS}
    return {
        "source": source,
        "reports": reports,
        "totals": totals,
        "rows": [row for report in reports for row in report["rows"]],
        "validated": bool(reports) and all(r["state"]["validated"] for r in reports),
        "unreconciled": [r["wave"].name for r in reports if r["run"] is None],
    }


def verdict_filter(rows, verdict):
    """Rows whose verdict is `verdict` ("problems": every verdict but complete)."""
    if not verdict:
        return rows
    if verdict == "problems":
        return [row for row in rows if row["verdict"] != "complete"]
    return [row for row in rows if row["verdict"] == verdict]


def csv_text(rows):
    """The report's rows as CSV, with a header line."""
    buffer = io.StringIO()
    writer = safe_writer(buffer)
    writer.writerow([label for _key, label in REPORT_COLUMNS])
    for row in rows:
        writer.writerow(
            ["" if row.get(key) is None else row.get(key) for key, _l in REPORT_COLUMNS]
        )
    return buffer.getvalue()


def _cell(value):
    return "" if value is None else value


def sampled_rows(wave):
    """The ledger rows the latest spot-check sampled (what reviewers should look at)."""
    run = wave_validation(wave)["last_spotcheck"]
    uids = (run.totals.get("studies") if run else None) or []
    return list(wave.ledger.filter(study__study_uid__in=uids).select_related("study"))


def open_counts(wave):
    """{kind: open discrepancies} of the wave."""
    counts = {}
    for kind in wave.discrepancies.filter(status__in=Discrepancy.OPEN_STATES).values_list(
        "kind", flat=True
    ):
        counts[kind] = counts.get(kind, 0) + 1
    return counts
