"""What the validation pages show: the reconciliation report of a wave or of a whole PACS
source (from the latest finished whole-wave reconciliation runs), its CSV form, and the
studies a reviewer should look at. UIDs and ledger ids only, never PHI."""

import itertools

from core import scrub
from migration.discrepancies import wave_validation
from migration.models import Discrepancy, ReconciliationRow, ValidationRun, WaveState

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
    """{"wave", "run", "totals", "state"}; the rows are read apart, by `report_rows`."""
    run = reconciliation_run(wave, run_id)
    totals = dict(run.totals) if run else {}
    return {"wave": wave, "run": run, "totals": totals, "state": wave_validation(wave)}


def report_rows(run, verdict="", after=None, limit=None):
    """The run's study rows in ledger order, as dicts; `verdict` filters ("problems": every
    verdict but complete), `after` a ledger id to continue from (a keyset on the index)."""
    if run is None:
        return iter(())
    rows = run.report_rows.order_by("ledger_id")
    if verdict == "problems":
        rows = rows.exclude(verdict="complete")
    elif verdict:
        rows = rows.filter(verdict=verdict)
    if after is not None:
        rows = rows.filter(ledger_id__gt=after)
    values = rows.values(*ReconciliationRow.FIELDS)
    wave = run.wave.name
    found = values[:limit] if limit else values.iterator(chunk_size=2000)
    return ({"wave": wave, **row} for row in found)


def rows_total(totals, verdict=""):
    """How many rows the filter holds, from the run's totals (no count over the rows)."""
    studies = totals.get("studies") or 0
    complete = totals.get("complete") or 0
    return {"": studies, "complete": complete, "problems": studies - complete}.get(verdict)


def source_report(source):
    """Every validated-or-not wave of one PACS source, and their totals added up; `rows`
    streams the studies of every wave."""
    waves = source.waves.exclude(state__in=[WaveState.DRAFT, WaveState.CANCELLED])
    reports = [wave_report(wave) for wave in waves.select_related("destination")]
    totals = {key: sum(r["totals"].get(key) or 0 for r in reports) for key in TOTAL_KEYS}
    return {
        "source": source,
        "reports": reports,
        "totals": totals,
        "rows": itertools.chain.from_iterable(report_rows(r["run"]) for r in reports),
        "validated": bool(reports) and all(r["state"]["validated"] for r in reports),
        "unreconciled": [r["wave"].name for r in reports if r["run"] is None],
    }


def csv_download(rows, filename):
    """The report's rows as a streamed CSV download, with a header line."""
    header = [label for _key, label in REPORT_COLUMNS]
    cells = ([_cell(row.get(key)) for key, _l in REPORT_COLUMNS] for row in rows)
    return scrub.csv_download(filename, header, cells)


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
