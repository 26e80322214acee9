"""One study through the pipeline: ask the PACS what it holds, retrieve it (C-GET or
C-MOVE), lint and map each instance, upload it as it arrives, write the manifest, verify,
and record the outcome in the ledger.

Instances stream: the DIMSE thread hands each encoded instance to a bounded queue (by
bytes) that uploader threads drain, so a worker holds at most MIGRATION_QUEUE_MB of a
study whatever its size, and the PACS waits when the destination is slow. Nothing here
touches the database per instance: the manifest rows are written in one transaction at
the end. The ledger row must already be claimed (`ledger.claim_next`) by `owner`.
"""

import contextlib
import ctypes
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from core.scrub import scrub_text
from migration import dicom, ledger, lint, mapping, rates, throttle
from migration.dicom import RetrieveError
from migration.models import (
    Conflict,
    LookupTable,
    QuarantinedInstance,
    StoredInstance,
    StudyState,
)
from migration.storage import CONFLICT, DestinationError, open_store, sha256_hex

log = logging.getLogger(__name__)
MANIFEST_FORMAT = "cc-migration-manifest/1"


class VerificationError(RuntimeError):
    pass


class QuarantineError(Exception):
    """One instance will not be stored as is: `reason` says why (no PHI)."""

    def __init__(self, reason, sop=""):
        super().__init__(reason)
        self.reason = reason
        self.sop = sop


@dataclass
class Entry:
    """One stored object of the study: a manifest row."""

    sop: str
    series: str
    sop_class: str
    transfer_syntax: str
    size: int
    sha256: str
    key: str
    role: str = "stored"
    reported_syntax: str = ""  # the syntax the PACS said it stores this in ("": unknown)

    def as_manifest(self):
        return {
            "sop_instance_uid": self.sop,
            "series_instance_uid": self.series,
            "sop_class_uid": self.sop_class,
            "transfer_syntax_uid": self.transfer_syntax,
            "size": self.size,
            "sha256": self.sha256,
            "key": self.key,
            "role": self.role,
            "reported_transfer_syntax_uid": self.reported_syntax,
        }


@dataclass
class Tally:
    """What happened to the instances of one run (filled by the uploader threads)."""

    received: int = 0
    identical_repeats: int = 0
    strays: int = 0
    entries: list = field(default_factory=list)
    quarantined: list = field(default_factory=list)  # (sop, reason, key, sha, size)
    conflicts: list = field(default_factory=list)  # (Entry, kept_key, kept_sha)
    received_sops: Counter = field(default_factory=Counter)

    @property
    def bytes_stored(self):
        return sum(e.size for e in self.entries)


# --- the bounded pipeline between receiving and uploading -----------------------------


class Budget:
    """Bytes received and not yet stored, bounded across the pipelines that share it: a
    stream overlaps one study's last uploads with the next study's retrieval, and the
    two together still hold at most `max_bytes` (plus one instance each, so that every
    pipeline always makes progress)."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.used = 0
        self.cond = threading.Condition()


_budgets = {}
_budgets_lock = threading.Lock()


def shared_budget(max_bytes):
    """This process's budget of `max_bytes` (one per size), shared by its study runs."""
    with _budgets_lock:
        return _budgets.setdefault(max_bytes, Budget(max_bytes))


class Pipeline:
    """A queue bounded by bytes, drained by uploader threads calling `handle(data)`. The
    first error stops everything and is re-raised by `finish()`.

    It starts `threads` uploaders and adds one whenever an instance waits while every
    uploader is busy, up to `max_threads`: over a link with latency the rate is uploads in
    flight × object size / PUT time (the bandwidth-delay product), so a slow PUT calls for
    more in flight; the bytes bound (`max_bytes`, received and not yet stored, or the
    `budget` shared with other pipelines) still caps the memory, whatever the number of
    threads."""

    def __init__(self, handle, threads, max_bytes, max_threads=None, budget=None):
        self.handle = handle
        self.budget = budget or Budget(max_bytes)
        self.max_threads = max(1, threads, max_threads or threads)
        self.items = queue.Queue()
        self.pending = 0
        self.idle = 0
        self.cond = self.budget.cond
        self.error = None
        self.stopped = self.closing = False
        self.threads = []
        for _ in range(max(1, threads)):
            self._add_thread()

    @property
    def max_bytes(self):
        return self.budget.max_bytes

    def _add_thread(self):
        thread = threading.Thread(
            target=self._work, name=f"uploader-{len(self.threads)}", daemon=True
        )
        self.threads.append(thread)
        self.idle += 1
        thread.start()

    def _grow(self):
        """One more uploader if an instance waits and none is idle (checked whenever an
        instance is queued or taken)."""
        with self.cond:
            if self.closing or self.idle or self.items.empty():
                return
            if len(self.threads) < self.max_threads:
                self._add_thread()

    def submit(self, data):
        """Called by the receiving thread; blocks while the queue is full."""
        size = len(data)
        with self.cond:
            while (
                self.error is None
                and not self.stopped
                and self.pending
                and (self.budget.used + size > self.budget.max_bytes)
            ):
                self.cond.wait(0.5)
            if self.error is not None:
                raise self.error
            if self.stopped:
                raise RuntimeError("the pipeline was stopped")
            self.pending += size
            self.budget.used += size
        self.items.put(data)
        self._grow()

    def _work(self):
        while True:
            data = self.items.get()
            with self.cond:
                self.idle -= 1
            if data is None:
                return
            self._grow()
            try:
                if self.error is None and not self.stopped:
                    self.handle(data)
            except BaseException as exc:
                with self.cond:
                    self.error = self.error or exc
            finally:
                with self.cond:
                    self.pending -= len(data)
                    self.budget.used -= len(data)
                    self.idle += 1
                    self.cond.notify_all()

    def finish(self):
        with self.cond:
            self.closing = True
        for _ in self.threads:
            self.items.put(None)
        for thread in self.threads:
            thread.join()
        if self.error is not None:
            raise self.error

    def abort(self):
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        self.finish_quietly()

    def finish_quietly(self):
        with contextlib.suppress(BaseException):
            self.finish()


# --- keeping the lease ----------------------------------------------------------------


class Heartbeat(threading.Thread):
    """Renews the study's lease (and the PACS slot's) every third of the lease; sets
    `lost` when the row is no longer ours."""

    def __init__(self, ledger_id, owner, slot=None):
        super().__init__(name=f"heartbeat-{ledger_id}", daemon=True)
        self.ledger_id = ledger_id
        self.owner = owner
        self.slot = slot
        self.interval = max(0.5, ledger.lease_seconds() / 3)
        self.done = threading.Event()
        self.lost = False

    def run(self):
        try:
            while not self.done.wait(self.interval):
                if not ledger.renew(self.ledger_id, self.owner):
                    self.lost = True
                    return
                if self.slot is not None:
                    slots, token = self.slot
                    slots.renew(token)
        except Exception:
            log.exception("ledger %s: lease renewal failed", self.ledger_id)
        finally:
            connection.close()

    def stop(self):
        self.done.set()
        self.join(5)


# --- one study ------------------------------------------------------------------------


@dataclass
class StoredAs:
    """The transfer syntaxes the PACS reported storing a study's objects in: from the
    inventory's sample of each series, or per instance from the IMAGE-level C-FIND when
    the PACS answers Available Transfer Syntax UID. Proposed first on retrieval; an
    instance received in another syntax was transcoded by the PACS."""

    by_class: dict = field(default_factory=dict)  # SOP class -> [syntaxes seen]
    by_series: dict = field(default_factory=dict)  # series UID -> syntax of its sample

    @classmethod
    def of(cls, study):
        stored = cls()
        sampled = study.series.exclude(transfer_syntax="").order_by("pk")
        for series, sop_class, syntax in sampled.values_list(
            "series_uid", "sop_class", "transfer_syntax"
        ):
            stored.by_series[series] = syntax
            if sop_class:
                stored.by_class.setdefault(sop_class, [])
                if syntax not in stored.by_class[sop_class]:
                    stored.by_class[sop_class].append(syntax)
        return stored

    def reported(self, sop, series, expected=None):
        found = expected.syntaxes.get(sop) if expected is not None else None
        return found or self.by_series.get(series, "")


class StudyRun:
    """One attempt at one claimed ledger row."""

    def __init__(self, row, owner, *, slot=None, observer=None, store=None, retrieved=None):
        self.row = row
        self.retrieved = retrieved  # an Event set once the PACS's part is over
        self.owner = owner
        self.wave = row.wave
        self.study_uid = row.study.study_uid
        self.destination = self.wave.destination
        self.pacs = dicom.Pacs.from_source(self.wave.source)
        self.rules = list(self.wave.profile.rules) if self.wave.profile else []
        self.tables = lookup_tables(self.rules)
        self.store = store
        self.slot = slot
        self.observer = observer
        self.tally = Tally()
        self.lock = threading.Lock()
        self.sop_locks = {}
        self.seen = {}  # SOP UID -> SHA-256 stored at its canonical key this run
        self.keys = set()
        self.meter = rates.Meter(self.wave.pk, destination_id=self.destination.pk)
        self.heartbeat = None
        self.started = self.lap_started = time.perf_counter()
        self.laps = []
        self.expected = None
        self.stored_as = StoredAs.of(row.study)

    # the run ------------------------------------------------------------------------

    def run(self):
        """Returns the row's new state (done, failed or quarantined); None if the row was
        taken from us (lease lost)."""
        self.heartbeat = Heartbeat(self.row.pk, self.owner, self.slot)
        self.heartbeat.start()
        try:
            return self._run()
        except ledger.LeaseLostError as exc:
            log.warning("ledger %s: %s", self.row.pk, exc)
            return None
        except RetrieveError as exc:
            return self._fail(exc.error_class, str(exc))
        except DestinationError as exc:
            rates.record_destination_error(self.destination.pk)
            if exc.retry:
                return self._fail("destination_error", str(exc))
            return self._fail("configuration", str(exc))
        except VerificationError as exc:
            return self._fail("verification_mismatch", str(exc))
        except Exception as exc:
            log.exception("ledger %s: unexpected error", self.row.pk)
            return self._fail("internal", f"{type(exc).__name__}: {exc}")
        finally:
            self._pacs_done()
            self.heartbeat.stop()
            self.meter.flush()

    def _pacs_done(self):
        if self.retrieved is not None:
            self.retrieved.set()

    def _run(self):
        expected = self.expected = dicom.query_study(self.pacs, self.study_uid)
        self._latency(expected.latency_ms)
        self._lap("query")
        self.store = self.store or open_store(self.destination)
        self.store.begin_study(self.study_uid)
        retrieved = self._retrieve(expected)
        self._lap("retrieve")
        ledger.advance(self.row.pk, StudyState.VERIFYING, self.owner)
        problems = self._count_problems(expected, retrieved)
        problems += self.store.verify(self.study_uid, [e.as_manifest() for e in self.tally.entries])
        manifest_key, manifest_sha = self.store.put_manifest(
            self.study_uid, self.manifest(expected)
        )
        self._lap("verify")
        if problems:
            raise VerificationError("; ".join(problems))
        state = self._finish(expected, manifest_key, manifest_sha)
        self._lap("record")
        log.info(
            "ledger %s: %s, %d instances, %d bytes (%s)", self.row.pk, state,
            self.tally.received, self.tally.bytes_stored,
            ", ".join(f"{name} {ms:.0f} ms" for name, ms in self.laps),
        )  # fmt: skip
        return state

    def _lap(self, name):
        now = time.perf_counter()
        self.laps.append((name, (now - self.lap_started) * 1000))
        self.lap_started = now

    def _retrieve(self, expected):
        """Retrieve into the pipeline; `uploading` once the PACS is done and the queue
        drains. Errors of the uploaders win over the retrieval's (they are the cause)."""
        max_bytes = int(settings.MIGRATION_QUEUE_MB) * 1024 * 1024
        pipeline = Pipeline(
            self._handle, int(settings.MIGRATION_UPLOAD_THREADS), max_bytes,
            max_threads=int(settings.MIGRATION_UPLOAD_THREADS_MAX),
            budget=shared_budget(max_bytes),
        )  # fmt: skip
        try:
            retrieved = dicom.retrieve(
                self.pacs, self.study_uid, expected.sop_classes, self._receiver(pipeline),
                first=self.stored_as.by_class,
            )  # fmt: skip
        except BaseException:
            error = pipeline.error
            pipeline.abort()
            if error is not None and not isinstance(error, RetrieveError):
                raise error from None
            raise
        self._pacs_done()
        try:
            ledger.advance(
                self.row.pk, StudyState.UPLOADING, self.owner, instances_reported=expected.count
            )
        except ledger.LeaseLostError:
            pipeline.abort()
            raise
        pipeline.finish()
        if retrieved.first_byte_ms is not None:
            self._latency(retrieved.first_byte_ms)
        return retrieved

    def _receiver(self, pipeline):
        """What the DIMSE thread calls with each instance as it arrives: the pipeline, seen
        first by `observer` when one is given (tests use it to break things mid-study)."""
        if self.observer is None:
            return pipeline.submit

        def receive(data):
            self.observer(self, data)
            pipeline.submit(data)

        return receive

    def _latency(self, sample_ms):
        source = self.wave.source
        throttle.record_latency(source.pk, sample_ms, source.max_associations)

    # one instance (in an uploader thread) ---------------------------------------------

    def _handle(self, data):
        if self.heartbeat.lost:
            raise ledger.LeaseLostError(f"ledger {self.row.pk}: lease lost mid-study")
        try:
            ds, data = self._prepare(data)
        except QuarantineError as q:
            self._quarantine(data, q)
            return
        if ds is None:
            return
        if lint.PIXEL_DATA in ds:  # the bytes to store are `data`: free the parsed copy of
            del ds[lint.PIXEL_DATA]  # the pixels before the PUT, which may wait on the link
        sop, series = str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID)
        sha = sha256_hex(data)
        started = time.perf_counter()
        with self._sop_lock(sop):
            self._store(ds, sop, series, data, sha)
        self.meter.add(1, len(data), (time.perf_counter() - started) * 1000)

    def _prepare(self, data):
        """Lint and map one instance: (dataset, bytes to store); (None, _) for a stray of
        another study arriving on our C-MOVE port. Raises QuarantineError."""
        try:
            ds = lint.parse(data)
        except lint.UnreadableError as exc:
            self._count("")
            raise QuarantineError(str(exc)) from exc
        sop = str(ds.get("SOPInstanceUID", "") or "")
        problems, coerced = lint.structure(
            ds, len(data), study_uid=self.study_uid, max_bytes=self.store.max_bytes,
            coerce=self.destination.coerce, data=data,
        )  # fmt: skip
        if problems == ["belongs to another study"] and self.pacs.method == "move":
            log.warning("ledger %s: ignored instance %s of another study", self.row.pk, sop)
            with self.lock:
                self.tally.strays += 1
            return None, data
        self._count(sop)
        if problems:
            raise QuarantineError("; ".join(problems), sop)
        return self._map(ds, data, sop, coerced)

    def _count(self, sop):
        with self.lock:
            self.tally.received += 1
            self.tally.received_sops[sop] += 1

    def _map(self, ds, data, sop, coerced):
        before = lint.identity(ds)
        try:
            changed = mapping.apply_rules(ds, self.rules, self.tables) if self.rules else []
        except mapping.MappingError as exc:
            raise QuarantineError(str(exc), sop) from exc
        problems, more = lint.values(ds, self.destination.kind, self.destination.coerce)
        problems = lint.identity_problems(before, ds) + problems
        if problems:
            raise QuarantineError("; ".join(problems), sop)
        if changed or coerced or more:
            data = mapping.encode(ds)
        return ds, data

    def _sop_lock(self, sop):
        with self.lock:
            return self.sop_locks.setdefault(sop, threading.Lock())

    def _store(self, ds, sop, series, data, sha):
        meta = ds.file_meta
        if self.seen.get(sop) == sha:
            with self.lock:
                self.tally.identical_repeats += 1
            return
        put = self.store.put_instance(self.study_uid, series, sop, data, sha)
        entry = Entry(
            sop, series, str(ds.SOPClassUID), str(meta.TransferSyntaxUID), put.size, sha, put.key,
            reported_syntax=self.stored_as.reported(sop, series, self.expected),
        )  # fmt: skip
        with self.lock:
            if put.key in self.keys:  # the same bytes again, at a key this run wrote
                self.tally.identical_repeats += 1
                return
            self.keys.add(put.key)
            if put.outcome == CONFLICT:
                entry.role = "conflict"
                self.tally.conflicts.append((entry, put.kept_key, put.kept_sha256))
            else:
                self.seen[sop] = sha
            self.tally.entries.append(entry)

    def _quarantine(self, data, q):
        sha = sha256_hex(data)
        key = self.store.put_aside(self.store.quarantine_key(self.study_uid, sha), data, sha)
        log.warning(
            "ledger %s: quarantined instance %s: %s", self.row.pk, q.sop or sha[:12], q.reason
        )
        with self.lock:
            self.tally.quarantined.append((q.sop, q.reason, key, sha, len(data)))

    # verification and the record ------------------------------------------------------

    def _count_problems(self, expected, retrieved):
        """Reported, received and stored counts must agree; name what differs. A PACS
        that sends an instance twice, byte for byte, is counted once (some archives do)."""
        tally = self.tally
        accounted = len(tally.entries) + tally.identical_repeats + len(tally.quarantined)
        problems = []
        if retrieved.failed:
            problems.append(f"the PACS failed to send {retrieved.failed} instance(s)")
        received = (tally.received, tally.received - tally.identical_repeats)
        if expected.count not in received or retrieved.failed:
            missing = self._missing(expected)
            named = f" (missing: {_uids(missing)})" if missing else ""
            problems.append(
                f"the PACS reported {expected.count} instance(s), {tally.received} received{named}"
            )
        if accounted != tally.received:
            problems.append(f"{tally.received} received but {accounted} stored or set aside")
        return problems

    def _missing(self, expected):
        """The SOP Instance UIDs the PACS lists but did not send; asks the PACS for the
        list (IMAGE level) only now, when something is missing."""
        if not expected.listed:
            try:
                expected = dicom.query_study(self.pacs, self.study_uid, listed=True)
            except RetrieveError:
                return []
        return sorted(set(expected.instances) - set(self.tally.received_sops))

    def manifest(self, expected):
        tally = self.tally
        return {
            "format": MANIFEST_FORMAT,
            "study_instance_uid": self.study_uid,
            "wave": self.wave.name,
            "ledger_id": self.row.pk,
            "destination": self.destination.name,
            "reported": expected.count,
            "received": tally.received,
            "stored": len(tally.entries),
            "instances": sorted((e.as_manifest() for e in tally.entries), key=_order),
            "quarantined": [
                {"sop_instance_uid": sop, "reason": reason, "key": key, "sha256": sha, "size": size}
                for sop, reason, key, sha, size in tally.quarantined
            ],
        }

    def _finish(self, expected, manifest_key, manifest_sha):
        tally = self.tally
        state = StudyState.QUARANTINED if tally.quarantined else StudyState.DONE
        fields = self._record_fields(expected, manifest_key, manifest_sha)
        if tally.quarantined:
            fields["error_class"] = "bad_data"
            fields["last_error"] = _quarantine_reason(tally.quarantined)
        else:
            fields["error_class"] = fields["last_error"] = ""
        with transaction.atomic():
            fields["conflicts"] = self._write_manifest_rows()
            fields["key_format"] = self.row.key_format  # recorded with the state change
            ledger.advance(self.row.pk, state, self.owner, **fields)
        return state

    def _record_fields(self, expected, manifest_key, manifest_sha):
        tally = self.tally
        return {
            "instances_reported": expected.count,
            "instances_received": tally.received,
            "instances_stored": len([e for e in tally.entries if e.role == "stored"]),
            "instances_quarantined": len(tally.quarantined),
            "conflicts": len(tally.conflicts),
            "bytes_stored": tally.bytes_stored,
            "pacs_latency_ms": round(expected.latency_ms, 1),
            "manifest_key": manifest_key,
            "manifest_sha256": manifest_sha,
            "lease_owner": "",
            "lease_expires": None,
            "not_before": None,
            "finished_at": timezone.now(),
            "duration_s": round(time.perf_counter() - self.started, 3),
        }

    def _write_manifest_rows(self):
        """The manifest and its conflicts in the database (one transaction, bulk)."""
        row = self.row
        row.key_format = self.store.instance_key(self.study_uid, "{series}", "{sop}")
        StoredInstance.objects.filter(ledger=row).delete()
        QuarantinedInstance.objects.filter(ledger=row).delete()
        StoredInstance.objects.bulk_create(
            [
                StoredInstance(
                    ledger=row,
                    sop_uid=e.sop,
                    series_uid=e.series,
                    sop_class=e.sop_class,
                    transfer_syntax=e.transfer_syntax,
                    size=e.size,
                    sha256=e.sha256,
                    key=e.key,
                    role=e.role,
                    reported_syntax=e.reported_syntax,
                )  # fmt: skip
                for e in self.tally.entries
            ],
            batch_size=500,
        )
        QuarantinedInstance.objects.bulk_create(
            QuarantinedInstance(
                ledger=row,
                sop_uid=sop,
                reason=scrub_text(reason)[:500],
                key=key,
                sha256=sha,
                size=size,
            )
            for sop, reason, key, sha, size in self.tally.quarantined
        )
        conflicts = self.tally.conflicts + self._elsewhere()
        Conflict.objects.bulk_create(
            [
                Conflict(
                    ledger=row,
                    sop_uid=e.sop,
                    series_uid=e.series,
                    kept_key=kept_key,
                    kept_sha256=kept_sha,
                    other_key=e.key,
                    other_sha256=e.sha256,
                    other_size=e.size,
                )  # fmt: skip
                for e, kept_key, kept_sha in conflicts
            ],
            ignore_conflicts=True,
        )
        return len(conflicts)

    def _elsewhere(self):
        """Our SOP Instance UIDs already stored by another study in this destination with
        other bytes (a UID reused across studies): conflicts too, both copies kept."""
        ours = {e.sop: e for e in self.tally.entries if e.role == "stored"}
        found = []
        sops = sorted(ours)
        for start in range(0, len(sops), 500):
            others = (
                StoredInstance.objects.filter(
                    sop_uid__in=sops[start : start + 500],
                    role=StoredInstance.Role.STORED,
                    ledger__wave__destination=self.destination,
                )
                .exclude(ledger__study=self.row.study)
                .select_related("ledger")
                .only("sop_uid", "series_uid", "sha256", "own_key", "ledger__key_format")
            )
            found += [
                (ours[o.sop_uid], o.key, o.sha256)
                for o in others
                if o.sha256 != ours[o.sop_uid].sha256
            ]
        return found

    def _fail(self, error_class, message):
        try:
            return ledger.fail(self.row, self.owner, error_class, message)
        except ledger.LeaseLostError as exc:
            log.warning("ledger %s: %s", self.row.pk, exc)
            return None


def _order(entry):
    return (entry["series_instance_uid"], entry["sop_instance_uid"], entry["role"])


def manifest_instances(rows):
    """The manifest's "instances" from StoredInstance rows (the database's copy)."""
    entries = (
        Entry(
            r.sop_uid,
            r.series_uid,
            r.sop_class,
            r.transfer_syntax,
            r.size,
            r.sha256,
            r.key,
            r.role,
            r.reported_syntax,
        )  # fmt: skip
        for r in rows
    )
    return sorted((e.as_manifest() for e in entries), key=_order)


def _uids(uids, limit=3):
    shown = ", ".join(uids[:limit])
    return shown + (f" and {len(uids) - limit} more" if len(uids) > limit else "")


def _quarantine_reason(quarantined):
    first_sop, first_reason = quarantined[0][0], quarantined[0][1]
    name = (
        f"instance {first_sop}" if first_sop else f"an instance (sha256 {quarantined[0][3][:12]})"
    )
    more = f" (and {len(quarantined) - 1} more)" if len(quarantined) > 1 else ""
    return scrub_text(f"{len(quarantined)} instance(s) quarantined: {name} {first_reason}{more}")


def lookup_tables(rules):
    """{table name: entries} of the lookup tables a profile's `map` rules use (one query);
    validation applies the profile the same way to the source side."""
    names = {rule["table"] for rule in rules if rule.get("op") == "map"}
    if not names:
        return {}
    return dict(LookupTable.objects.filter(name__in=names).values_list("name", "entries"))


M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8  # glibc mallopt


def tune_allocator(mmap_threshold=4 << 20, keep=16 << 20):
    """Keep instance-sized buffers in the C heap (glibc): each received instance, and the
    Pixel Data its lint reads, is a fresh ~0.5 MB allocation that glibc would otherwise
    map and unmap, zero-filling 128 pages every time (80,000 page faults per 1,000
    instances, 8,500 after this). Freed memory stays for the next instance instead of
    going back to the system, in two arenas rather than one per uploader thread, so the
    worker's RSS sits at its high-water mark, which the pipeline's byte bound keeps flat.
    A no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
        libc.mallopt(M_TRIM_THRESHOLD, keep)
        libc.mallopt(M_TOP_PAD, 4 << 20)
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        log.debug("allocator left as it is (no glibc)")


def migrate_study(row, owner, **kwargs):
    """Run one claimed ledger row through the pipeline; returns its new state. With
    `retrieved` (an Event), it is set as soon as the PACS has sent the study (or the run
    ended): the caller may then start the next study while this one finishes its
    uploads, verification and record."""
    close_old_connections()
    return StudyRun(row, owner, **kwargs).run()
