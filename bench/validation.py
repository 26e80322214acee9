"""Benchmark: the spot-check against a plain C-GET of the same instances.

    .venv/bin/python bench/validation.py [--studies 200] [--instances 2] [--size 64]
                                         [--associations 2] [--fresh]

Seeds an Orthanc with STUDIES studies of INSTANCES 16-bit CT images of SIZE×SIZE pixels
(bench/migration.py's helpers), migrates them with the engine on a real Celery worker
into SeaweedFS, then measures in one run:
  (a) the spot-check of every study (re-retrieve from the PACS, read back from S3, compare
      tags, decoded pixels and SHA-256), in this process, ASSOCIATIONS studies at a time;
  (b) a plain pynetdicom C-GET of every study into memory, with the same associations.
Prints instances compared per second, the C-GET's instances per second and their ratio,
and one JSON line last. The seeded Orthanc is kept in /tmp/bench-validation-orthanc.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import migration as base  # noqa: E402  (after the path is set)

base.WORK = Path("/tmp/bench-validation")
base.STORE = Path("/tmp/bench-validation-orthanc")
base.BUCKET = "bench-validation"
base.QUEUE = "bench-validation"


def spotcheck(wave, associations):
    """Every study of the wave, through the same path as `validate spotcheck`."""
    from django.conf import settings

    from migration import discrepancies
    from migration.models import ValidationRun

    settings.VALIDATION_THREADS = associations
    run = ValidationRun.objects.create(wave=wave, kind=ValidationRun.Kind.SPOTCHECK)
    started = time.perf_counter()
    result = discrepancies.execute_run(run)
    elapsed = time.perf_counter() - started
    measured = base.rate("spot-check (C-GET + S3 GET + compare)", elapsed,
                         result["instances_compared"], None)  # fmt: skip
    return measured, result


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--instances", type=int, default=2, help="per study")
    parser.add_argument("--size", type=int, default=64, help="rows and columns (16-bit)")
    parser.add_argument("--associations", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="re-seed the PACS")
    return parser.parse_args()


def main():
    args = parse()
    redis = base.setup_django()
    from devstack.services.seaweedfs import SeaweedS3
    from migration.models import Wave

    shape = {"studies": args.studies, "instances": args.instances, "size": args.size}
    pacs = base.start_pacs(shape, args.fresh)
    s3 = SeaweedS3().start()
    try:
        s3.create_bucket(base.BUCKET)
        os.environ.update(
            CC_SECRET_BENCH_S3_KEY=s3.access_key, CC_SECRET_BENCH_S3_SECRET=s3.secret_key
        )
        uids = base.study_uids(pacs)
        base.say(f"{len(uids)} studies, {args.studies * args.instances} instances of "
                 f"{args.size}x{args.size}; {args.associations} association(s)")  # fmt: skip
        meter = base.CpuMeter(pacs=pacs.proc.pid, s3=s3.proc.pid)
        migrated = base.engine(pacs, s3, uids, args.associations, 4, meter)
        wave = Wave.objects.get(name="bench")
        meter = base.CpuMeter(pacs=pacs.proc.pid, s3=s3.proc.pid)
        checked, result = spotcheck(wave, args.associations)
        meter.report("the spot-check")
        meter = base.CpuMeter(pacs=pacs.proc.pid, s3=s3.proc.pid)
        cget = base.ceiling(pacs, uids, args.associations)
        meter.report("the plain C-GET")
    finally:
        s3.stop()
        pacs.stop()
        redis.stop()
    report(len(uids), migrated, checked, cget, result)


def report(studies, migrated, checked, cget, result):
    ratio = checked["inst_s"] / cget["inst_s"]
    base.say(f"spot-check {checked['inst_s']:.1f} instances compared/s; plain C-GET "
             f"{cget['inst_s']:.1f} instances/s; ratio {ratio:.2f}")  # fmt: skip
    print(json.dumps({
        "studies": studies, "migrated_done": migrated["done"],
        "instances_compared": result["instances_compared"],
        "spotcheck_seconds": round(checked["seconds"], 2),
        "spotcheck_inst_s": round(checked["inst_s"], 1), "cget_inst_s": round(cget["inst_s"], 1),
        "ratio_cget": round(ratio, 2), "discrepancies": len(result["discrepancies"]),
        "errors": len(result["errors"]),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
