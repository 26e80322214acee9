"""State changes of validation: runs, the discrepancy queue, re-migration, and whether a
wave is validated. Each change publishes `validation.<wave name>` after commit; new open
discrepancies raise one alert per wave and kind (source "validation", no PHI).

A discrepancy is one finding, keyed by (study, instance, kind, subject): a later run
that finds it again updates it, one that no longer finds it (within what it looked at)
marks it fixed. Accepted ones stay accepted. Re-migrating a study sets its open
discrepancies re-migrating; when the engine has run it again, `revalidate` checks the
study once more and each becomes fixed or open again with the new detail.
"""

import logging
import time

from django.db import transaction
from django.utils import timezone

from core import scrub
from core.access import has_rule
from core.alerts import raise_alert
from core.events import publish
from migration import actions, ledger, validation
from migration.actions import ActionError
from migration.enqueue import enqueue_remigration, enqueue_validation
from migration.measures import wave_validation
from migration.models import (
    Discrepancy,
    ReconciliationRow,
    StoredInstance,
    StudyState,
    ValidationRun,
    Wave,
    WaveState,
    WaveStudy,
)
from migration.storage import DestinationError, open_store, sha256_hex

log = logging.getLogger(__name__)
Status = Discrepancy.Status
RunKind = ValidationRun.Kind
RunState = ValidationRun.State
PUBLISH_INTERVAL_S = 0.25
CLOSES = {  # the kinds a run of each kind re-examines, so may find fixed
    RunKind.RECONCILE: set(validation.RECONCILE_KINDS),
    # a render problem is a reviewer's finding: only a later "renders correctly" clears it
    RunKind.SPOTCHECK: {*validation.SPOTCHECK_KINDS, "unavailable"} - {"render"},
}
REMIGRATABLE = [StudyState.DONE, StudyState.QUARANTINED, StudyState.FAILED, StudyState.CANCELLED]


# --- runs ---------------------------------------------------------------------------------


def start_run(wave, kind, user=None, sample=None, seed=None):
    """A queued reconciliation or spot-check of the wave, run by a Celery task."""
    if kind not in (RunKind.RECONCILE, RunKind.SPOTCHECK):
        raise ActionError(f"unknown validation {kind!r}: reconcile or spotcheck")
    if wave.state in (WaveState.DRAFT, WaveState.CANCELLED):
        raise ActionError(f"wave {wave.name} is {wave.state}: nothing was migrated to validate")
    run = ValidationRun.objects.create(
        wave=wave, kind=kind, sample_size=sample, seed=seed, started_by=_user(user)
    )
    publish_wave(wave, run)
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


def _enqueue(run_id):
    try:
        enqueue_validation(run_id)
    except Exception as exc:  # the broker is down: say so on the run
        ValidationRun.objects.filter(pk=run_id).update(
            state=RunState.FAILED, error=f"could not queue the task: {exc}"[:500]
        )


class Progress:
    """The run's progress callback: stored and published a few times a second at most."""

    def __init__(self, run, also=None):
        self.run = run
        self.also = also
        self.last = 0.0

    def __call__(self, done, total):
        if self.also is not None:
            self.also(done, total)
        now = time.monotonic()
        if done < total and now - self.last < PUBLISH_INTERVAL_S:
            return
        self.last = now
        ValidationRun.objects.filter(pk=self.run.pk).update(
            progress_done=done, progress_total=total
        )
        self.run.progress_done, self.run.progress_total = done, total
        publish_wave(self.run.wave, self.run)


def execute_run(run, rows=None, on_progress=None):
    """Run a queued run (the task and the `validate` command call this) and record what
    it found; returns the result dict. `rows` limits it to some ledger rows;
    `on_progress(done, total)` is called on every step too (e.g. a progress bar)."""
    claimed = ValidationRun.objects.filter(pk=run.pk, state=RunState.QUEUED).update(
        state=RunState.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        raise ActionError(f"validation run {run.pk} is not queued")
    run.refresh_from_db()
    wave = run.wave
    publish_wave(wave, run)
    try:
        result = _compute(run, rows, Progress(run, on_progress))
    except Exception as exc:
        _finish(run, RunState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    record(wave, run, result["discrepancies"], scope=_scope(run, result))
    save_report_rows(run, result.get("rows", ()))
    _finish(run, RunState.DONE, totals=_totals(result))
    return result


def save_report_rows(run, rows):
    """A reconciliation's study rows, kept as rows the report pages through by index."""
    ReconciliationRow.objects.bulk_create(
        (ReconciliationRow(run=run, **{f: row[f] for f in ReconciliationRow.FIELDS if f in row})
         for row in rows), batch_size=2000,
    )  # fmt: skip


def _compute(run, rows, progress):
    if run.kind == RunKind.RECONCILE:
        return validation.reconcile(run.wave, progress=progress, rows=rows)
    result = validation.spotcheck(
        run.wave, sample=run.sample_size, seed=run.seed, progress=progress, rows=rows
    )
    ValidationRun.objects.filter(pk=run.pk).update(seed=result["seed"])
    return result


def _scope(run, result):
    """The ledger rows the run looked at completely (its verdicts can close findings)."""
    if run.kind == RunKind.RECONCILE:
        return {r["ledger_id"] for r in result["rows"] if r["verdict"] != "unknown"}
    failed = {error["ledger_id"] for error in result["errors"]}
    return set(result["ledger_ids"]) - failed


def _totals(result):
    totals = {k: v for k, v in result.items() if k not in ("discrepancies", "ledger_ids", "rows")}
    totals["discrepancy_count"] = len(result["discrepancies"])
    return totals


def _finish(run, state, totals=None, error=""):
    fields = {"state": state, "finished_at": timezone.now(), "error": error}
    if totals is not None:
        fields["totals"] = totals
        fields["progress_done"] = run.progress_total or totals.get("studies_sampled", 0)
    ValidationRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    publish_wave(run.wave, run)


# --- recording findings -----------------------------------------------------------------


def _key(study, instance, kind, subject):
    return (study, instance or "", kind, subject or "")


def record(wave, run, found, scope=None):
    """Turn findings into discrepancies (deduplicated); open ones in `scope` (ledger ids;
    None: the whole wave) of the kinds this run re-examines that it did not find again
    become fixed. Returns the new discrepancies."""
    current = {
        _key(d.study_uid, d.sop_uid, d.kind, d.subject): d
        for d in wave.discrepancies.filter(status__in=[*Discrepancy.OPEN_STATES, Status.ACCEPTED])
    }
    seen, created = set(), []
    with transaction.atomic():
        for item in found:
            key = _key(item["study"], item["instance"], item["kind"], item["subject"])
            existing = current.get(key)
            if existing is None:
                current[key] = _create(wave, run, item)
                created.append(current[key])
            else:
                seen.add(existing.pk)
                _seen_again(existing, run, item)
        fixed = _close_unseen(wave, run, seen | {d.pk for d in created}, scope)
    _alert_new(wave, created)
    if created or fixed or found:
        publish_wave(wave, run)
    return created


def _create(wave, run, item):
    return Discrepancy.objects.create(
        wave=wave, ledger_id=item.get("ledger_id"), run=run, study_uid=item["study"],
        series_uid=item["series"] or "", sop_uid=item["instance"] or "", kind=item["kind"],
        subject=item.get("subject", "")[:80], detail=item["detail"][:1000],
    )  # fmt: skip


def _seen_again(discrepancy, run, item):
    """Found again: the latest detail (an accepted one stays as it was accepted)."""
    if discrepancy.status == Status.ACCEPTED:
        return
    discrepancy.detail, discrepancy.run = item["detail"][:1000], run
    discrepancy.save(update_fields=["detail", "run", "updated_at"])


def _close_unseen(wave, run, seen, scope):
    stale = wave.discrepancies.filter(
        status__in=Discrepancy.OPEN_STATES, kind__in=CLOSES.get(run.kind, ())
    ).exclude(pk__in=seen)
    if scope is not None:
        stale = stale.filter(ledger_id__in=scope)
    return stale.update(status=Status.FIXED, resolved_at=timezone.now(), updated_at=timezone.now())


def _alert_new(wave, created):
    by_kind = {}
    for item in created:
        by_kind.setdefault(item.kind, []).append(item)
    for kind, items in by_kind.items():
        label = Discrepancy.Kind(kind).label.lower()
        named = "; ".join(_where(d) for d in items[:5])
        plural = "y" if len(items) == 1 else "ies"
        links = {"wave": wave.pk}
        if items[0].ledger_id:
            links["study"] = items[0].ledger.study_id
        raise_alert(
            "validation",
            cause=f"validation.wave-{wave.pk}.{kind}",
            title=f"Wave {wave.name}: {len(items)} new discrepanc{plural} ({label})",
            category="missing/incorrect images",
            impact="high" if kind in ("missing", "pixel", "unavailable") else "medium",
            urgency="medium",
            detail=f"{named}{' and more' if len(items) > 5 else ''}",
            links=links,
        )


def _where(d):
    where = f"study {d.study_uid} series {d.series_uid or '-'} instance {d.sop_uid or '-'}"
    return f"{where}: {d.detail}"


# --- the queue: owner, acceptance, fixed ----------------------------------------------------


def _change(discrepancy, user, **fields):
    for name, value in fields.items():
        setattr(discrepancy, name, value)
    discrepancy.save(update_fields=[*fields, "updated_at"])
    who = getattr(user, "pk", "-")
    log.info("discrepancy %s: %s by %s", discrepancy.pk, ", ".join(fields), who)
    publish_wave(discrepancy.wave)
    return discrepancy


def assign(discrepancy, user, owner):
    """Give the discrepancy an owner (None: nobody). Only someone who may work on
    discrepancies assigns them, and only to someone who may."""
    if user is not None and not has_rule(user, "validate_migration"):
        raise ActionError("you cannot assign discrepancies")
    if owner is not None and not (owner.is_active and has_rule(owner, "validate_migration")):
        raise ActionError(f"{owner} cannot work on discrepancies")
    return _change(discrepancy, user, owner=owner)


def accept(discrepancy, user, reason):
    """Accept a difference as it is; the reason is required and kept."""
    reason = (reason or "").strip()
    if not reason:
        raise ActionError("a reason is required to accept a discrepancy")
    if discrepancy.status not in Discrepancy.OPEN_STATES:
        raise ActionError(f"discrepancy {discrepancy.pk} is {discrepancy.status}, not open")
    return _change(discrepancy, user, status=Status.ACCEPTED, reason=reason[:500],
                   resolved_by=_user(user), resolved_at=timezone.now())  # fmt: skip


def mark_fixed(discrepancy, user):
    return _change(discrepancy, user, status=Status.FIXED, resolved_by=_user(user),
                   resolved_at=timezone.now())  # fmt: skip


# --- re-migration ---------------------------------------------------------------------------


def remigrate(target, user=None):
    """Queue a study to run through the engine again (see `run_remigration`, which a
    worker runs): its open discrepancies become `remigrating` at once. `target` is a
    Discrepancy or a WaveStudy. Returns the ledger row."""
    row = _remigratable(target)
    with transaction.atomic():
        row.discrepancies.filter(status=Status.OPEN).update(
            status=Status.REMIGRATING, updated_at=timezone.now()
        )
        transaction.on_commit(lambda: enqueue_remigration(row.pk, getattr(user, "pk", None)))
    publish_wave(row.wave)
    return row


def _remigratable(target):
    row = target.ledger if isinstance(target, Discrepancy) else target
    if row is None:
        raise ActionError("this discrepancy concerns no study of the wave")
    row = WaveStudy.objects.select_related("wave__destination", "study").get(pk=row.pk)
    wave = row.wave
    if wave.state in (WaveState.DRAFT, WaveState.CANCELLED):
        raise ActionError(f"wave {wave.name} is {wave.state}: it cannot run the study again")
    if row.state not in REMIGRATABLE:
        raise ActionError(f"the study is {row.state}: the engine is on it already")
    return row


def run_remigration(row_id, user=None):
    """In a worker: objects whose bytes no longer match the manifest are first kept aside
    (and the kept copy read back and compared) and removed, so the engine uploads them
    anew instead of seeing a conflict; then the ledger row is queued again and the wave
    dispatched. A failure reopens the discrepancies and raises an alert (a ticket)."""
    row = WaveStudy.objects.select_related("wave__destination", "study").get(pk=row_id)
    try:
        row = _remigratable(row)
        kept = set_aside_changed(row)
        _requeue(row, user)
    except (ActionError, DestinationError) as exc:  # e.g. refused by the egress policy
        _remigration_failed(row, exc)
        return None
    log.info("ledger %s: re-migration by %s, %d object(s) kept aside", row.pk,
             getattr(user, "pk", "-"), len(kept))  # fmt: skip
    actions.publish_progress(row.wave.pk, force=True)
    publish_wave(row.wave)
    return row


def _requeue(row, user):
    """Queue the row again and wake its wave; the wave's row is locked meanwhile, so that
    re-migrations running side by side do not each try to restart a finished wave."""
    with transaction.atomic():
        wave = Wave.objects.select_for_update().get(pk=row.wave_id)
        moved = ledger.transition(row.pk, StudyState.QUEUED, from_states=REMIGRATABLE, attempts=0,
                                  not_before=None, error_class="", last_error="")  # fmt: skip
        if not moved:
            raise ActionError("the study changed state meanwhile; try again")
        _resume(wave, user)


def _remigration_failed(row, exc):
    detail = scrub.scrub_text(exc)[:300]
    log.warning("ledger %s: re-migration failed: %s", row.pk, detail)
    with transaction.atomic():
        row.discrepancies.filter(status=Status.REMIGRATING).update(
            status=Status.OPEN, updated_at=timezone.now()
        )
        raise_alert(
            "validation",
            f"validation.remigrate-{row.pk}",
            f"Re-migration of a study of wave {row.wave.name} failed",
            category="missing/incorrect images",
            detail=detail,
            links={"wave": row.wave.pk},
        )
    publish_wave(row.wave)


def _resume(wave, user):
    if wave.state == WaveState.DONE:
        actions.change_wave(wave, "start", user)
    elif wave.state == WaveState.RUNNING:
        transaction.on_commit(lambda: actions._dispatch_source(wave.source_id))


def set_aside_changed(row):
    """Keep aside and remove the destination objects of the study whose bytes differ from
    the manifest; returns the keys they were kept under. Nothing is removed before its
    kept copy has been read back with the same SHA-256."""
    store = open_store(row.wave.destination)
    uid = row.study.study_uid
    kept = []
    try:
        store.begin_study(uid)
        for item in row.instances.filter(role=StoredInstance.Role.STORED):
            current = store.existing_sha256(item.key)
            if current is None or current == item.sha256:
                continue
            kept.append(_keep_aside(store, uid, item))
            _remove(store, item.key)
    except DestinationError as exc:
        raise ActionError(f"the destination failed while keeping objects aside: {exc}") from exc
    return kept


def _keep_aside(store, uid, item):
    """Copy an object aside and prove the copy: read back, same SHA-256."""
    data = store.read(item.key)
    sha = sha256_hex(data)
    aside = _aside_key(store, uid, item, sha)
    store.put_aside(aside, data, sha)
    if sha256_hex(store.read(aside)) != sha:
        raise DestinationError(f"the copy kept aside of {item.sop_uid} reads back different bytes")
    return aside


def _aside_key(store, uid, item, sha):
    parts = ("validation-kept", "studies", uid, "series", item.series_uid, item.sop_uid)
    if store.kind == "dicomweb":
        return "local:" + store.local._join(*parts, f"{sha}.dcm")
    return store._join(*parts, f"{sha}.dcm")


def _remove(store, key):
    if store.kind == "s3":
        store._call("delete_object", Key=key)
    elif store.kind == "filesystem":
        store.delete(key)
    else:
        answer = store.session.delete(
            f"{store.base}/{key}", headers=store.headers, timeout=60, allow_redirects=False
        )
        if answer.status_code >= 300:
            raise DestinationError(f"the DICOMweb server refused DELETE ({answer.status_code})")


def revalidate(row):
    """After a re-migration: reconcile and spot-check the study; its re-migrating
    discrepancies become fixed or open again. Once nothing of the wave is re-migrating,
    the whole wave is reconciled again (so it can become validated)."""
    row = WaveStudy.objects.select_related("wave", "study").get(pk=row.pk)
    wave = row.wave
    if row.state != StudyState.DONE:
        row.discrepancies.filter(status=Status.REMIGRATING).update(
            status=Status.OPEN, updated_at=timezone.now()
        )
        publish_wave(wave)
        return None
    for kind in (RunKind.RECONCILE, RunKind.SPOTCHECK):
        run = ValidationRun.objects.create(wave=wave, kind=kind, sample_size=1)
        execute_run(run, rows=[row])
    row.discrepancies.filter(status=Status.REMIGRATING).update(status=Status.OPEN)
    return reconcile_after_remigration(wave)


def reconcile_after_remigration(wave, attempts=3):
    """Reconcile the whole wave once nothing of it is re-migrating. A study re-migrated
    while the run looked (someone pressed re-migrate meanwhile) makes its view stale: the
    run is made again, so the wave's latest reconciliation is one that saw every study
    at rest. None while something is still re-migrating (its revalidation comes back)."""
    result = None
    for _attempt in range(attempts):
        if wave.discrepancies.filter(status=Status.REMIGRATING).exists():
            return result
        started = timezone.now()
        result = execute_run(ValidationRun.objects.create(wave=wave, kind=RunKind.RECONCILE))
        if not wave.ledger.filter(finished_at__gte=started).exists():
            return result
    return result


# --- the wave's state (whether it is validated: `measures.wave_validation`) ----------------


def publish_wave(wave, run=None):
    """The wave's validation state (and a run's progress) to `validation.<wave name>`."""
    state = wave_validation(wave)
    payload = {
        "wave": wave.pk,
        "name": wave.name,
        "validated": state["validated"],
        "reconciled": state["reconciled"],
        "open": state["open"],
    }
    if run is not None:
        payload["run"] = {
            "id": run.pk, "kind": run.kind, "state": run.state, "done": run.progress_done,
            "total": run.progress_total, "error": run.error[:300],
        }  # fmt: skip
    publish(f"validation.{wave.name}", payload)
    publish("validation.waves", payload)
