"""State changes of the inventory, each followed by its live event.

Topics: `inventory` (activity: sources, crawls started and finished) and
`inventory.crawl.<id>` (one crawl's progress card). Nothing here logs or publishes PHI.
"""

import logging
from datetime import timedelta

from celery import signature
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from core.events import publish
from core.saving import save_fields
from dicomnet import scu
from inventory import crawler, dicom
from inventory import witness as witness_module
from inventory.models import (
    CrawlRange,
    CrawlRun,
    PacsSource,
    Study,
    Witness,
    WitnessInstance,
)

log = logging.getLogger(__name__)

SOURCE_OPTIONS = set(PacsSource.SETTINGS) - {"name", "ae_title", "host", "port"}
WITNESS_KINDS = ("scan", "listing")
CHUNK = 400
SETTLED = ("leaf", "split", "pruned")  # the node states that leave nothing to ask


class CrawlError(Exception):
    """A crawl cannot be started or changed as asked; the message says why."""


# -- sources ---------------------------------------------------------------------------


def register_source(name, ae_title, host, port, **options):
    """Create or update the PACS source `name` (idempotent). Returns (source, created).

    Raises ValidationError with the field messages for bad values.
    """
    unknown = set(options) - SOURCE_OPTIONS
    if unknown:
        raise ValidationError(f"unknown PACS source option(s): {', '.join(sorted(unknown))}")
    source = PacsSource.objects.filter(name=name).first()
    created = source is None
    source = source or PacsSource(name=name)
    source.ae_title, source.host, source.port = ae_title, host, port
    for key, value in options.items():
        setattr(source, key, value)
    source.full_clean()
    source.save()
    verb = "registered" if created else "updated"
    _activity(f"PACS source {source.name} {verb} ({source.ae_title}@{source.host}:{source.port})")
    return source, created


class SourceInUseError(Exception):
    """A PACS source that holds an inventory (or feeds a wave) cannot be deleted."""


def update_source(source, **changes):
    """Change some settings of `source` (a rename included). Raises ValidationError with
    the field messages for bad values."""
    unknown = set(changes) - set(PacsSource.SETTINGS)
    if unknown:
        raise ValidationError(f"unknown PACS source setting(s): {', '.join(sorted(unknown))}")
    save_fields(source, changes)
    _activity(f"PACS source {source.name} updated ({source.ae_title}@{source.host}:{source.port})")
    return source


def delete_source(source):
    """Delete a source nothing depends on yet; SourceInUseError says why not otherwise."""
    if source.studies.exists() or source.crawls.exists():
        raise SourceInUseError("this source has an inventory; it cannot be deleted")
    if source.waves.exists():
        raise SourceInUseError("a migration wave reads from this source; it cannot be deleted")
    name = source.name
    source.delete()
    _activity(f"PACS source {name} deleted")


def echo_source(source):
    """C-ECHO the source, remember the verdict, and tell the inventory pages."""
    result = scu.echo(dicom.Peer.of(source, timeout=settings.INVENTORY_ECHO_TIMEOUT))
    PacsSource.objects.filter(pk=source.pk).update(
        last_echo_at=timezone.now(),
        last_echo_ok=result.ok,
        last_echo_ms=result.ms,
        last_echo_message=result.message[:300],
    )
    source.refresh_from_db()
    _activity(f"C-ECHO {source.name}: {'ok' if result.ok else 'failed'} · {result.message}")
    return result


# -- starting, cancelling and resuming crawls -------------------------------------------


def start_crawl(source, *, since=None, with_series=True, user=None, queue="", enqueue=True):
    """Create a crawl with its root range; queue the Celery task after commit.

    With `enqueue=False` the caller runs `execute_crawl` itself (the management command).
    """
    with transaction.atomic():
        PacsSource.objects.select_for_update().get(pk=source.pk)
        active = source.crawls.filter(status__in=[CrawlRun.Status.QUEUED, CrawlRun.Status.RUNNING])
        if active.exists():
            raise CrawlError(f"crawl {active.first().pk} of {source.name} is still running")
        run = CrawlRun.objects.create(
            source=source,
            since=since,
            with_series=with_series,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
            queue=queue or "",
        )
        CrawlRange.objects.bulk_create(
            CrawlRange(run=run, **rng.fields()) for rng in crawler.roots(since)
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue(run))
    _activity(f"crawl {run.pk} of {source.name} queued", run=run)
    publish_progress(run)
    return run


def _enqueue(run):
    options = {"queue": run.queue} if run.queue else {}
    result = signature("inventory.tasks.crawl").apply_async((run.pk,), **options)
    CrawlRun.objects.filter(pk=run.pk).update(task_id=result.id or "")


def cancel_crawl(run):
    """Ask a crawl to stop; a queued crawl that no worker holds stops at once."""
    if not run.is_active:
        raise CrawlError(f"crawl {run.pk} is {run.status}, not running")
    CrawlRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    now = timezone.now()
    idle = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    if CrawlRun.objects.filter(Q(pk=run.pk) & idle).update(
        status=CrawlRun.Status.CANCELLED, finished_at=now
    ):
        _activity(f"crawl {run.pk} of {run.source.name} cancelled", run=run)
    run.refresh_from_db()
    publish_progress(run)
    return run


def resume_stalled_crawls(older_than=None):
    """Queue again the crawls whose worker died (lease expired); returns their ids."""
    now = timezone.now()
    lease = timedelta(seconds=settings.INVENTORY_CRAWL_LEASE_SECONDS)
    expired = Q(lease_until__lt=now) | Q(lease_until__isnull=True)
    stalled = CrawlRun.objects.filter(
        (Q(status=CrawlRun.Status.RUNNING) & expired)
        | Q(status=CrawlRun.Status.QUEUED, created_at__lt=now - (older_than or 10 * lease))
    )
    ids = []
    for run in stalled:
        log.info("inventory: crawl %s stalled; queueing it again", run.pk)
        _enqueue(run)
        ids.append(run.pk)
    return ids


# -- running a crawl ---------------------------------------------------------------------


# -- the proof ---------------------------------------------------------------------------


def coverage(run, open_count):
    """What the crawl's settled nodes prove (`crawler.Coverage`), for its verdict."""
    ranges = run.ranges
    root = ranges.filter(kind="all").first()
    roots = ranges.filter(level="root", status=CrawlRange.Status.SPLIT)
    walked = tuple(roots.values_list("kind", flat=True))
    patient = ranges.filter(kind="patient")
    return crawler.Coverage(
        universal_capped=root is not None and root.status != CrawlRange.Status.LEAF,
        dated_only=root is None,
        open_nodes=open_count,
        cap=run.source.find_cap or run.detected_cap,
        walked=walked,
        walk_settled=patient.exists() and not patient.exclude(status__in=SETTLED[:2]).exists(),
        pruned=ranges.filter(status=CrawlRange.Status.PRUNED, count__isnull=False).count(),
    )


# -- second witnesses ----------------------------------------------------------------------


def record_witness(source, kind, location, seen):
    """Store what a storage scan or a database listing saw (`witness.Seen`)."""
    with transaction.atomic():
        found = Witness.objects.create(
            source=source,
            kind=kind,
            location=str(location)[:500],
            files=seen.files,
            studies=seen.studies,
            instances=seen.instances,
            unreadable=seen.unreadable[:10000],
        )
        WitnessInstance.objects.bulk_create(
            (WitnessInstance(witness=found, study_uid=row[0], series_uid=row[1], sop_uid=row[2],
                             transfer_syntax=row[3], size=row[4]) for row in seen.rows),
            batch_size=2000,
        )  # fmt: skip
    _activity(
        f"{found.get_kind_display()} of {source.name}: {seen.studies} studies, "
        f"{seen.instances} instances, {len(seen.unreadable)} unreadable"
    )
    return found


def latest_crawl(source):
    return source.crawls.filter(status=CrawlRun.Status.DONE).order_by("-pk").first()


def compare_witness(source, witness=None):
    """The last finished crawl against a witness (the newest one by default).

    Agreement makes the crawl complete, with the witness as its reason. Studies only the
    witness holds join the inventory, marked as found by it, so a wave migrates them
    (retrieval asks for them by StudyInstanceUID). Returns the comparison.
    """
    witness = witness or source.witnesses.first()
    run = latest_crawl(source)
    if witness is None or run is None:
        raise CrawlError(f"{source.name} needs a finished crawl and a scan or listing first")
    crawled = Study.objects.filter(seen_run=run).values_list("study_uid", flat=True)
    witnessed = witness.entries.values_list("study_uid", flat=True).distinct()
    result = {"crawl": run.pk, "witness": witness.pk, "kind": witness.kind,
              **witness_module.compare(crawled, witnessed)}  # fmt: skip
    with transaction.atomic():
        joined = _join_witnessed(source, witness, result["only_in_witness"])
        _judge(run, witness, result, joined)
        Witness.objects.filter(pk=witness.pk).update(compared_run=run, comparison=result)
    _activity(_compare_text(source, witness, result), run=run)
    publish_progress(run)
    return result


def _join_witnessed(source, witness, uids):
    """Add the witness's studies the inventory lacks; returns how many joined."""
    known = set(
        Study.objects.filter(source=source, study_uid__in=uids).values_list("study_uid", flat=True)
    )
    counts = (
        witness.entries.filter(study_uid__in=uids)
        .values("study_uid")
        .annotate(series=Count("series_uid", distinct=True), instances=Count("id"))
    )
    scanned = witness.kind == Witness.Kind.SCAN
    new = [
        Study(
            source=source,
            study_uid=row["study_uid"],
            found_by=witness.kind,
            num_series=row["series"] if scanned else None,
            num_instances=row["instances"] if scanned else None,
            series_synced=True,
        )
        for row in counts
        if row["study_uid"] not in known
    ]
    Study.objects.bulk_create(new, batch_size=CHUNK)
    Study.objects.filter(source=source, study_uid__in=uids, vanished=True).update(vanished=False)
    return len(new)


def _judge(run, witness, result, joined):
    name = witness.get_kind_display()
    if result["agree"]:
        reason = (
            f"the {name} of {witness.location} ({result['witness_studies']} studies) lists "
            "exactly the studies the crawl listed"
        )
        CrawlRun.objects.filter(pk=run.pk).update(complete=True, complete_reason=reason[:300],
                                                  unproven="")  # fmt: skip
        return
    open_count = run.ranges.exclude(status__in=SETTLED).count()
    base = crawler.verdict(coverage(run, open_count))[1]
    parts = [base] if base else []
    if result["only_in_witness"]:
        parts.append(
            f"The {name} found {len(result['only_in_witness'])} studies the crawl did not list "
            f"({joined} joined the inventory, marked as found by the {witness.kind})."
        )
    if result["only_in_crawl"]:
        parts.append(
            f"The crawl listed {len(result['only_in_crawl'])} studies the {name} does not hold."
        )
    CrawlRun.objects.filter(pk=run.pk).update(complete=False, complete_reason="",
                                              unproven=" ".join(parts))  # fmt: skip


def _compare_text(source, witness, result):
    verdict = "agree" if result["agree"] else (
        f"{len(result['only_in_witness'])} only in the {witness.kind}, "
        f"{len(result['only_in_crawl'])} only in the crawl"
    )  # fmt: skip
    return f"crawl {result['crawl']} of {source.name} compared with {witness.kind}: {verdict}"


# -- what screens and commands show ------------------------------------------------------


def summary(run):
    """The crawl's summary: the contract of `inventory crawl --json`."""
    leaves = run.ranges.filter(status=CrawlRange.Status.LEAF)
    return {
        "crawl": run.pk,
        "source": run.source.name,
        "status": run.status,
        "studies": run.studies_found,
        "series": run.series_found,
        "instances": run.instances_found,
        "leaf_ranges": leaves.count(),
        "complete": bool(run.complete),
        "unproven": "" if run.complete else run.unproven,
        "complete_reason": run.complete_reason if run.complete else "",
        "found_by": (run.proof or {}).get("found_by", {}),
        "new": run.studies_new,
        "changed": run.studies_changed,
        "vanished": run.studies_vanished,
        "problems": run.problems,
        "queries": run.queries,
        "detected_cap": run.detected_cap,
        "error": run.error,
    }


def progress_stats(run):
    counts = dict(run.ranges.values_list("status").annotate(n=Count("id")))
    total = sum(counts.values())
    pending = counts.get(CrawlRange.Status.PENDING, 0)
    end = run.finished_at or timezone.now()
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0
    in_phase = (end - (run.phase_started_at or run.started_at or end)).total_seconds()
    done = total - pending
    rate = run.studies_found / elapsed if elapsed > 0 else None
    eta = None
    if run.is_active and run.phase == CrawlRun.Phase.STUDIES and done and pending:
        eta = in_phase / done * pending
    elif run.is_active and run.phase == CrawlRun.Phase.SERIES and run.series_done:
        eta = in_phase / run.series_done * (run.series_todo - run.series_done)
    return {
        "id": run.pk,
        "status": run.status,
        "phase": run.phase,
        "ranges_done": done,
        "ranges_todo": pending,
        "ranges_total": total,
        "leaves": counts.get(CrawlRange.Status.LEAF, 0),
        "unresolved": counts.get(CrawlRange.Status.UNRESOLVED, 0),
        "studies_found": run.studies_found,
        "studies_new": run.studies_new,
        "series_done": run.series_done,
        "series_todo": run.series_todo,
        "queries": run.queries,
        "rate": round(rate, 1) if rate else None,
        "eta_seconds": round(eta) if eta is not None else None,
        "elapsed_seconds": round(elapsed),
        "complete": run.complete,
        "unproven": "" if run.complete else run.unproven,
        "complete_reason": run.complete_reason if run.complete else "",
        "cancel_requested": run.cancel_requested,
        "error": run.error,
    }


def publish_progress(run):
    stats = progress_stats(run)
    html = render_to_string("inventory/_crawl_progress.html", {"run": run, "stats": stats})
    publish(f"inventory.crawl.{run.pk}", stats, html=html)
    return stats


def _activity(text, run=None):
    payload = {"text": text, "crawl": run.pk if run else None, "at": timezone.now()}
    html = render_to_string("inventory/_activity_item.html", payload)
    publish("inventory", payload, html=html)
