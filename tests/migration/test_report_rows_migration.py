"""A reconciliation finished before its rows had a table keeps every row after `migrate`.

Cast: a wave's reconciliation run whose study rows sit in `totals["rows"]`, as older code
left it, and the migration that moves them into `ReconciliationRow`.
"""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from inventory.models import PacsSource
from migration import reports
from migration.models import Destination, ValidationRun, Wave, WaveState

BEFORE = ("migration", "0012_tally_statement_triggers")
OLD_ROWS = [
    {"ledger_id": 7, "study_uid": "1.2.3.7", "state": "done", "reported_at_inventory": 2,
     "on_pacs_now": 2, "in_destination": 2, "verdict": "complete", "missing": 0, "extra": 0},
    {"ledger_id": 9, "study_uid": "1.2.3.9", "state": "done", "reported_at_inventory": 3,
     "on_pacs_now": None, "in_destination": 1, "verdict": "missing 2", "missing": 2, "extra": 0},
]  # fmt: skip


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)


@pytest.fixture(autouse=True)
def back_to_the_latest_schema():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_rows_kept_in_an_old_runs_totals_move_into_the_rows_table(tmp_path):
    source = PacsSource.objects.create(name="legacy", ae_title="LEGACY", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    wave = Wave.objects.create(name="w-old", source=source, destination=destination,
                               state=WaveState.DONE)  # fmt: skip
    migrate([BEFORE])
    run = ValidationRun.objects.create(
        wave=wave, kind=ValidationRun.Kind.RECONCILE, state=ValidationRun.State.DONE,
        totals={"studies": 2, "complete": 1, "rows": OLD_ROWS},
    )  # fmt: skip

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    run.refresh_from_db()
    assert "rows" not in run.totals and run.totals["studies"] == 2
    rows = list(reports.report_rows(run))
    assert [(r["ledger_id"], r["verdict"], r["on_pacs_now"]) for r in rows] == [
        (7, "complete", 2), (9, "missing 2", None)
    ]  # fmt: skip
    assert [r["ledger_id"] for r in reports.report_rows(run, "problems")] == [9]
    assert all(r["wave"] == "w-old" and r["transcoded"] == 0 for r in rows)
