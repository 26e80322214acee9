"""Benchmark: the inventory crawl of 10,000 studies from an Orthanc capped at 100 C-FIND
results, against one uncapped `findscu` (dcmtk) query of the same range.

    .venv/bin/python bench/inventory.py [--studies 10000] [--cap 100] [--fresh]

The crawl must find every study, with the extra partitions after the dated and timed trees
switched on (INVENTORY_PARTITIONS, all four by default); against a capped PACS it cannot
prove completeness by C-FIND alone, and says so (`complete` false, `unproven`). The
baseline is the cheapest possible listing, which a capped PACS would refuse. Seeding takes
a few minutes (Orthanc's REST API, tiny one-instance studies, a thread pool); the seeded
Orthanc storage is kept in /tmp/bench-inventory-orthanc and reused unless --fresh. Prints
studies per second for both, their ratio (`ratio_findscu`), and one JSON line last.
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
CALLING_AET = "CCBENCH"
MODALITIES = ("CT", "MR", "CR", "US", "MG")


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


def orthanc(cap):
    from devstack.services.base import LOOPBACK
    from devstack.services.orthanc import Orthanc

    return Orthanc(
        aet="BENCHPACS",
        limit_find_results=cap,
        modalities={CALLING_AET: (LOOPBACK, 1)},
        workdir=STORE,
    ).start()


def seed(pacs, count):
    """Upload `count` one-instance 16×16 studies (1% undated) unless already there."""
    from devstack import synthetic

    marker = STORE / f"seeded-{count}"
    if marker.exists() and pacs.count_studies() == count:
        print(f"reusing the seeded Orthanc ({count} studies)", flush=True)
        return
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
    marker.write_text("ok\n")


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
    from inventory import actions

    source, _ = actions.register_source(
        "bench", pacs.aet, LOOPBACK, pacs.dicom_port, calling_ae_title=CALLING_AET
    )
    run = actions.start_crawl(source, with_series=False, enqueue=False)
    start = time.perf_counter()
    result = actions.execute_crawl(run.pk)
    seconds = time.perf_counter() - start
    if result["studies"] != count or result["new"] not in (0, count):
        raise SystemExit(f"the crawl missed studies: {result}")
    return seconds, result


def findscu(pacs, runs=3):
    """The fastest of `runs` universal study-level C-FINDs with dcmtk's findscu (one run
    varies by a factor of three on a loaded machine); returns (seconds, matches)."""
    return min(_findscu(pacs) for _run in range(runs))


def _findscu(pacs):
    from inventory.crawler import STUDY_KEYS

    binary = shutil.which("findscu") or sys.exit("findscu is missing: apt-get install dcmtk")
    keys = ["-k", "QueryRetrieveLevel=STUDY"]
    for keyword in STUDY_KEYS:
        keys += ["-k", keyword]
    command = [binary, "-S", "-v", "-aet", CALLING_AET, "-aec", pacs.aet, "127.0.0.1"]
    start = time.perf_counter()
    done = subprocess.run([*command, str(pacs.dicom_port), *keys], capture_output=True, check=True)
    seconds = time.perf_counter() - start
    output = done.stdout + done.stderr
    matches = output.count(b"(Pending)")
    return seconds, matches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--cap", type=int, default=100)
    parser.add_argument("--fresh", action="store_true", help="seed a new Orthanc")
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(STORE, ignore_errors=True)
    STORE.mkdir(parents=True, exist_ok=True)
    redis = setup_django()
    try:
        capped = orthanc(args.cap)
        try:
            seed(capped, args.studies)
            print(f"crawling {args.studies} studies capped at {args.cap}…", flush=True)
            crawl_s, result = crawl(capped, args.studies)
            print("crawling again (incremental, planned from the ledger)…", flush=True)
            recrawl_s, again = crawl(capped, args.studies)
        finally:
            capped.stop()
        uncapped = orthanc(0)
        try:
            find_s, matches = findscu(uncapped)
        finally:
            uncapped.stop()
    finally:
        redis.stop()
    if matches != args.studies:
        raise SystemExit(f"findscu saw {matches} studies, expected {args.studies}")
    report(args, (crawl_s, result), (recrawl_s, again), find_s)


def report(args, first, second, find_s):
    (crawl_s, result), (recrawl_s, again) = first, second
    crawl_rate, find_rate = args.studies / crawl_s, args.studies / find_s
    recrawl_rate = args.studies / recrawl_s
    print(
        f"crawl (cap {args.cap}): {args.studies} studies in {crawl_s:.1f} s = "
        f"{crawl_rate:.0f} studies/s, {result['queries']} C-FINDs, "
        f"{result['leaf_ranges']} leaf ranges, complete={result['complete']}"
    )
    print(
        f"re-crawl: {recrawl_s:.1f} s = {recrawl_rate:.0f} studies/s, "
        f"{again['queries']} C-FINDs, complete={again['complete']}"
    )
    print(f"findscu, one uncapped query (best of 3): {find_s:.1f} s = {find_rate:.0f} studies/s")
    print(f"ratio crawl/findscu: {crawl_rate / find_rate:.3f}")
    print(f"ratio re-crawl/findscu: {recrawl_rate / find_rate:.3f}")
    print(
        json.dumps(
            {
                "bench": "inventory",
                "studies": args.studies,
                "cap": args.cap,
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
                "findscu_studies_per_s": round(find_rate, 1),
                "ratio": round(crawl_rate / find_rate, 4),
                "ratio_findscu": round(crawl_rate / find_rate, 4),
                "partitions": result["found_by"],
                "recrawl_ratio": round(recrawl_rate / find_rate, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
