"""Benchmark: the ledger at scale. Fills a PostgreSQL database of its own with inventory
studies, their migration ledger rows and per-instance records, measures its size,
extrapolates to a billion instances, and times the server side of the pages and API
endpoints a user opens during a migration.

    .venv/bin/python bench/scale.py [--studies 10000000] [--instances 100000000]
                                    [--database cc_scale] [--reps 5] [--reuse]

The schema comes from `manage.py migrate` against that database; rows are generated
here and loaded with COPY (not the ORM): STUDIES inventory studies of one PACS, one
ledger row each across ten waves (95 % done, 1 % failed, 0.5 % quarantined, the rest
queued), and INSTANCES per-instance records (StoredInstance) spread over the done rows;
the first wave has a finished whole-wave reconciliation. Every page is requested with
Django's test client in this process as a logged-in engineer, REPS times; the median
counts. Prints a table and one JSON line last: `<page>_ms` for each page, `rows`
(studies), `instances`, `db_gb`, `db_gb_at_1e9_instances`, and `slow_pages` (over
300 ms). --reuse keeps a database already filled with the same shape.
"""

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SERVER = "postgres://postgres@127.0.0.1:5432"
WAVES = 10
TARGET_MS = 300
STATES = ((950, "done"), (10, "failed"), (5, "quarantined"), (35, "queued"))  # per 1,000
MODALITIES = ("CT", "MR", "CR", "US", "MG", "DX", "CT\\\\SR", "PT")
UID_ROOT = "1.2.826.0.1.3680043.10.543"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
NULL = "\\N"


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=10_000_000)
    parser.add_argument("--instances", type=int, default=100_000_000)
    parser.add_argument("--database", default="cc_scale")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep a database of this shape")
    return parser.parse_args()


def say(text):
    print(text, flush=True)


# --- the database ----------------------------------------------------------------------


def psql(sql, database="postgres"):
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", sql]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def prepare_database(args):
    """A fresh database (migrated by `setup_django`); True when `--reuse` found it filled
    with this shape."""
    shape = f"{args.studies}/{args.instances}"
    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{args.database}'") == "1"
    if args.reuse and exists:
        comment = psql(f"SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                       f"WHERE datname = '{args.database}'")  # fmt: skip
        if comment == shape:
            return True
    psql(f'DROP DATABASE IF EXISTS "{args.database}"')
    psql(f'CREATE DATABASE "{args.database}"')
    return False


def mark_filled(args):
    psql(f"COMMENT ON DATABASE \"{args.database}\" IS '{args.studies}/{args.instances}'")


def setup_django(args):
    """Django on that database (DEBUG on, so each page's queries are counted)."""
    from bench import django_env

    return django_env.start(Path("/tmp/bench-scale"), f"{SERVER}/{args.database}")


# --- generated rows --------------------------------------------------------------------


def copy_rows(table, columns, lines, block=20_000):
    """COPY `lines` (tab-separated text rows) into `table`, in blocks, with its plain
    indexes dropped and built again afterwards, as a bulk load is done (keys and unique
    constraints stay)."""
    from django.db import connection

    with connection.cursor() as cursor:
        definitions = plain_indexes(cursor, table)
        for name, _definition in definitions:
            cursor.execute(f'DROP INDEX "{name}"')
        raw = cursor.connection  # psycopg's connection
        with raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for n, line in enumerate(lines, 1):
                buffer.write(line)
                if n % block == 0:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for _name, definition in definitions:
            cursor.execute(definition)


def plain_indexes(cursor, table):
    """[(name, CREATE INDEX statement)] of `table`'s indexes that back no constraint."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname "
        "NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    return cursor.fetchall()


STUDY_COLUMNS = (
    "id", "source_id", "study_uid", "patient_id", "patient_name", "accession_number",
    "study_date", "description", "modalities", "num_series", "num_instances", "first_seen",
    "last_seen", "vanished", "problems", "charset", "has_problems", "series_synced",
    "study_time", "found_by",
)  # fmt: skip


def study_lines(source_id, studies, per_study):
    from datetime import date, timedelta

    epoch = date(2000, 1, 1)
    seen = "2026-12-01 00:00:00+00"
    patients = max(1, studies // 3)
    for i in range(1, studies + 1):
        day = epoch + timedelta(days=(i * 7919) % 9000)
        problem = i % 1000 == 0
        problems, flag = ('[{"code": "missing_tag"}]', "t") if problem else ("[]", "f")
        yield (
            f"{i}\t{source_id}\t{UID_ROOT}.{i}\tP{i % patients:09d}\tDOE^PAT{i % 9973}\t"
            f"A{i:012d}\t{day}\tSTUDY {i % 97}\t{MODALITIES[i % len(MODALITIES)]}\t3\t"
            f"{per_study}\t{seen}\t{seen}\tf\t{problems}\tISO_IR 100\t{flag}\tt\t101500\tdated\n"
        )


LEDGER_COLUMNS = (
    "id", "wave_id", "study_id", "state", "attempts", "lease_owner", "error_class",
    "last_error", "instances_reported", "instances_received", "instances_stored",
    "instances_quarantined", "conflicts", "bytes_stored", "started_at", "finished_at",
    "duration_s", "manifest_key", "manifest_sha256", "updated_at", "host", "key_format",
)  # fmt: skip


def state_of(i):
    slot = i % 1000
    for share, state in STATES:
        if slot < share:
            return state
        slot -= share
    return STATES[-1][1]


def ledger_lines(wave_ids, studies, per_study):
    per_wave = -(-studies // len(wave_ids))
    at = "2026-12-02 03:00:00+00"
    for i in range(1, studies + 1):
        state = state_of(i)
        done = state == "done"
        stored = per_study if done else 0
        error = {"failed": "timeout", "quarantined": "bad_data"}.get(state, "")
        when, reported, took = (at, per_study, "4.2") if done else (NULL, NULL, NULL)
        manifest = f"archive/studies/{UID_ROOT}.{i}/manifest.json" if done else ""
        layout = f"archive/studies/{UID_ROOT}.{i}/series/{{series}}/instances/{{sop}}.dcm"
        sha = f"{i:064x}" if done else ""
        yield (
            f"{i}\t{wave_ids[(i - 1) // per_wave]}\t{i}\t{state}\t{int(state != 'queued')}\t\t"
            f"{error}\t{'attempt failed' if error else ''}\t{reported}\t{stored}\t{stored}\t"
            f"{per_study if state == 'quarantined' else 0}\t0\t{stored * 524_288}\t{when}\t"
            f"{when}\t{took}\t{manifest}\t{sha}\t{at}\t\t{layout if done else ''}\n"
        )


INSTANCE_COLUMNS = (
    "ledger_id",
    "sop_uid",
    "series_uid",
    "sop_class",
    "transfer_syntax",
    "size",
    "sha256",
    "key",
    "role",
    "reported_syntax",
)  # fmt: skip  ("key": the column of StoredInstance.own_key)


def instance_lines(studies, instances):
    """`instances` records over the done ledger rows, `instances / done rows` each."""
    done = [i for i in range(1, studies + 1) if state_of(i) == "done"]
    per_row, extra = divmod(instances, len(done))
    made = 0
    for n, i in enumerate(done):
        series = f"{UID_ROOT}.{i}.1"
        for k in range(per_row + (1 if n < extra else 0)):
            sop = f"{UID_ROOT}.{i}.1.{k + 1}"
            made += 1
            yield (
                f"{i}\t{sop}\t{series}\t{CT_IMAGE}\t{EXPLICIT_LE}\t524288\t\\\\x{made:064x}\t"
                f"\tstored\t{EXPLICIT_LE}\n"  # its key: where the study's key format puts it
            )


def fill(args):
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from core.access import ENGINEER, ensure_roles
    from inventory.models import PacsSource
    from migration.models import Destination, Wave, WaveState

    ensure_roles()
    user = User.objects.create_user("scale-engineer", "e@hospital.test", "x")
    user.groups.add(Group.objects.get(name=ENGINEER))
    source = PacsSource.objects.create(name="archive", ae_title="ARCHIVE", host="127.0.0.1",
                                       port=104, calling_ae_title="CC")  # fmt: skip
    destination = Destination.objects.create(name="cloud", kind="s3", bucket="archive",
                                             region="eu-west-1")  # fmt: skip
    waves = [
        Wave.objects.create(name=f"wave-{n:02d}", source=source, destination=destination,
                            state=WaveState.RUNNING if n == WAVES - 1 else WaveState.DONE)
        for n in range(WAVES)
    ]  # fmt: skip
    per_study = max(1, args.instances // args.studies)
    timed("studies", copy_studies, source.pk, args.studies, per_study)
    timed("ledger rows", copy_ledger, [w.pk for w in waves], args.studies, per_study)
    timed("instances", copy_rows, "migration_storedinstance", INSTANCE_COLUMNS,
          instance_lines(args.studies, args.instances))  # fmt: skip
    with connection.cursor() as cursor:
        for table in ("inventory_study", "migration_wavestudy", "migration_storedinstance"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    timed("reconciliation of the first wave", reconcile, waves[0])
    timed("ANALYZE", lambda: connection.cursor().execute("ANALYZE"))


def copy_ledger(wave_ids, studies, per_study):
    from migration import tally

    copy_rolled_up(tally.LEDGER, LEDGER_COLUMNS, ledger_lines(wave_ids, studies, per_study))


def copy_studies(source_id, studies, per_study):
    from inventory import rollup

    copy_rolled_up(rollup.STUDIES, STUDY_COLUMNS, study_lines(source_id, studies, per_study))


def copy_rolled_up(rollup, columns, lines):
    """COPY into a table whose tallies triggers keep, with its triggers off, then the
    tallies made at once as the migration that installs the triggers does (a trigger per
    COPIED row is slow)."""
    from django.db import connection

    table = rollup.counted_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        copy_rows(table, columns, lines)
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        cursor.execute(rollup.backfill_sql(connection.vendor))


def reconcile(wave):
    """A finished whole-wave reconciliation with one row per study, as validation leaves
    it (made here in SQL: the real one reads the bucket back)."""
    from django.db import connection

    from migration.models import ValidationRun

    run = ValidationRun.objects.create(wave=wave, kind=ValidationRun.Kind.RECONCILE,
                                       state=ValidationRun.State.DONE)  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO migration_reconciliationrow (run_id, ledger_id, study_uid, state,
                 reported_at_inventory, on_pacs_now, in_destination, verdict, missing, extra,
                 transcoded)
               SELECT %s, l.id, s.study_uid, l.state, l.instances_reported,
                 l.instances_reported, l.instances_stored,
                 CASE WHEN l.state = 'done' THEN 'complete' ELSE l.state END,
                 greatest(l.instances_reported - l.instances_stored, 0), 0, 0
               FROM migration_wavestudy l JOIN inventory_study s ON s.id = l.study_id
               WHERE l.wave_id = %s""",
            [run.pk, wave.pk],
        )
        cursor.execute(
            """UPDATE migration_validationrun SET finished_at = now(), started_at = now(),
               totals = (SELECT jsonb_build_object('wave', %s::text, 'studies', count(*),
                 'complete', count(*) FILTER (WHERE verdict = 'complete'))
                 FROM migration_reconciliationrow WHERE run_id = %s)
               WHERE id = %s""",
            [wave.name, run.pk, run.pk],
        )


def timed(label, function, *args):
    started = time.perf_counter()
    result = function(*args)
    say(f"  {label}: {time.perf_counter() - started:.1f} s")
    return result


# --- sizes -----------------------------------------------------------------------------


def sizes(args):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        (database,) = cursor.fetchone()
        cursor.execute("SELECT pg_total_relation_size('migration_storedinstance')")
        (per_instance_table,) = cursor.fetchone()
    per_instance = per_instance_table / max(1, args.instances)
    per_study = (database - per_instance_table) / max(1, args.studies)
    at_1e9 = per_instance * 1e9 + per_study * 1e7  # a 10⁷-study archive of 10⁹ instances
    return {
        "db_gb": round(database / 1e9, 3),
        "instance_table_gb": round(per_instance_table / 1e9, 3),
        "bytes_per_instance": round(per_instance),
        "bytes_per_study": round(per_study),
        "db_gb_at_1e9_instances": round(at_1e9 / 1e9, 1),
    }


# --- the pages -------------------------------------------------------------------------


def pages():
    """(key, URL) of what a user opens during a migration; the deep page's cursor is found
    by following `before=` from the study list."""
    last = "wave-09"
    return [
        ("inventory_dashboard", "/inventory/"),
        ("study_list", "/inventory/studies/"),
        ("study_list_filtered", "/inventory/studies/?modality=MR&date_from=2010-01-01"),
        ("study_list_deep", "/inventory/studies/?before={deep}"),
        ("wave_page", f"/migration/waves/{last}/"),
        ("wave_studies", f"/migration/waves/{last}/studies/"),
        ("wave_status_api", "/migration/api/waves/{wave_id}/"),
        ("migration_overview", "/migration/"),
        ("reconciliation_page", "/migration/waves/wave-00/validation/report/"),
        ("validation_summary", "/migration/validation/"),
        ("go_no_go", "/roadmap/readiness/"),
        ("monitoring_board", "/command-center/monitoring/"),
        ("studies_api", "/inventory/api/studies/"),
        ("inventory_summary_api", "/inventory/api/summary/"),
        ("migration_measures_api", "/migration/api/measures/"),
    ]


def time_pages(reps):
    from django.contrib.auth.models import User
    from django.db import connection, reset_queries
    from django.test import Client

    from migration.models import Wave

    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(username="scale-engineer"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM inventory_study")
        (top,) = cursor.fetchone()
    fill_in = {"deep": top // 2, "wave_id": Wave.objects.get(name="wave-09").pk}
    results = {}
    for key, url in pages():
        url = url.format(**fill_in)
        times, status, queries = [], None, 0
        for _ in range(reps):
            reset_queries()
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            status, queries = response.status_code, len(connection.queries)
        results[key] = {"ms": statistics.median(times), "status": status, "queries": queries}
        say(f"  {key:24} {results[key]['ms']:8.1f} ms  HTTP {status}  {queries} queries  {url}")
    return results


def main():
    args = parse()
    reused = prepare_database(args)
    redis = setup_django(args)
    try:
        if not reused:
            say(f"filling {args.studies:,} studies, {args.instances:,} instances")
            fill(args)
            mark_filled(args)
        size = sizes(args)
        say(f"database: {size}")
        say(f"pages (median of {args.reps}, server side, in process):")
        results = time_pages(args.reps)
    finally:
        redis.stop()
    slow = sorted(key for key, r in results.items() if r["ms"] > TARGET_MS or r["status"] != 200)
    say(f"over {TARGET_MS} ms or not 200: {slow or 'none'}")
    print(json.dumps({
        **{f"{key}_ms": round(r["ms"], 1) for key, r in results.items()},
        "rows": args.studies, "instances": args.instances, **size, "slow_pages": slow,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
