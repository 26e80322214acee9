"""The availability check: can the cloud copy be read, and fast enough?

A random sample of migrated studies across waves; one stored instance of each is fetched
from its destination (S3 GET, WADO-RS, a file read) and timed. Failures and slow fetches
raise one alert per destination (cause `validation.availability.<destination>`), a
missing object becomes an `unavailable` discrepancy of its wave; a destination whose
sampled fetches all pass clears its alert (its open ticket is resolved). The whole check is
kept as a ValidationRun(kind=availability) with its totals. Beat runs it on a schedule.
"""

import random
import statistics
import time
from collections import defaultdict

from django.conf import settings
from django.utils import timezone

from core.alerts import clear_alert, raise_alert
from core.events import publish
from core.scrub import exception_text
from migration import discrepancies, validation
from migration.models import StoredInstance, StudyState, ValidationRun, WaveStudy
from migration.storage import open_store


def sample_instances(sample, rng):
    """One random stored instance each of up to `sample` random done studies (any wave)."""
    done = list(WaveStudy.objects.filter(state=StudyState.DONE).values_list("pk", flat=True))
    picked = []
    for ledger_id in rng.sample(done, min(sample, len(done))):
        items = list(
            StoredInstance.objects.filter(ledger_id=ledger_id, role=StoredInstance.Role.STORED)
            .select_related("ledger__wave__destination", "ledger__study")
            .order_by("pk")
        )
        if items:
            picked.append(rng.choice(items))
    return picked


def fetch(store, item):
    """(milliseconds, error or "") for one GET of the instance."""
    started = time.perf_counter()
    try:
        data = store.read(item.key)
        error = "" if len(data) == item.size else f"read {len(data)} bytes, expected {item.size}"
    except Exception as exc:
        error = exception_text(exc)[:300]
    return (time.perf_counter() - started) * 1000, error


def check(sample=None, slow_ms=None, seed=None):
    """Run one availability check; returns the run (its totals say what happened)."""
    sample = int(sample or settings.VALIDATION_AVAILABILITY_SAMPLE)
    slow_ms = float(slow_ms or settings.VALIDATION_AVAILABILITY_SLOW_MS)
    run = ValidationRun.objects.create(
        kind=ValidationRun.Kind.AVAILABILITY, state=ValidationRun.State.RUNNING,
        sample_size=sample, seed=seed, started_at=timezone.now(),
    )  # fmt: skip
    items = sample_instances(sample, random.Random(seed))
    results = _fetch_all(items)
    totals = _totals(results, slow_ms)
    ValidationRun.objects.filter(pk=run.pk).update(
        state=ValidationRun.State.DONE, finished_at=timezone.now(), totals=totals,
        progress_done=len(items), progress_total=len(items),
    )  # fmt: skip
    run.refresh_from_db()
    _report(run, results, slow_ms)
    return run


def _fetch_all(items):
    stores, results = {}, []
    for item in items:
        destination = item.ledger.wave.destination
        store = stores.setdefault(destination.pk, open_store(destination))
        ms, error = fetch(store, item)
        results.append((item, round(ms, 1), error))
    return results


def _totals(results, slow_ms):
    times = [ms for _item, ms, error in results if not error]
    return {
        "fetched": len(results),
        "failed": sum(bool(error) for _item, _ms, error in results),
        "slow": sum(ms > slow_ms for _item, ms, error in results if not error),
        "slow_ms": slow_ms,
        "median_ms": round(statistics.median(times), 1) if times else None,
        "max_ms": max(times) if times else None,
        "fetches": [
            {"wave": item.ledger.wave.name, "study": item.ledger.study.study_uid,
             "instance": item.sop_uid, "ms": ms, "error": error}
            for item, ms, error in results
        ],
    }  # fmt: skip


def _report(run, results, slow_ms):
    """Alerts per destination, and `unavailable` discrepancies for failed fetches."""
    bad = defaultdict(list)
    for item, ms, error in results:
        if error or ms > slow_ms:
            bad[item.ledger.wave.destination].append((item, ms, error))
    for destination, problems in bad.items():
        _alert(destination, problems, slow_ms, len(results))
    for destination in {item.ledger.wave.destination for item, _ms, _error in results} - set(bad):
        cause = f"validation.availability.{destination.name}"
        clear_alert("validation", cause, detail="every sampled fetch succeeded in time")
    for item, _ms, error in results:
        if error:
            _unavailable(run, item, error)
    publish("validation.availability", {"run": run.pk, **{
        k: v for k, v in run.totals.items() if k != "fetches"}})  # fmt: skip


def _alert(destination, problems, slow_ms, total):
    failed = [p for p in problems if p[2]]
    slow = len(problems) - len(failed)
    what = f"{len(failed)} failed" if failed else f"{slow} slower than {slow_ms:.0f} ms"
    lines = [
        f"study {item.ledger.study.study_uid} instance {item.sop_uid}: {error or f'{ms:.0f} ms'}"
        for item, ms, error in problems[:5]
    ]
    raise_alert(
        "validation",
        cause=f"validation.availability.{destination.name}",
        title=f"Destination {destination.name}: {what} of {total} sampled fetches",
        category="missing/incorrect images" if failed else "performance",
        impact="high" if failed else "medium",
        urgency="high" if failed else "medium",
        detail="\n".join(lines),
        links={"wave": problems[0][0].ledger.wave_id},
    )


def _unavailable(run, item, error):
    row = item.ledger
    found = validation.finding(
        row.study.study_uid, "unavailable", f"the availability check could not read it: {error}",
        item.series_uid, item.sop_uid, row.pk,
    )  # fmt: skip
    discrepancies.record(row.wave, run, [found], scope=set())
