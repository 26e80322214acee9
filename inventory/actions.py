"""State changes of the inventory, each followed by its live event.

Topics: `inventory` (activity: sources, crawls started and finished) and
`inventory.crawl.<id>` (one crawl's progress card). Nothing here logs or publishes PHI.
"""

import logging
import os
import socket
import time
from contextlib import contextmanager
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Count, F, Q, Sum, When
from django.db.models.functions import Substr
from django.template.loader import render_to_string
from django.utils import timezone

from core.alerts import raise_alert
from core.events import publish
from inventory import crawler, dicom, reports
from inventory import witness as witness_module
from inventory.models import (
    CrawlProblem,
    CrawlRange,
    CrawlRun,
    GrowthSnapshot,
    PacsSource,
    Series,
    Study,
    Witness,
    WitnessInstance,
)

log = logging.getLogger(__name__)

SOURCE_OPTIONS = set(PacsSource.SETTINGS) - {"name", "ae_title", "host", "port"}
STUDY_FIELDS = (
    "patient_id",
    "patient_name",
    "accession_number",
    "study_date",
    "study_time",
    "description",
    "modalities",
    "num_series",
    "num_instances",
    "charset",
    "problems",
)
DERIVED_WHEN_MISSING = ("modalities", "num_series", "num_instances")
RETRY_BACKOFF = (2, 5, 10)
CHUNK = 400
WITNESS_KINDS = ("scan", "listing")
SETTLED = ("leaf", "split", "pruned")  # the node states that leave nothing to ask
PROGRESS_EVERY = 0.5  # seconds between two progress events of one crawl


class CrawlError(Exception):
    """A crawl cannot be started or changed as asked; the message says why."""


class _StopError(Exception):
    """The crawl was cancelled or its lease passed to another worker."""


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


def echo_source(source):
    """C-ECHO the source, remember the verdict, and tell the inventory pages."""
    result = dicom.echo(dicom.Peer.of(source, timeout=settings.INVENTORY_ECHO_TIMEOUT))
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
    from inventory.tasks import crawl

    options = {"queue": run.queue} if run.queue else {}
    result = crawl.apply_async((run.pk,), **options)
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


def worker_identity(task_id=""):
    return f"{socket.gethostname()}:{os.getpid()}:{task_id}"[:200]


def claim(run_id, owner):
    """Take the crawl's lease; None when it is finished or another worker holds it."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.INVENTORY_CRAWL_LEASE_SECONDS)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    active = Q(status__in=[CrawlRun.Status.QUEUED, CrawlRun.Status.RUNNING])
    taken = CrawlRun.objects.filter(Q(pk=run_id) & active & free).update(
        lease_owner=owner, lease_until=lease, status=CrawlRun.Status.RUNNING, heartbeat_at=now
    )
    if not taken:
        return None
    CrawlRun.objects.filter(pk=run_id, started_at__isnull=True).update(
        started_at=now, phase_started_at=now
    )
    return CrawlRun.objects.select_related("source").get(pk=run_id)


def execute_crawl(run_id, owner=None, progress=None):
    """Run (or resume) a crawl to its end in this process. Returns its summary, or None
    when another worker holds it or it is already finished.

    `progress(stats)` is called after every answered node (the command's progress bar).
    """
    owner = owner or worker_identity()
    run = claim(run_id, owner)
    if run is None:
        return None
    _activity(f"crawl {run.pk} of {run.source.name} running on {owner.split(':')[0]}", run=run)
    runner = _Runner(run, owner, progress)
    try:
        runner.run_with_retries()
    except _StopError:
        runner.stopped()
    except SoftTimeLimitExceeded:
        CrawlRun.objects.filter(pk=run.pk).update(lease_until=None)
        raise
    except dicom.PacsError as exc:
        _fail(run, str(exc))
    except Exception as exc:
        _fail(run, f"internal error: {type(exc).__name__}: {exc}"[:500])
        raise
    run.refresh_from_db()
    publish_progress(run)
    return summary(run)


class _Runner:
    """Drives one crawl through its phases, persisting every step (the crawl ledger)."""

    def __init__(self, run, owner, progress=None):
        self.run = run
        self.source = run.source
        self.owner = owner
        self.progress = progress
        self.ledger = CrawlLedger(run, owner, self._tick)
        self.last_event = 0.0

    def run_with_retries(self):
        for attempt, pause in enumerate((*RETRY_BACKOFF, None)):
            try:
                return self._phases()
            except dicom.PacsError as exc:
                if pause is None:
                    raise
                log.warning("inventory: crawl %s attempt %d: %s", self.run.pk, attempt + 1, exc)
                _note(self.run, f"retrying after: {exc}"[:300])
                self.ledger.sleep(pause)

    def _phases(self):
        peer = dicom.Peer.of(self.source, timeout=settings.INVENTORY_DIMSE_TIMEOUT)
        with (
            _association_slot(self.source, self.ledger),
            dicom.FindSession(peer, pause=self.source.find_pause_ms / 1000) as session,
        ):
            if self.run.phase == CrawlRun.Phase.STUDIES:
                self._studies(session)
            if self.run.phase == CrawlRun.Phase.SERIES:
                self._series(session)
            if self.run.phase == CrawlRun.Phase.SAMPLE:
                self._sample(peer, session)
        _finish(self.run)

    def _studies(self, session):
        if not crawler.walk(session, self.ledger, cap=self.source.find_cap):
            raise _StopError()
        self.ledger.check()
        next_phase = CrawlRun.Phase.SERIES if self.run.with_series else CrawlRun.Phase.FINISHED
        _enter_phase(self.run, next_phase)

    def _series(self, session):
        todo = Study.objects.filter(seen_run=self.run, series_synced=False)
        CrawlRun.objects.filter(pk=self.run.pk).update(series_todo=F("series_done") + todo.count())
        self.run.refresh_from_db()
        while True:
            batch = list(todo.order_by("pk").only("pk", "study_uid", "modalities")[:20])
            if not batch:
                break
            self.ledger.check()
            found = [(study, crawler.crawl_series(session, study.study_uid)) for study in batch]
            with transaction.atomic():
                for study, series in found:
                    _store_series(study, series)
                CrawlRun.objects.filter(pk=self.run.pk).update(
                    series_done=F("series_done") + len(batch)
                )
            self.run.series_done += len(batch)
            self._tick()
        _enter_phase(self.run, CrawlRun.Phase.SAMPLE)

    def _sample(self, peer, session):
        if self.source.retrieve_method == PacsSource.Retrieve.GET:
            failures = 0
            with dicom.GetSession(peer) as getter:
                for series in _series_to_sample(self.run):
                    self.ledger.check()
                    ok = _sample_series(getter, session, series)
                    failures = 0 if ok else failures + 1
                    if failures >= 3:
                        _note(self.run, "instance sample stopped after 3 failed C-GETs")
                        break
        _enter_phase(self.run, CrawlRun.Phase.FINISHED)

    def _tick(self):
        if self.progress:
            self.progress(
                {
                    **self.ledger.stats(),
                    "phase": self.run.phase,
                    "series_done": self.run.series_done,
                    "series_todo": self.run.series_todo,
                    "studies_found": self.ledger.found,
                }
            )
        now = time.monotonic()
        if now - self.last_event >= PROGRESS_EVERY:
            self.last_event = now
            self.run.refresh_from_db()
            publish_progress(self.run)

    def stopped(self):
        self.run.refresh_from_db()
        if self.run.cancel_requested:
            CrawlRun.objects.filter(pk=self.run.pk).update(
                status=CrawlRun.Status.CANCELLED,
                finished_at=timezone.now(),
                lease_owner="",
                lease_until=None,
            )
            _activity(f"crawl {self.run.pk} of {self.source.name} cancelled", run=self.run)


@contextmanager
def _association_slot(source, ledger):
    """One of the source's association slots, shared with the migration engine's workers
    (`migration.throttle.Slots`), held while the crawl talks to the PACS: the crawl never
    takes the PACS past its association limit. Waits while every slot is taken."""
    from migration.throttle import Slots

    slots = Slots(source.pk)
    token = slots.acquire(source.max_associations)
    while token is None:
        ledger.sleep(1.0)
        token = slots.acquire(source.max_associations)
    ledger.slot = (slots, token)
    try:
        yield
    finally:
        ledger.slot = None
        slots.release(token)


class CrawlLedger:
    """The crawl tree in the database, as `crawler.walk` sees it."""

    def __init__(self, run, owner, on_answer=None):
        self.run = run
        self.owner = owner
        self.on_answer = on_answer
        self.detected_cap = run.detected_cap
        self.modalities = _modalities_seen(run)
        counts = dict(run.ranges.values_list("status").annotate(n=Count("id")))
        self.total = sum(counts.values())
        self.done = self.total - counts.get(CrawlRange.Status.PENDING, 0)
        self.found = run.studies_found
        self.new_cap = None
        self.last_check = 0.0
        self.partitions = tuple(p for p in settings.INVENTORY_PARTITIONS if p)
        self.alphabets = {}
        self.in_batch = set()
        self.signals_cancel = run.ranges.filter(note__startswith=crawler.CANCELLED).exists()
        self.slot = None  # (Slots, token) while the crawl holds an association slot
        self.slot_renewed = time.monotonic()

    def stopping(self):
        """Checked before every node; the database is asked at most once a second (each
        answered node also renews the lease and sees a cancel, see `_count`)."""
        if time.monotonic() - self.last_check < 1.0:
            return False
        try:
            self.check()
        except _StopError:
            return True
        return False

    def check(self):
        """Renew the lease; raise _StopError when cancelled or taken over."""
        now = timezone.now()
        lease = now + timedelta(seconds=settings.INVENTORY_CRAWL_LEASE_SECONDS)
        kept = CrawlRun.objects.filter(
            pk=self.run.pk, lease_owner=self.owner, cancel_requested=False
        ).update(lease_until=lease, heartbeat_at=now)
        if not kept:
            raise _StopError()
        self.last_check = time.monotonic()
        self._renew_slot()

    def _renew_slot(self):
        if self.slot is None or time.monotonic() - self.slot_renewed < 10:
            return
        slots, token = self.slot
        slots.renew(token)
        self.slot_renewed = time.monotonic()

    def sleep(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check()
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def pending(self, limit=50):
        stage = Case(*(When(kind=k, then=n) for n, k in enumerate(crawler.STAGES)), default=99)
        todo = (
            self.run.ranges.filter(status=CrawlRange.Status.PENDING)
            .annotate(stage=stage)
            .order_by("stage", "pk")
        )
        first = todo.first()
        if first is None:
            return []
        nodes = list(todo.filter(kind=first.kind)[:limit])  # each tree waits for the last
        for node in nodes:
            node.range = crawler.Range.from_model(node)
        return nodes

    def known_days(self):
        """{StudyDate: studies} of the studies known before this crawl began."""
        rows = Study.objects.filter(
            source=self.run.source,
            vanished=False,
            study_date__isnull=False,
            first_seen__lt=self.run.created_at,
        )
        return dict(rows.values_list("study_date").annotate(n=Count("id")))

    def known_minutes(self):
        """{minute of the day: studies} of every study the ledger knows for the source."""
        rows = (
            Study.objects.filter(source=self.run.source, vanished=False)
            .annotate(hhmm=Substr("study_time", 1, 4))
            .values_list("hhmm")
            .annotate(n=Count("id"))
        )
        minutes = {}
        for hhmm, n in rows:
            if len(hhmm) == 4 and hhmm.isdigit() and int(hhmm[:2]) < 24 and int(hhmm[2:]) < 60:
                minute = int(hhmm[:2]) * 60 + int(hhmm[2:])
                minutes[minute] = minutes.get(minute, 0) + n
        return minutes

    def alphabet(self, keyword):
        """Digits, letters and what the PACS returned for `keyword` in this crawl."""
        if keyword not in self.alphabets:
            values = Study.objects.filter(seen_run=self.run)
            values = values.values_list(crawler.FIELDS[keyword], flat=True).distinct()
            self.alphabets[keyword] = crawler.alphabet(values.iterator())
        return self.alphabets[keyword]

    def values_under(self, keyword, prefix):
        """The distinct values of `keyword` starting with `prefix` this crawl has listed."""
        field = crawler.FIELDS[keyword]
        rows = Study.objects.filter(seen_run=self.run, **{f"{field}__startswith": prefix})
        return rows.values_list(field, flat=True).distinct()

    def unlisted(self, studies):
        """The Study UIDs of `studies` this crawl has not listed yet."""
        fresh = set(studies) - self.in_batch
        seen = Study.objects.filter(source=self.run.source, seen_run=self.run, study_uid__in=fresh)
        return fresh - set(seen.values_list("study_uid", flat=True))

    def listed_per_patient(self, patient_ids):
        """{PatientID: studies this crawl has listed for it}."""
        rows = Study.objects.filter(seen_run=self.run, patient_id__in=list(patient_ids))
        return dict(rows.values_list("patient_id").annotate(n=Count("id")))

    def walk_settled(self):
        """Did the patient walk run, and count every patient's studies?"""
        nodes = self.run.ranges.filter(kind="patient")
        open_ = nodes.exclude(status__in=[CrawlRange.Status.LEAF, CrawlRange.Status.SPLIT])
        return nodes.exists() and not open_.exists()

    def learn(self, answer):
        """What later answers of the same batch need to know already."""
        self.in_batch |= set(answer.parsed.studies)
        self.signals_cancel = self.signals_cancel or answer.note.startswith(crawler.CANCELLED)
        self.modalities |= answer.parsed.modalities
        if answer.detected_cap and not self.detected_cap:
            self.detected_cap = self.new_cap = answer.detected_cap

    def answered(self, batch):
        records = {}
        for _node, answer in batch:
            records.update(answer.parsed.studies)
        kind = batch[0][0].kind if batch else ""
        with transaction.atomic():
            found, created, changed = _upsert_studies(self.run, records, kind)
            new_problems = sum(
                _record_problems(self.run, node, answer.parsed.problems) for node, answer in batch
            )
            _close_nodes(batch)
            CrawlRange.objects.bulk_create(
                CrawlRange(run=self.run, parent=node, **child.fields())
                for node, answer in batch
                for child in answer.children
            )
            self._count(batch, found, created, changed, new_problems)
        self.found += found
        self.total += sum(len(answer.children) for _node, answer in batch)
        self.done += len(batch)
        self.in_batch = set()
        if self.on_answer:
            self.on_answer()

    def _count(self, batch, found, created, changed, new_problems):
        now = timezone.now()
        updates = {
            "queries": F("queries") + sum(a.count is not None for _node, a in batch),
            "responses": F("responses") + sum(a.count or 0 for _node, a in batch),
            "studies_found": F("studies_found") + found,
            "studies_new": F("studies_new") + created,
            "studies_changed": F("studies_changed") + changed,
            "problems": F("problems") + new_problems,
            "heartbeat_at": now,
            "lease_until": now + timedelta(seconds=settings.INVENTORY_CRAWL_LEASE_SECONDS),
        }
        if self.new_cap:
            updates["detected_cap"] = self.new_cap
        kept = CrawlRun.objects.filter(
            pk=self.run.pk, lease_owner=self.owner, cancel_requested=False
        ).update(**updates)
        if not kept:
            raise _StopError()  # rolls the batch back: its nodes stay pending for whoever resumes
        self.new_cap = None
        self.last_check = time.monotonic()
        self._renew_slot()

    def stats(self):
        return {"ranges_done": self.done, "ranges_total": self.total}


def _modalities_seen(run):
    values = Study.objects.filter(seen_run=run).values_list("modalities", flat=True).distinct()
    return {m for value in values for m in value.split("\\") if m}


def _close_nodes(batch):
    now = timezone.now()
    for node, answer in batch:
        node.status = answer.status
        node.count = answer.count
        node.unique_count = None if answer.count is None else len(answer.parsed.studies)
        node.capped = answer.status != "leaf" and answer.count is not None
        node.note = answer.note[:300]
        node.done_at = now
    CrawlRange.objects.bulk_update(
        [node for node, _answer in batch],
        ["status", "count", "unique_count", "capped", "note", "done_at"],
    )


def _upsert_studies(run, records, kind=""):
    """Insert new studies, update changed ones, stamp all as seen by this run, and those it
    lists for the first time as found by the tree `kind`.

    Returns (found for the first time in this run, created, changed).
    """
    found = created = changed = 0
    uids = list(records)
    for start in range(0, len(uids), CHUNK):
        chunk = uids[start : start + CHUNK]
        existing = {
            s.study_uid: s for s in Study.objects.filter(source=run.source, study_uid__in=chunk)
        }
        new = [_new_study(run, records[uid], kind) for uid in chunk if uid not in existing]
        again = [s.pk for s in existing.values() if s.seen_run_id != run.pk]
        found += len(new) + len(again)
        Study.objects.bulk_create(new, batch_size=CHUNK)
        updated, touched = _merge_existing(run, existing, records)
        created += len(new)
        changed += len(updated)
        Study.objects.bulk_update(updated, [*STUDY_FIELDS, *_STAMP], batch_size=CHUNK)
        Study.objects.filter(pk__in=touched).update(
            seen_run=run, last_seen=timezone.now(), vanished=False
        )
        Study.objects.filter(pk__in=again).update(found_by=kind)
    return found, created, changed


_STAMP = ("seen_run", "last_seen", "vanished", "has_problems", "series_synced")


def _new_study(run, record, kind=""):
    values = {key: record[key] for key in STUDY_FIELDS}
    return Study(
        source=run.source,
        study_uid=record["study_uid"],
        seen_run=run,
        found_by=kind,
        has_problems=bool(record["problems"]),
        **values,
    )


def _merge_existing(run, existing, records):
    """(studies whose data changed, ids of the others not yet stamped by this run)."""
    updated, touched, now = [], [], timezone.now()
    for uid, study in existing.items():
        record = records[uid]
        diff = {
            key: record[key]
            for key in STUDY_FIELDS
            if getattr(study, key) != record[key]
            and not (key in DERIVED_WHEN_MISSING and record[key] in (None, ""))
        }
        if diff or study.vanished:
            if {"num_series", "num_instances"} & set(diff):
                study.series_synced = False
            for key, value in diff.items():
                setattr(study, key, value)
            study.has_problems = bool(study.problems)
            study.seen_run, study.last_seen, study.vanished = run, now, False
            updated.append(study)
        elif study.seen_run_id != run.pk:
            touched.append(study.pk)
    return updated, touched


def _record_problems(run, node, problems):
    new = 0
    for code, detail in dict.fromkeys(problems):
        _, created = CrawlProblem.objects.get_or_create(
            run=run, code=code, detail=detail[:300], defaults={"range": node}
        )
        new += created
    return new


def _store_series(study, found):
    """Upsert a study's series, fill the counts its C-FIND lacked, mark it synced."""
    with transaction.atomic():
        existing = {s.series_uid: s for s in study.series.all()}
        new, changed = [], []
        for uid, record in found.items():
            values = {k: record[k] for k in ("modality", "series_number", "description")}
            values["num_instances"] = record["num_instances"]
            if record["sop_class"]:
                values["sop_class"] = record["sop_class"]
            series = existing.get(uid)
            if series is None:
                new.append(Series(study=study, series_uid=uid, **values))
            elif any(getattr(series, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(series, key, value)
                changed.append(series)
        Series.objects.bulk_create(new)
        Series.objects.bulk_update(
            changed, ["modality", "series_number", "description", "num_instances", "sop_class"]
        )
        _fill_study_counts(study, found)


def _fill_study_counts(study, found):
    updates = {"series_synced": True}
    current = Study.objects.filter(pk=study.pk).values("num_series", "num_instances", "modalities")[
        0
    ]
    if current["num_series"] is None:
        updates["num_series"] = len(found)
    counts = [r["num_instances"] for r in found.values()]
    if current["num_instances"] is None and None not in counts:
        updates["num_instances"] = sum(counts)
    if not current["modalities"]:
        modalities = sorted({r["modality"] for r in found.values() if r["modality"]})
        updates["modalities"] = "\\".join(modalities)[:64]
    Study.objects.filter(pk=study.pk).update(**updates)


def _series_to_sample(run):
    """Up to INVENTORY_SAMPLE_SERIES unsampled series, spread over the modalities."""
    todo = Series.objects.filter(study__seen_run=run, transfer_syntax="").select_related("study")
    limit = settings.INVENTORY_SAMPLE_SERIES
    modalities = sorted(set(todo.values_list("modality", flat=True).distinct()))
    per = max(1, limit // max(1, len(modalities)))
    picked = []
    for modality in modalities:
        picked += list(todo.filter(modality=modality).order_by("pk")[:per])
    return picked[:limit]


def _sample_series(getter, session, series):
    """C-FIND a series' first instance and C-GET it. The crawl holds one association slot,
    so the C-FIND's association is closed before the C-GET's opens, and the other way."""
    study_uid = series.study.study_uid
    try:
        getter.close()
        matches, _ = session.find(crawler.instance_query(study_uid, series.series_uid))
        _count, first, sop_class = crawler.parse_instances(matches)
        if not first:
            return False
        session.close()
        sample = getter.sample(study_uid, series.series_uid, first, sop_class)
    except dicom.PacsError as exc:
        log.warning("inventory: sample of series %s failed: %s", series.pk, exc)
        return False
    Series.objects.filter(pk=series.pk).update(
        sop_class=sample["sop_class"][:64] or sop_class,
        transfer_syntax=sample["transfer_syntax"][:64],
        charset=sample["charset"][:64],
        sample_bytes=sample["bytes"],
    )
    _keep_stored_values(series.study_id, sample.get("values") or {})
    return True


LOSSY = "lossy answer"
STORED_FIELDS = {
    "PatientName": "patient_name",
    "PatientID": "patient_id",
    "AccessionNumber": "accession_number",
    "StudyDescription": "description",
}


def _keep_stored_values(study_id, stored):
    """Where the sampled instance disagrees with the C-FIND answer (a PACS answering in its
    own character set drops what it cannot hold), keep the instance's value and list the
    study under problems as a lossy answer. Details name the attribute, never its value."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)
        answered = {keyword: getattr(study, field) for keyword, field in STORED_FIELDS.items()}
        changed = crawler.lossy_fields(answered, stored)
        if not changed:
            return
        for keyword in changed:
            setattr(study, STORED_FIELDS[keyword], stored[keyword][: _limit(keyword)])
        detail = (
            f"{', '.join(changed)} in the C-FIND answer differ from the stored instance's; "
            "the instance's value is kept"
        )
        study.problems = [p for p in study.problems if p.get("code") != LOSSY]
        study.problems.append({"code": LOSSY, "detail": detail})
        study.has_problems = True
        study.save(update_fields=[*(STORED_FIELDS[k] for k in changed), "problems",
                                  "has_problems"])  # fmt: skip
        CrawlProblem.objects.get_or_create(
            run=study.seen_run, study=study, code=LOSSY, defaults={"detail": detail[:300]}
        )


def _limit(keyword):
    return crawler.LIMITS.get(STORED_FIELDS[keyword], 64)


def _enter_phase(run, phase):
    now = timezone.now()
    CrawlRun.objects.filter(pk=run.pk).update(phase=phase, phase_started_at=now)
    run.phase, run.phase_started_at = phase, now
    publish_progress(run)


def _note(run, text):
    CrawlRun.objects.filter(pk=run.pk).update(error=text)


# -- finishing ---------------------------------------------------------------------------


def _finish(run):
    """Settle completeness, flag vanished studies, snapshot growth, release the lease."""
    run.refresh_from_db()
    open_nodes = run.ranges.exclude(status__in=SETTLED)
    complete, unproven = crawler.verdict(_coverage(run, open_nodes.count()))
    settled = not open_nodes.exists()
    with transaction.atomic():
        vanished = _flag_vanished(run) if settled else 0
        totals = Study.objects.filter(seen_run=run).aggregate(
            series=Sum("num_series"), instances=Sum("num_instances")
        )
        problems = run.problems + Study.objects.filter(seen_run=run, has_problems=True).count()
        CrawlRun.objects.filter(pk=run.pk).update(
            status=CrawlRun.Status.DONE,
            phase=CrawlRun.Phase.FINISHED,
            complete=complete,
            unproven=unproven,
            complete_reason=_proof_reason(run) if complete else "",
            studies_vanished=vanished,
            studies_found=Study.objects.filter(seen_run=run).count(),
            series_found=totals["series"] or 0,
            instances_found=totals["instances"] or 0,
            problems=problems,
            proof=reports.study_counts(run),
            finished_at=timezone.now(),
            lease_owner="",
            lease_until=None,
        )
        run.refresh_from_db()
        if settled:
            _snapshot(run)
    _report_finish(run, open_nodes.count())


def _coverage(run, open_count):
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


def _proof_reason(run):
    if run.since is not None:
        return f"every study dated from {run.since} is in a leaf answered under the cap"
    return "the universal C-FIND answered under the cap"


def _flag_vanished(run):
    """Studies a settled crawl no longer lists; those only a witness found are not expected
    in a crawl and stay."""
    missing = (
        Study.objects.filter(source=run.source, vanished=False)
        .exclude(seen_run=run)
        .exclude(found_by__in=WITNESS_KINDS)
    )
    if run.since is not None:
        missing = missing.filter(study_date__gte=run.since)
    return missing.update(vanished=True)


def _snapshot(run):
    totals = reports.totals(run.source)
    GrowthSnapshot.objects.create(
        source=run.source,
        run=run,
        taken_at=run.finished_at,
        studies=totals["studies"],
        series=totals["series"],
        instances=totals["instances"],
        new_studies=run.studies_new,
        vanished_studies=run.studies_vanished,
        estimated_bytes=totals["estimated_bytes"],
    )


def _report_finish(run, open_count):
    name = run.source.name
    verdict = "complete" if run.complete else "NOT PROVEN complete"
    _activity(
        f"crawl {run.pk} of {name} finished: {run.studies_found} studies, "
        f"{run.studies_new} new, {run.studies_vanished} vanished, {verdict}",
        run=run,
    )
    if not run.complete:
        raise_alert(
            "inventory",
            f"inventory.crawl_incomplete.{run.source.pk}",
            f"Inventory crawl of {name} is not proven complete",
            category="inventory",
            impact="medium",
            urgency="low",
            detail=f"Crawl {run.pk}: {run.unproven}",
            links={"crawl": run.pk},
        )


def _fail(run, message):
    CrawlRun.objects.filter(pk=run.pk).update(
        status=CrawlRun.Status.FAILED,
        error=message[:2000],
        finished_at=timezone.now(),
        lease_owner="",
        lease_until=None,
    )
    run.refresh_from_db()
    _activity(f"crawl {run.pk} of {run.source.name} failed: {message}", run=run)
    raise_alert(
        "inventory",
        f"inventory.crawl_failed.{run.source.pk}",
        f"Inventory crawl of {run.source.name} failed",
        category="inventory",
        impact="medium",
        urgency="medium",
        detail=message,
        links={"crawl": run.pk},
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
    base = crawler.verdict(_coverage(run, open_count))[1]
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
