"""Benchmark: one migration on 1, 2 and 3 worker hosts.

    .venv/bin/python bench/scale_out.py [--studies 40] [--instances 25] [--size 128]
                                        [--limit 12] [--concurrency 2] [--retrieve move]
                                        [--hosts 1,2,3] [--database cc_scaleout] [--fresh]

The hosts are network namespaces made by tests/multihost.py (the harness the 3-host test
uses): each has its own address, Celery worker (--concurrency processes) and Storage SCP
(AE CCHOST<i>, registered on the PACS), and all share one PostgreSQL database (made
fresh here), Redis, the PACS (Orthanc, seeded with STUDIES studies of INSTANCES 16-bit
CT images of SIZE×SIZE pixels, kept in /tmp/bench-scaleout-orthanc for the same shape)
and the S3 store (SeaweedFS on the bridge's address). The PACS allows --limit
associations (a C-MOVE study holds two). For each number of hosts one wave migrates every
study into its own prefix; the time runs from the wave's start to its end, every study
verified by the engine. Meanwhile the PACS process's associations are sampled (as the
multi-host test does): `limit_held` is true when no sample exceeded the limit in any run.

Throughput can only grow with hosts until the PACS, the S3 store or the machine is the
bottleneck; every "host" here shares this machine's cores with the PACS and the store, so
the ratio shows the engine's scaling under that constraint, not what separate machines
would give. The JSON line last: `hosts`, `inst_s`, `per_host_inst_s`, `ratio_vs_1_host`,
`pacs_associations_max`, `limit`, `limit_held`, `verified`, `load_average`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
WORK = Path(os.environ.get("BENCH_SCALEOUT_WORK", "/tmp/bench-scaleout"))
STORE = Path(os.environ.get("BENCH_SCALEOUT_STORE", "/tmp/bench-scaleout-orthanc"))
SERVER = "postgres://postgres@127.0.0.1:5432"
QUEUE = "bench-scaleout"
S3_KEY_ENV, S3_SECRET_ENV = "CC_SECRET_SCALEOUT_S3_KEY", "CC_SECRET_SCALEOUT_S3_SECRET"


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=40)
    parser.add_argument("--instances", type=int, default=25, help="per study")
    parser.add_argument("--size", type=int, default=128, help="rows and columns (16-bit)")
    parser.add_argument("--limit", type=int, default=12, help="the PACS's associations")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes per host")
    parser.add_argument("--retrieve", choices=["move", "get"], default="move")
    parser.add_argument("--hosts", default="1,2,3", help="host counts to run, in order")
    parser.add_argument("--database", default="cc_scaleout")
    parser.add_argument("--fresh", action="store_true", help="re-seed the PACS")
    args = parser.parse_args()
    args.host_counts = [int(n) for n in args.hosts.split(",")]
    return args


def psql(sql):
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-tAc", sql]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def setup_django(args):
    """A fresh, migrated PostgreSQL database and a Redis of this run's own."""
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "var").mkdir(parents=True)
    psql(f'DROP DATABASE IF EXISTS "{args.database}"')
    psql(f'CREATE DATABASE "{args.database}"')
    from bench import django_env

    return django_env.start(
        WORK, f"{SERVER}/{args.database}", MIGRATION_QUEUE=QUEUE, MIGRATION_REDIS_PREFIX=QUEUE
    )


def run_wave(cluster, pacs, uids, args, hosts):
    """One wave over every study on `hosts` hosts: its rate and what the PACS saw."""
    from bench.migration import CALLING_AET, PACS_AET
    from inventory.models import PacsSource, Study
    from migration import actions
    from migration.models import Destination, StudyState, Wave, WaveState
    from tests.multihost import SCP_PORT, PacsAssociations

    name = f"scale-out-{hosts}"
    source = PacsSource.objects.create(
        name=name, ae_title=PACS_AET, host=cluster.gateway, port=pacs.dicom_port,
        calling_ae_title=CALLING_AET, retrieve_method=args.retrieve, max_associations=args.limit,
    )  # fmt: skip
    Study.objects.bulk_create(Study(source=source, study_uid=uid) for uid in uids)
    destination = Destination.objects.create(
        name=name, kind="s3", bucket="scale-out", prefix=name, endpoint_url=cluster.s3.endpoint_url,
        region=cluster.s3.region, access_key_env=S3_KEY_ENV, secret_key_env=S3_SECRET_ENV,
    )  # fmt: skip
    cluster.start(QUEUE, hosts=range(1, hosts + 1), concurrency=args.concurrency)
    try:
        wave, _info = actions.create_wave(name=name, source=source, destination=destination)
        with PacsAssociations(pacs.proc.pid, pacs.dicom_port, SCP_PORT, source.pk) as seen:
            started = time.perf_counter()
            actions.change_wave(wave, "start")
            while Wave.objects.get(pk=wave.pk).state != WaveState.DONE:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
    finally:
        cluster.stop_hosts()
    rows = wave.ledger.all()
    instances = sum(rows.values_list("instances_stored", flat=True))
    done = rows.filter(state=StudyState.DONE).count()
    by_host = sorted({row.host for row in rows})
    result = {
        "hosts": hosts, "inst_s": instances / elapsed, "seconds": elapsed,
        "instances": instances, "verified": done == len(uids),
        "pacs_max": max(seen.samples, default=0), "studies_max": max(seen.studies, default=0),
        "hosts_used": by_host,
    }  # fmt: skip
    say(f"{hosts} host(s): {instances} instances in {elapsed:.1f} s = {result['inst_s']:.1f}/s; "
        f"PACS associations at most {result['pacs_max']} (limit {args.limit}), "
        f"{result['studies_max']} studies at once; done on {', '.join(by_host)}")  # fmt: skip
    return result


def main():
    args = parse()
    redis = setup_django(args)
    from django.conf import settings

    from bench.migration import start_pacs, study_uids
    from tests.multihost import Cluster

    shape = {"studies": args.studies, "instances": args.instances, "size": args.size}
    pacs = start_pacs(shape, args.fresh, STORE)
    env = {"MIGRATION_QUEUE": QUEUE, "MIGRATION_REDIS_PREFIX": QUEUE}
    results = []
    try:
        with Cluster(max(args.host_counts), WORK / "hosts", env, redis.url, 1024) as cluster:
            settings.EGRESS_ALLOW = cluster.egress_allow()
            keys = {S3_KEY_ENV: cluster.s3.access_key, S3_SECRET_ENV: cluster.s3.secret_key}
            cluster.env.update(keys)
            os.environ.update(keys)
            cluster.s3.create_bucket("scale-out")
            cluster.register(pacs)
            uids = study_uids(pacs)
            say(f"{len(uids)} studies of {args.instances} instances ({args.size}x{args.size}); "
                f"PACS limit {args.limit} associations, {args.concurrency} worker processes "
                f"per host, {args.retrieve}; load average {os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} cores")  # fmt: skip
            results = [run_wave(cluster, pacs, uids, args, n) for n in args.host_counts]
    finally:
        pacs.stop()
        redis.stop()
    report(results, args)


def report(results, args):
    base = results[0]["inst_s"] / results[0]["hosts"]
    rates = [r["inst_s"] for r in results]
    line = {
        "hosts": [r["hosts"] for r in results],
        "inst_s": [round(rate, 1) for rate in rates],
        "per_host_inst_s": [round(r["inst_s"] / r["hosts"], 1) for r in results],
        "ratio_vs_1_host": [round(rate / base, 2) for rate in rates],
        "pacs_associations_max": [r["pacs_max"] for r in results],
        "studies_at_once_max": [r["studies_max"] for r in results],
        "limit": args.limit,
        "limit_held": all(r["pacs_max"] <= args.limit for r in results),
        "verified": all(r["verified"] for r in results),
        "retrieve": args.retrieve,
        "load_average": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(line))


def say(text):
    print(text, flush=True)


if __name__ == "__main__":
    main()
