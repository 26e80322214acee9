"""Benchmark: the inventory crawl of 10,000 studies from an Orthanc capped at 100 C-FIND
results, against one uncapped `findscu` (dcmtk) query of the same studies.

    .venv/bin/python bench/inventory.py [--studies 10000] [--cap 100] [--fresh]
        [--pacs-index sqlite|postgresql] [--pacs-index-url postgres://postgres@127.0.0.1:5432/]

What is compared (`ratio_findscu` = crawl studies/s ÷ findscu studies/s):

* the crawl: `inventory crawl` of a new source (no ledger) against an Orthanc capped at
  `--cap` (LimitFindResults), with the extra partitions after the dated and timed trees
  switched on (INVENTORY_PARTITIONS, all four by default; `INVENTORY_PARTITIONS=` runs
  the dated and timed trees alone), and the source's association
  limit set to the 4 associations this Orthanc serves at once (the crawl asks up to that
  many C-FINDs in parallel; findscu uses one). It must find every study and,
  capped, cannot prove completeness by C-FIND alone (`complete` false, `unproven`);
* the baseline: dcmtk's `findscu`, one universal study-level C-FIND asking the same keys,
  against a second Orthanc holding a copy of the same storage **without** the cap: the
  cheapest possible listing, which the capped PACS would refuse. The crawl's target is a
  fraction (0.3) of it, not parity: it partitions where the baseline asks once.

Each side's PACS work is measured too: the CPU seconds its Orthanc spent answering
(`pacs_cpu_crawl_s`, `pacs_cpu_findscu_s`, from /proc). Orthanc answers one C-FIND at a
time (its index is one SQLite database behind one lock: four associations answer no
faster than one), so the crawl can never take less than `pacs_cpu_crawl_s`:
`ratio_bound` (findscu's seconds ÷ the crawl's PACS seconds) is the `ratio_findscu` the
crawl would reach if its own side cost nothing and the PACS never waited for it.
`ratio_pacs_cpu` (findscu's PACS seconds ÷ the crawl's) is the load the crawl puts on
the PACS against one listing. With `--pacs-index postgresql` the index's work runs in
the PostgreSQL server, which is not counted: both are then null. `questions_by_stage`
gives each tree's C-FINDs and matches.

`--pacs-index postgresql` keeps the PACS's index in PostgreSQL (the Orthanc
PostgreSQL plugin, Debian package `orthanc-postgresql`, a database it creates at
`--pacs-index-url`) instead of Orthanc's default SQLite: a PACS whose every C-FIND costs
little and whose every match costs more. Both Orthancs then share that index and storage.

Both Orthancs run side by side, and the three findscu runs are spread around the crawl
and the re-crawl (before, between, after), so that both sides are measured under the
same load on a shared machine; the baseline is the fastest of the three (one run varies
by a factor of three on a loaded machine). The load average is printed with each result.
Seeding takes a few minutes (Orthanc's REST API, tiny one-instance studies, a thread
pool); the seeded storage is kept in /tmp/bench-inventory-orthanc (and its copy in
/tmp/bench-inventory-orthanc-uncapped) and reused unless --fresh. Prints studies per
second for both, their ratio (`ratio_findscu`), and one JSON line last.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DB = Path("/tmp/bench-inventory.sqlite3")
STORE = Path("/tmp/bench-inventory-orthanc")
UNCAPPED = Path("/tmp/bench-inventory-orthanc-uncapped")
CALLING_AET = "CCBENCH"
MODALITIES = ("CT", "MR", "CR", "US", "MG")
ASSOCIATIONS = 4  # the source's association limit: Orthanc serves 4 at once (DicomThreadsCount)


def setup_django():
    os.environ["DATABASE_URL"] = f"sqlite:///{DB}"
    os.environ["VAR_DIR"] = "/tmp/bench-inventory-var"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commandcenter.settings")
    os.environ.setdefault("DEBUG", "true")  # a local run: the development key in var/
    from devstack.services.redis import EmbeddedRedis

    redis = EmbeddedRedis().start()  # the crawl publishes its progress events
    os.environ["REDIS_URL"] = redis.url
    import django

    django.setup()
    from django.core.management import call_command

    DB.unlink(missing_ok=True)
    call_command("migrate", verbosity=0)
    return redis


PG_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"
PG_DATABASE = "bench_inventory_orthanc"


class Pacs:
    """Where the benchmark's Orthancs keep their studies: storage folders and an index,
    SQLite (Orthanc's default: a copy of the storage for the uncapped Orthanc) or
    PostgreSQL (one index and one storage folder, shared)."""

    def __init__(self, index, url):
        self.index, self.url = index, url
        self.store = STORE if index == "sqlite" else Path(f"{STORE}-pg")
        self.uncapped = UNCAPPED if index == "sqlite" else Path(f"{UNCAPPED}-pg")

    def reset(self):
        shutil.rmtree(self.store, ignore_errors=True)
        shutil.rmtree(self.uncapped, ignore_errors=True)
        if self.index == "postgresql":
            self._sql(f"DROP DATABASE IF EXISTS {PG_DATABASE}")

    def prepare(self):
        self.store.mkdir(parents=True, exist_ok=True)
        exists = "SELECT 1 FROM pg_database WHERE datname = %s"
        if self.index == "postgresql" and not self._sql(exists, [PG_DATABASE]):
            self._sql(f"CREATE DATABASE {PG_DATABASE}")

    def _sql(self, statement, params=None):
        """Run one statement in the server's `postgres` database; its first row, if any."""
        import psycopg

        with psycopg.connect(self.url + "postgres", autocommit=True) as db:
            found = db.execute(statement, params)
            return found.fetchone() if found.description else None

    def config(self):
        if self.index == "sqlite":
            return {}
        from urllib.parse import urlparse

        if not Path(PG_PLUGIN).exists():
            sys.exit(f"{PG_PLUGIN} is missing: apt-get install orthanc-postgresql")
        url = urlparse(self.url)
        return {
            "Plugins": [PG_PLUGIN],
            "StorageDirectory": str(self.store / "storage"),
            "PostgreSQL": {
                "EnableIndex": True, "EnableStorage": False, "Lock": False,
                "Host": url.hostname, "Port": url.port or 5432, "Database": PG_DATABASE,
                "Username": url.username or "postgres", "Password": url.password or "",
            },
        }  # fmt: skip

    def start(self, cap, uncapped=False):
        from devstack.services.base import LOOPBACK
        from devstack.services.orthanc import Orthanc

        return Orthanc(
            aet="BENCHPACS",
            limit_find_results=cap,
            modalities={CALLING_AET: (LOOPBACK, 1)},
            workdir=self.uncapped if uncapped else self.store,
            config_overrides=self.config(),
        ).start()

    def copy_storage(self, count):
        """The uncapped Orthanc's storage: with SQLite a copy of the seeded one (same
        studies, same index), made once per seeding, while no Orthanc runs on either."""
        marker = self.uncapped / f"copied-{count}"
        if marker.exists():
            return
        shutil.rmtree(self.uncapped, ignore_errors=True)
        self.uncapped.mkdir(parents=True)
        if self.index == "sqlite":
            shutil.copytree(self.store / "storage", self.uncapped / "storage")
        marker.write_text("ok\n")


def load():
    return round(os.getloadavg()[0], 2)


def pacs_cpu(pacs):
    """CPU seconds (user + system) the PACS process has spent so far."""
    fields = Path(f"/proc/{pacs.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pacs_seconds(pacs, work):
    """(what `work()` returns, the PACS's CPU seconds while it ran)."""
    before = pacs_cpu(pacs)
    done = work()
    return done, pacs_cpu(pacs) - before


def seed(pacs, count):
    """Upload `count` one-instance 16×16 studies (1% undated)."""
    from devstack import synthetic

    per = count // len(MODALITIES)
    start, done = time.perf_counter(), 0

    def blobs():
        for index, modality in enumerate(MODALITIES):
            n = per if index else count - per * (len(MODALITIES) - 1)
            for datasets in synthetic.iter_studies(
                studies=n, rows=16, cols=16, modality=modality, seed=900 + index,
                undated=n // 100, date_from=date(2005, 1, 1), date_to=date(2024, 12, 31),
            ):  # fmt: skip
                yield synthetic.dataset_bytes(datasets[0])

    with ThreadPoolExecutor(8) as pool:
        for chunk in _chunks(blobs(), 500):
            list(pool.map(lambda blob: _upload(pacs, blob), chunk))
            done += len(chunk)
            if done % 1000 == 0 or done == count:
                rate = done / (time.perf_counter() - start)
                print(f"seeded {done}/{count} studies ({rate:.0f}/s)", flush=True)


def _chunks(items, size):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _upload(pacs, blob, attempts=3):
    """Orthanc now and then drops a kept-alive HTTP connection under load: try again."""
    import requests

    for attempt in range(attempts):
        try:
            return pacs.upload(blob)
        except requests.ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def crawl(pacs, count):
    """One study-level crawl (a second call is the incremental re-crawl, which plans its
    ranges from the ledger); returns (seconds, summary)."""
    from devstack.services.base import LOOPBACK
    from inventory import actions, engine

    source, _ = actions.register_source(
        "bench", pacs.aet, LOOPBACK, pacs.dicom_port, calling_ae_title=CALLING_AET,
        max_associations=ASSOCIATIONS,
    )  # fmt: skip
    run = actions.start_crawl(source, with_series=False, enqueue=False)
    start = time.perf_counter()
    result = engine.execute_crawl(run.pk)
    seconds = time.perf_counter() - start
    if result["studies"] != count or result["new"] not in (0, count):
        raise SystemExit(f"the crawl missed studies: {result}")
    return seconds, {**result, "by_stage": questions_by_stage(run)}


def questions_by_stage(run):
    """{tree: [C-FINDs asked, matches returned]}: where the crawl's questions went."""
    from django.db.models import Count, Sum

    from inventory.models import CrawlRange

    asked = CrawlRange.objects.filter(run=run, count__isnull=False).values_list("kind")
    return {kind: [n, total] for kind, n, total in asked.annotate(Count("id"), Sum("count"))}


def _findscu(pacs, expected):
    """One universal study-level C-FIND with dcmtk's findscu, asking the crawl's keys;
    its seconds."""
    from inventory.crawler import STUDY_KEYS

    binary = shutil.which("findscu") or sys.exit("findscu is missing: apt-get install dcmtk")
    keys = ["-k", "QueryRetrieveLevel=STUDY"]
    for keyword in STUDY_KEYS:
        keys += ["-k", keyword]
    command = [binary, "-S", "-v", "-aet", CALLING_AET, "-aec", pacs.aet, "127.0.0.1"]
    start = time.perf_counter()
    done = subprocess.run([*command, str(pacs.dicom_port), *keys], capture_output=True, check=True)
    seconds = time.perf_counter() - start
    matches = (done.stdout + done.stderr).count(b"(Pending)")
    if matches != expected:
        raise SystemExit(f"findscu saw {matches} studies, expected {expected}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--cap", type=int, default=100)
    parser.add_argument("--fresh", action="store_true", help="seed a new Orthanc")
    parser.add_argument("--pacs-index", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pacs-index-url", default="postgres://postgres@127.0.0.1:5432/")
    args = parser.parse_args()
    pacs = Pacs(args.pacs_index, args.pacs_index_url)
    if args.fresh:
        pacs.reset()
    pacs.prepare()
    redis = setup_django()
    try:
        capped = pacs.start(args.cap)
        try:
            if not (pacs.store / f"seeded-{args.studies}").exists():
                seed(capped, args.studies)
                capped.stop()
                (pacs.store / f"seeded-{args.studies}").write_text("ok\n")
                capped = pacs.start(args.cap)
            pacs.copy_storage(args.studies)
            uncapped = pacs.start(0, uncapped=True)
            try:
                measured = measure(args, capped, uncapped)
            finally:
                uncapped.stop()
        finally:
            capped.stop()
    finally:
        redis.stop()
    report(args, *measured)


def measure(args, capped, uncapped):
    """findscu, crawl, findscu, re-crawl, findscu: both sides under the same load."""
    if capped.count_studies() != args.studies:
        raise SystemExit(f"the capped Orthanc holds {capped.count_studies()} studies")
    finds, loads = [], {"findscu": []}

    def find():
        finds.append(pacs_seconds(uncapped, lambda: _findscu(uncapped, args.studies)))
        loads["findscu"].append(load())

    find()
    print(f"crawling {args.studies} studies capped at {args.cap}…", flush=True)
    first = pacs_seconds(capped, lambda: crawl(capped, args.studies))
    loads["crawl"] = load()
    find()
    print("crawling again (incremental, planned from the ledger)…", flush=True)
    second = pacs_seconds(capped, lambda: crawl(capped, args.studies))
    loads["recrawl"] = load()
    find()
    return first, second, finds, loads


def report(args, first, second, finds, loads):
    from django.conf import settings

    ((crawl_s, result), crawl_cpu), ((recrawl_s, again), recrawl_cpu) = first, second
    find_s, find_cpu = min(finds)
    crawl_rate, find_rate = args.studies / crawl_s, args.studies / find_s
    recrawl_rate = args.studies / recrawl_s
    print(
        f"crawl (cap {args.cap}, partitions {','.join(settings.INVENTORY_PARTITIONS)}): "
        f"{args.studies} studies in {crawl_s:.1f} s = {crawl_rate:.0f} studies/s, "
        f"{result['queries']} C-FINDs, {result['leaf_ranges']} leaf ranges, "
        f"complete={result['complete']}, load {loads['crawl']}"
    )
    print(
        f"re-crawl: {recrawl_s:.1f} s = {recrawl_rate:.0f} studies/s, "
        f"{again['queries']} C-FINDs, complete={again['complete']}, load {loads['recrawl']}"
    )
    print(
        "findscu, one universal C-FIND against the same studies without the cap, "
        f"best of {', '.join(f'{f:.1f}' for f, _cpu in finds)} s (load "
        f"{', '.join(map(str, loads['findscu']))}): {find_s:.1f} s = {find_rate:.0f} studies/s"
    )
    counted = args.pacs_index == "sqlite"  # else the index works in PostgreSQL, uncounted
    bound = round(find_s / crawl_cpu, 4) if counted else None
    pacs_ratio = round(find_cpu / crawl_cpu, 4) if counted else None
    print(
        f"Orthanc CPU: crawl {crawl_cpu:.1f} s, re-crawl {recrawl_cpu:.1f} s, findscu "
        f"{find_cpu:.1f} s"
        + (f"; a crawl asking these questions reaches at most {bound:.3f}"
           if counted else " (the index's work in PostgreSQL not counted)")
    )  # fmt: skip
    print(f"ratio crawl/findscu: {crawl_rate / find_rate:.3f}")
    print(f"ratio re-crawl/findscu: {recrawl_rate / find_rate:.3f}")
    print(
        json.dumps(
            {
                "bench": "inventory",
                "compares": "capped crawl with partitions vs one uncapped findscu C-FIND",
                "studies": args.studies,
                "cap": args.cap,
                "pacs_index": args.pacs_index,
                "associations": ASSOCIATIONS,
                "crawl_seconds": round(crawl_s, 2),
                "crawl_studies_per_s": round(crawl_rate, 1),
                "crawl_queries": result["queries"],
                "leaf_ranges": result["leaf_ranges"],
                "complete": result["complete"],
                "recrawl_seconds": round(recrawl_s, 2),
                "recrawl_studies_per_s": round(recrawl_rate, 1),
                "recrawl_queries": again["queries"],
                "recrawl_complete": again["complete"],
                "findscu_seconds": round(find_s, 2),
                "findscu_runs": [round(f, 2) for f, _cpu in finds],
                "findscu_studies_per_s": round(find_rate, 1),
                "ratio": round(crawl_rate / find_rate, 4),
                "ratio_findscu": round(crawl_rate / find_rate, 4),
                "partitions": result["found_by"],
                "partitions_on": [p for p in settings.INVENTORY_PARTITIONS if p],
                "questions_by_stage": result["by_stage"],
                "recrawl_ratio": round(recrawl_rate / find_rate, 4),
                "pacs_cpu_crawl_s": round(crawl_cpu, 2),
                "pacs_cpu_recrawl_s": round(recrawl_cpu, 2),
                "pacs_cpu_findscu_s": round(find_cpu, 2),
                "ratio_pacs_cpu": pacs_ratio,
                "ratio_bound": bound,
                "load_avg": loads,
            }
        )
    )


if __name__ == "__main__":
    main()
