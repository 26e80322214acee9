"""The ledger's tallies (LedgerTally), maintained by triggers the database runs for every
insert, delete and counted change of a ledger row, and read by migration/measures.py.

Triggers rather than application code: the ledger changes through queryset updates, bulk
creates and cascading deletes that no Django signal sees, and a trigger is exact in the
same transaction as the change."""

TALLY_SHARDS = 16

COLUMNS = ("instances_reported", "instances_stored", "bytes_stored")


def _change(row, sign, vendor):
    """SQL adding `sign` times `row`'s (NEW or OLD) counts to its tally row."""
    insert = "INSERT OR IGNORE INTO" if vendor == "sqlite" else "INSERT INTO"
    conflict = "" if vendor == "sqlite" else " ON CONFLICT DO NOTHING"
    key = f"{row}.wave_id, {row}.state, {row}.id % {TALLY_SHARDS}"
    sums = ", ".join(f"{c} = {c} {sign} COALESCE({row}.{c}, 0)" for c in COLUMNS)
    return (
        f"{insert} migration_ledgertally (wave_id, state, shard, studies, "
        f"{', '.join(COLUMNS)}) VALUES ({key}, 0, 0, 0, 0){conflict}; "
        f"UPDATE migration_ledgertally SET studies = studies {sign} 1, {sums} "
        f"WHERE wave_id = {row}.wave_id AND state = {row}.state "
        f"AND shard = {row}.id % {TALLY_SHARDS};"
    )


CHANGED = " OR ".join(
    f"OLD.{c} IS NOT NEW.{c}" for c in ("wave_id", "state", *COLUMNS)
)  # SQLite's IS NOT; PostgreSQL's is IS DISTINCT FROM


def install_sql(vendor):
    """Statements creating the triggers on this database (PostgreSQL or SQLite)."""
    if vendor == "sqlite":
        return [
            "CREATE TRIGGER ledger_tally_insert AFTER INSERT ON migration_wavestudy "
            f"BEGIN {_change('NEW', '+', vendor)} END",
            "CREATE TRIGGER ledger_tally_delete AFTER DELETE ON migration_wavestudy "
            f"BEGIN {_change('OLD', '-', vendor)} END",
            "CREATE TRIGGER ledger_tally_update AFTER UPDATE ON migration_wavestudy "
            f"WHEN {CHANGED} BEGIN {_change('OLD', '-', vendor)} "
            f"{_change('NEW', '+', vendor)} END",
        ]
    body = (
        "BEGIN IF TG_OP <> 'INSERT' THEN "
        + _change("OLD", "-", vendor)
        + " END IF; IF TG_OP <> 'DELETE' THEN "
        + _change("NEW", "+", vendor)
        + " END IF; RETURN NULL; END"
    )
    changed = CHANGED.replace(" IS NOT ", " IS DISTINCT FROM ")
    return [
        f"CREATE FUNCTION ledger_tally() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$",
        "CREATE TRIGGER ledger_tally_insert_delete AFTER INSERT OR DELETE ON migration_wavestudy "
        "FOR EACH ROW EXECUTE FUNCTION ledger_tally()",
        "CREATE TRIGGER ledger_tally_update AFTER UPDATE ON migration_wavestudy "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION ledger_tally()",
    ]


def backfill_sql():
    return (
        "INSERT INTO migration_ledgertally (wave_id, state, shard, studies, "
        f"{', '.join(COLUMNS)}) SELECT wave_id, state, id % {TALLY_SHARDS}, COUNT(*), "
        + ", ".join(f"COALESCE(SUM({c}), 0)" for c in COLUMNS)
        + " FROM migration_wavestudy GROUP BY wave_id, state, id % "
        + str(TALLY_SHARDS)
    )


def uninstall_sql(vendor):
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS ledger_tally_{op}" for op in ("insert", "delete", "update")
        ]
    return [
        "DROP TRIGGER IF EXISTS ledger_tally_insert_delete ON migration_wavestudy",
        "DROP TRIGGER IF EXISTS ledger_tally_update ON migration_wavestudy",
        "DROP FUNCTION IF EXISTS ledger_tally()",
    ]


def install(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for statement in [*install_sql(schema_editor.connection.vendor), backfill_sql()]:
            cursor.execute(statement)


def uninstall(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for statement in uninstall_sql(schema_editor.connection.vendor):
            cursor.execute(statement)
