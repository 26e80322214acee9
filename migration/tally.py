"""The ledger's tallies (LedgerTally): per wave and state, ledger rows and their instance
and byte sums, kept by database triggers (core/rollups.py) and read by
migration/measures.py."""

from core.rollups import Rollup

TALLY_SHARDS = 16

COLUMNS = ("instances_reported", "instances_stored", "bytes_stored")

LEDGER = Rollup(
    name="ledger_tally",
    tally_table="migration_ledgertally",
    counted_table="migration_wavestudy",
    keys={"wave_id": "{row}.wave_id", "state": "{row}.state"},
    sums={"studies": "1", **{c: f"COALESCE({{row}}.{c}, 0)" for c in COLUMNS}},
    watched=("wave_id", "state", *COLUMNS),
    shards=TALLY_SHARDS,
)
install, uninstall = LEDGER.install, LEDGER.uninstall
