"""Benchmark: the sync lag while a bulk wave runs (issue 18).

    .venv/bin/python bench/sync.py [--bulk 400] [--bulk-instances 4] [--rate 10]
                                   [--minutes 3] [--every 0.25] [--tick 5]

A real Orthanc legacy PACS, SeaweedFS, an embedded Redis, PostgreSQL (BENCH_SYNC_DATABASE_URL,
default the local server's `cc_bench_sync`, created fresh) and one Celery worker. A bulk
wave of BULK small studies starts; once it runs, sync mode is switched on (an incremental
crawl every EVERY minutes) and new studies dated today are stored into the PACS at RATE per
minute for MINUTES. Beat is played by this script: it sends `sync.tasks.tick` every TICK
seconds, as beat does every SYNC_TICK_SECONDS. Each new study's lag (first sighting →
verified in the cloud) comes from the product's own SyncedStudy rows.

Prints the lag p50/p95/max, how many bulk studies the wave moved meanwhile (it must still
be running at the end, or the lag was not measured under load), the ratio of p95 to the
target (60 s), and one JSON line last with `lag_p95_s`.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
WORK = Path(os.environ.get("BENCH_SYNC_WORK", "/tmp/bench-sync"))
DATABASE = os.environ.get(
    "BENCH_SYNC_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cc_bench_sync"
)
QUEUE = "bench-sync"
PACS_AET, CALLING_AET = "SYNCBENCH", "CCBENCH"
BUCKET = "bench-sync"
TARGET_S = 60.0


def parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk", type=int, default=400, help="studies in the bulk wave")
    parser.add_argument("--bulk-instances", type=int, default=4)
    parser.add_argument("--rate", type=float, default=10.0, help="new studies per minute")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long new studies come")
    parser.add_argument("--every", type=float, default=0.25, help="crawl interval (minutes)")
    parser.add_argument("--tick", type=float, default=5.0, help="beat's sync tick (seconds)")
    parser.add_argument("--associations", type=int, default=3)
    return parser.parse_args()


def fresh_database():
    import psycopg

    name = DATABASE.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django():
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "var").mkdir(parents=True)
    fresh_database()
    from bench import django_env

    return django_env.start(
        WORK, DATABASE, MIGRATION_QUEUE=QUEUE, MIGRATION_REDIS_PREFIX="benchsync",
        EGRESS_ALLOW="127.0.0.0/8,::1,localhost",
    )  # fmt: skip


def studies(count, seed, instances=1, day=None, **dates):
    from devstack import synthetic

    day = day or date.today()
    return synthetic.iter_studies(
        studies=count, instances=instances, rows=32, cols=32, modality="CT", seed=seed,
        date_from=dates.get("date_from", day), date_to=dates.get("date_to", day),
    )  # fmt: skip


def seed_bulk(pacs, args):
    from concurrent.futures import ThreadPoolExecutor

    from devstack import synthetic

    uids = []
    with ThreadPoolExecutor(4) as pool:
        for datasets in studies(args.bulk, 5150, args.bulk_instances,
                                date_from=date(2005, 1, 1), date_to=date(2015, 1, 1)):  # fmt: skip
            list(pool.map(pacs.upload, [synthetic.dataset_bytes(ds) for ds in datasets]))
            uids.append(str(datasets[0].StudyInstanceUID))
    return uids


class Worker:
    """One Celery worker on the bench database and queue (the engine and the sync tick)."""

    def __init__(self, s3, concurrency):
        import subprocess

        env = dict(os.environ, CC_SECRET_BENCH_S3_KEY=s3.access_key,
                   CC_SECRET_BENCH_S3_SECRET=s3.secret_key, PYTHONUNBUFFERED="1")  # fmt: skip
        self.log = open(WORK / "worker.log", "wb")  # noqa: SIM115 (closed by stop())
        command = [sys.executable, "-m", "celery", "-A", "commandcenter", "worker", "-l",
                   "INFO", "-Q", QUEUE, "--concurrency", str(concurrency), "-n",
                   "benchsync@%h", "--without-mingle", "--without-gossip"]  # fmt: skip
        self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def wait_ready(self):
        from commandcenter.celery import app

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=0.5)
            if any("benchsync@" in name for reply in replies for name in reply):
                return
        raise SystemExit(f"the Celery worker did not start; see {WORK / 'worker.log'}")

    def stop(self):
        from devstack.services.base import terminate_group

        terminate_group(self.proc, 15)
        self.log.close()


def feed(pacs, args, stop, stored):
    """RATE new studies a minute into the PACS, evenly spaced, until MINUTES pass."""
    from devstack import synthetic

    gap = 60.0 / args.rate
    total = int(args.rate * args.minutes)
    for index, datasets in enumerate(studies(total, 5151)):
        due = stored["started"] + index * gap
        while time.monotonic() < due and not stop.is_set():
            time.sleep(0.05)
        if stop.is_set():
            return
        for ds in datasets:
            pacs.upload(synthetic.dataset_bytes(ds))
        stored["uids"].append(str(datasets[0].StudyInstanceUID))


def beat(args, stop):
    from django.db import connection

    from sync import tasks

    while not stop.wait(args.tick):
        tasks.tick.apply_async(queue=QUEUE)
    connection.close()


def main():
    args = parse()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops all
    redis = setup_django()
    from devstack.services.base import LOOPBACK
    from devstack.services.orthanc import Orthanc
    from devstack.services.seaweedfs import SeaweedS3
    from inventory.models import PacsSource, Study
    from migration import actions as migration_actions
    from migration import throttle
    from migration.models import Destination, StudyState, Wave, WaveState
    from sync import actions, lag
    from sync.models import SyncedStudy

    s3 = SeaweedS3(workdir=WORK / "seaweedfs").start()
    s3.create_bucket(BUCKET)
    pacs = Orthanc(aet=PACS_AET, modalities={CALLING_AET: (LOOPBACK, 1)},
                   workdir=WORK / "orthanc").start()  # fmt: skip
    worker = None
    stop = threading.Event()
    try:
        say(f"seeding {args.bulk} bulk studies of {args.bulk_instances} instances…")
        uids = seed_bulk(pacs, args)
        source = PacsSource.objects.create(
            name="bench", ae_title=PACS_AET, host=LOOPBACK, port=pacs.dicom_port,
            calling_ae_title=CALLING_AET, max_associations=args.associations,
        )  # fmt: skip
        Study.objects.bulk_create(
            Study(source=source, study_uid=uid, num_instances=args.bulk_instances) for uid in uids
        )
        destination = Destination.objects.create(
            name="bench", kind="s3", bucket=BUCKET, endpoint_url=s3.endpoint_url,
            region=s3.region, access_key_env="CC_SECRET_BENCH_S3_KEY",
            secret_key_env="CC_SECRET_BENCH_S3_SECRET",
        )  # fmt: skip
        worker = Worker(s3, max(4, args.associations + 2))
        worker.wait_ready()
        bulk_limit = max(1, args.associations - 1)  # one association left for the crawl
        schedule = [[bulk_limit] * 24 for _ in range(7)]
        bulk, _info = migration_actions.create_wave(
            name="bulk", source=source, destination=destination, schedule=schedule
        )
        migration_actions.change_wave(bulk, "start")
        while bulk.ledger.filter(state=StudyState.DONE).count() < 5:
            time.sleep(0.2)
        sync = actions.configure(
            source, enabled=True, every_minutes=args.every, destination=destination
        )
        done_at_start = bulk.ledger.filter(state=StudyState.DONE).count()
        stored = {"started": time.monotonic(), "uids": []}
        feeder = threading.Thread(target=feed, args=(pacs, args, stop, stored), daemon=True)
        ticker = threading.Thread(target=beat, args=(args, stop), daemon=True)
        feeder.start()
        ticker.start()
        say(f"sync on (every {args.every:g} min); {args.rate:g} new studies/min for "
            f"{args.minutes:g} min while the bulk wave runs…")  # fmt: skip
        feeder.join()
        deadline = time.monotonic() + 600
        expected = set(stored["uids"])
        while time.monotonic() < deadline:
            verified = SyncedStudy.objects.filter(
                study__study_uid__in=expected, verified_at__isnull=False
            ).count()
            if verified == len(expected):
                break
            time.sleep(1)
        bulk_state = Wave.objects.get(pk=bulk.pk).state
        bulk_done = bulk.ledger.filter(state=StudyState.DONE).count()
        stop.set()
        ticker.join(30)
        actions.settle()
        rows = SyncedStudy.objects.filter(study__study_uid__in=expected)
        lags = sorted(r.lag_s for r in rows if r.lag_s is not None)
        result = {
            "new_studies": len(expected),
            "synced_verified": len(lags),
            "lag_p50_s": _round(lag.quantile(lags, 0.5)),
            "lag_p95_s": _round(lag.quantile(lags, 0.95)),
            "lag_max_s": _round(max(lags) if lags else None),
            "target_s": TARGET_S,
            "ratio_p95_to_target": _round((lag.quantile(lags, 0.95) or 0) / TARGET_S, 3),
            "rate_per_min": args.rate,
            "crawl_every_s": args.every * 60,
            "tick_s": args.tick,
            "bulk_studies": args.bulk,
            "bulk_done_during": bulk_done - done_at_start,
            "bulk_still_running": bulk_state == WaveState.RUNNING,
            "associations": args.associations,
            "slots_in_use_at_end": throttle.Slots(source.pk).in_use(),
            "sync_pending": lag.figures(sync)["pending"],
        }
        say(f"sync lag over {len(lags)} studies: p50 {result['lag_p50_s']} s, p95 "
            f"{result['lag_p95_s']} s (target < {TARGET_S:.0f} s, ratio "
            f"{result['ratio_p95_to_target']}), max {result['lag_max_s']} s")  # fmt: skip
        say(f"the bulk wave moved {result['bulk_done_during']} studies meanwhile and is "
            f"{'still running' if result['bulk_still_running'] else bulk_state}")  # fmt: skip
        print(json.dumps(result), flush=True)
    finally:
        stop.set()
        if worker is not None:
            worker.stop()
        pacs.stop()
        s3.stop()
        redis.stop()


def _round(value, digits=1):
    return None if value is None else round(value, digits)


def say(text):
    print(f"[bench] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
