"""State changes of the hybrid period, each followed by its live event after commit.

Sync mode: `configure` turns it on or off; `run_due` (beat, through `sync.tasks.tick`)
runs each due PACS's incremental crawl with the inventory's own crawl code, from the
last crawl's high-water mark, and `queue_changes` puts what it found at the head of the
queue (`migration.expedite.place`, the sync wave). `settle` closes the loop: a synced
study whose ledger row is done gets its lag, a top-up its new manifest version, and a
lag above the objective raises an alert (a ticket on the board).

Priors first: `receive_message` stores an HL7 message as an Appointment (before the ACK)
and queues `process_appointment`, which looks the patient up (`sync.priors`) and
expedites the priors. Logs carry ids and UIDs only.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone

from core.alerts import clear_alert, raise_alert
from core.events import publish
from hybrid import routing
from inventory import actions as inventory_actions
from inventory import engine as inventory_engine
from inventory.models import CrawlRun, Study
from migration import expedite
from migration.models import Destination, StudyState, Wave, WaveStudy
from migration.storage import open_store
from sync import lag, priors
from sync.models import Appointment, AppointmentPrior, ManifestVersion, SyncedStudy, SyncSource

log = logging.getLogger(__name__)


class SyncError(ValueError):
    """A request that cannot be carried out; the message says why, for people."""


# --- sync mode --------------------------------------------------------------------------


def configure(source, *, enabled, every_minutes=None, destination=None, user=None, **fields):
    """Turn sync mode on or off for `source` (and set its interval and destination)."""
    sync = SyncSource.objects.filter(source=source).first()
    destination = destination or (sync.destination if sync else None) or _latest(source)
    if destination is None:
        raise SyncError(f"{source.name} has no destination yet: name one (--destination)")
    now = timezone.now()
    values = {"destination": destination, "changed_by": user, "changed_at": now, **fields}
    if every_minutes is not None:
        if not 0.1 <= float(every_minutes) <= 1440:
            raise SyncError("the interval is 0.1 to 1440 minutes")
        values["every_minutes"] = float(every_minutes)
    values["enabled"] = bool(enabled)
    if enabled and not (sync and sync.enabled):
        values.update(enabled_at=now, next_crawl_at=now)
    sync, _created = SyncSource.objects.update_or_create(source=source, defaults=values)
    log.info("sync of PACS %s %s by %s", source.pk, "on" if enabled else "off", _who(user))
    publish_panel(sync)
    return sync


def _latest(source):
    wave = Wave.objects.filter(source=source).exclude(name__startswith="urgent-")
    wave = wave.order_by("-created_at").first()
    return wave.destination if wave else None


def _who(user):
    return getattr(user, "pk", None) or "system"


def destination_named(name):
    try:
        return Destination.objects.get(name=name)
    except Destination.DoesNotExist:
        raise SyncError(f"no destination named {name!r}") from None


def run_due(now=None):
    """Run the incremental crawl of every PACS whose turn has come; returns their ids."""
    now = now or timezone.now()
    due = SyncSource.objects.filter(enabled=True, next_crawl_at__lte=now)
    return [sync.pk for sync in due.select_related("source") if crawl_once(sync, now)]


def crawl_once(sync, now=None):
    """One incremental crawl, if this caller wins the turn and the schedule allows it:
    new and changed studies are queued at once. Returns the CrawlRun or None."""
    now = now or timezone.now()
    turn = timezone.now() + timedelta(minutes=sync.every_minutes)
    won = SyncSource.objects.filter(pk=sync.pk, enabled=True, next_crawl_at__lte=now).update(
        next_crawl_at=turn
    )
    if not won or not allowed_now(sync.schedule, now):
        return None
    started = timezone.now()
    try:
        run = inventory_actions.start_crawl(
            sync.source, since=since(sync, now), with_series=False, enqueue=False
        )
        inventory_engine.execute_crawl(run.pk)
    except inventory_actions.CrawlError as exc:
        _note(sync, str(exc))
        return None
    run.refresh_from_db()
    if run.status != CrawlRun.Status.DONE:
        _note(sync, f"crawl {run.pk} {run.status}: {run.error[:200]}")
        return run
    queue_changes(sync, run)
    SyncSource.objects.filter(pk=sync.pk).update(high_water=started, last_crawl=run, last_error="")
    sync.refresh_from_db()
    publish_panel(sync)
    return run


def allowed_now(schedule, now):
    """A 7×24 schedule (Monday first) allows a crawl unless its hour holds 0."""
    if not schedule:
        return True
    local = timezone.localtime(now)
    value = schedule[local.weekday()][local.hour]
    return value is None or value > 0


def since(sync, now):
    """The first StudyDate the incremental crawl asks for: the high-water mark (or the
    moment sync was switched on), less the look-back for studies dated a little late."""
    mark = sync.high_water or sync.enabled_at or now
    return timezone.localtime(mark).date() - timedelta(days=settings.SYNC_LOOKBACK_DAYS)


def _note(sync, text):
    log.warning("sync of PACS %s: %s", sync.source_id, text)
    SyncSource.objects.filter(pk=sync.pk).update(last_error=text[:300])


def queue_changes(sync, run):
    """Queue the crawl's new studies and those with more instances than migrated; never
    those the bridge brought from the cloud (they would loop back)."""
    seen = Study.objects.filter(source=sync.source, seen_run=run, vanished=False)
    migrated = _migrated_counts(sync, seen)
    pending = set(sync.studies.filter(verified_at__isnull=True).values_list("study_id", flat=True))
    came_back = routing.forwarded_from_cloud(seen.values_list("study_uid", flat=True))
    new, topups = [], []
    for study in seen.order_by("-study_date", "pk"):
        if study.pk in pending or study.study_uid in came_back:
            continue
        if study.pk not in migrated:
            new.append(study)
        elif study.num_instances and study.num_instances > migrated[study.pk]:
            topups.append(study)
    for study in topups:
        keep_manifest(sync.destination, study)
    queued = timezone.now()
    with transaction.atomic():  # the engine is dispatched once the records exist
        placed = expedite.place(
            sync.source, [s.study_uid for s in new + topups], kind=expedite.SYNC,
            destination=sync.destination, profile=sync.profile, again=True,
        )  # fmt: skip
        _record(sync, new, SyncedStudy.Kind.NEW, placed, queued)
        _record(sync, topups, SyncedStudy.Kind.TOPUP, placed, queued)
    log.info("sync of PACS %s: crawl %s queued %d new, %d top-ups", sync.source_id, run.pk,
             len(new), len(topups))  # fmt: skip
    return new, topups


def _migrated_counts(sync, studies):
    """{study id: instances reported when last verified} in the sync's destination."""
    done = WaveStudy.objects.filter(
        study__in=studies, state=StudyState.DONE, wave__destination=sync.destination
    )
    return dict(
        done.values("study_id").annotate(n=Max("instances_reported")).values_list("study_id", "n")
    )


def _record(sync, studies, kind, placed, queued):
    """A SyncedStudy per placed study; a new study was first sighted when the inventory
    first listed it (or when sync was switched on, for one known before), a top-up when
    this crawl saw its new count."""
    floor = sync.enabled_at or queued
    rows = []
    for study in studies:
        if placed.outcomes.get(study.study_uid) in ("unknown", "no_destination"):
            continue
        sighted = max(study.first_seen, floor) if kind == "new" else study.last_seen or queued
        rows.append(
            SyncedStudy(
                sync=sync,
                study=study,
                kind=kind,
                instances=study.num_instances,
                sighted_at=sighted,
                queued_at=queued,
                ledger=placed.rows.get(study.pk),
            )  # fmt: skip
        )
    SyncedStudy.objects.bulk_create(rows)


# --- manifests' versions ------------------------------------------------------------------


def keep_manifest(destination, study):
    """Before a top-up: the study's current manifest becomes a numbered version, copied
    under its own key, so the top-up's new manifest never erases it."""
    if ManifestVersion.objects.filter(study=study, destination=destination).exists():
        return None
    row = (
        WaveStudy.objects.filter(study=study, state=StudyState.DONE, wave__destination=destination)
        .exclude(manifest_key="")
        .order_by("-finished_at")
        .first()
    )
    return _version(destination, study, row) if row else None


def _version(destination, study, row):
    number = (
        ManifestVersion.objects.filter(study=study, destination=destination).aggregate(
            n=Max("version")
        )["n"]
        or 0
    ) + 1
    store = open_store(destination)
    key = row.manifest_key.removesuffix(".json") + f".v{number}.json"
    store.write(key, store.read(row.manifest_key), row.manifest_sha256)
    return ManifestVersion.objects.create(
        study=study, destination=destination, version=number, key=key,
        sha256=row.manifest_sha256, instances=row.instances_stored, ledger=row,
    )  # fmt: skip


# --- the loop's end: verified, lag, alert -------------------------------------------------


def settle(wave_id=None):
    """Synced studies whose ledger row is now done: their lag; top-ups their manifest
    version. Then the objective is checked and the panels refreshed."""
    pending = SyncedStudy.objects.filter(
        verified_at__isnull=True, ledger__state=StudyState.DONE
    ).select_related("ledger", "sync__destination", "study")
    if wave_id is not None:
        pending = pending.filter(ledger__wave_id=wave_id)
    touched = set()
    for item in pending:
        verified = item.ledger.finished_at or timezone.now()
        if verified < item.queued_at:
            continue  # the row's last run finished before this top-up was queued
        done = SyncedStudy.objects.filter(pk=item.pk, verified_at__isnull=True).update(
            verified_at=verified, lag_s=max(0.0, (verified - item.sighted_at).total_seconds())
        )
        if done and item.kind == SyncedStudy.Kind.TOPUP:
            _new_version(item)
        touched.add(item.sync_id)
    for sync in SyncSource.objects.filter(pk__in=touched).select_related("source"):
        check_objective(sync)
        publish_panel(sync)
    return len(touched)


def _new_version(item):
    try:
        _version(item.sync.destination, item.study, item.ledger)
    except Exception:
        log.exception("ledger %s: keeping the manifest's version failed", item.ledger_id)


def check_objective(sync, figures=None):
    """Raise the lag alert when p95 or the oldest unsynced study is above the objective;
    clear it when both are back under."""
    figures = figures or lag.figures(sync)
    cause = f"sync.lag.source-{sync.source_id}"
    if figures["over_objective"]:
        if SyncSource.objects.filter(pk=sync.pk, alerting=False).update(alerting=True):
            raise_alert(
                "migration", cause, f"Sync lag of PACS {sync.source.name} above its objective",
                category="performance", impact="high", urgency="high",
                detail=_lag_text(figures),
            )  # fmt: skip
    elif SyncSource.objects.filter(pk=sync.pk, alerting=True).update(alerting=False):
        clear_alert("migration", cause, _lag_text(figures))
    return figures


def _lag_text(f):
    def show(value):
        return "–" if value is None else f"{value:.0f} s"

    return (
        f"p50 {show(f['lag_p50_s'])}, p95 {show(f['lag_p95_s'])}, oldest unsynced "
        f"{show(f['oldest_unsynced_s'])}, {f['pending']} pending; "
        f"objective {f['objective_s']:.0f} s"
    )


def status_of(source):
    """The `pacs sync NAME --status --json` object (settled first, so it is current)."""
    sync = SyncSource.objects.filter(source=source).first()
    if sync is None:
        return {"enabled": False, "lag_p50_s": None, "lag_p95_s": None,
                "oldest_unsynced_s": None, "pending": 0}  # fmt: skip
    settle()
    return lag.figures(sync)


def panel_context(sync, figures=None):
    return {"sync": sync, "figures": figures or lag.figures(sync)}


def publish_panel(sync):
    context = panel_context(sync)
    html = render_to_string("sync/_lag_panel.html", context)
    publish(f"migration.sync.{sync.source_id}", context["figures"], html=html)


def tick():
    """Beat: due crawls, stalled managed waves, the objective and the panels."""
    crawled = run_due()
    expedite.restart_stalled()
    settle()
    for sync in SyncSource.objects.filter(enabled=True).select_related("source"):
        check_objective(sync)
        publish_panel(sync)
    return crawled


# --- priors first -------------------------------------------------------------------------


def receive_message(parsed, raw, sender=""):
    """Store one accepted HL7 message as an Appointment and queue its priors' lookup
    after commit. Returns the Appointment."""
    with transaction.atomic():
        appointment = Appointment.objects.create(
            control_id=parsed.control_id[:64], message_type=parsed.message_type[:16],
            sender=sender[:60], patient_id=parsed.patient_id[:64], issuer=parsed.issuer[:64],
            other_ids=parsed.other_ids, placer=parsed.placer[:64], modality=parsed.modality[:16],
            scheduled_at=parsed.scheduled_at, raw=raw,
        )  # fmt: skip
        transaction.on_commit(lambda: _enqueue_priors(appointment.pk))
    log.info("hl7: %s stored as appointment %s", parsed.message_type, appointment.pk)
    return appointment


def _enqueue_priors(appointment_id):
    """Queue `sync.tasks.queue_priors` by name (the tasks module imports this one)."""
    from celery import current_app

    current_app.send_task(
        "sync.tasks.queue_priors", (appointment_id,), queue=settings.MIGRATION_QUEUE
    )


def process_appointment(appointment):
    """Find the patient's studies and put the not-yet-migrated ones at the head of the
    queue, most recent and same modality first."""
    if appointment.state != Appointment.State.RECEIVED:
        return appointment
    found = priors.find(appointment)
    by_source = {}
    for study in found:
        by_source.setdefault(study.source, []).append(study)
    outcomes = {}
    for source, studies in by_source.items():
        placed = expedite.expedite(
            source, [s.study_uid for s in studies], reason=f"priors of appointment {appointment.pk}"
        )
        outcomes.update(placed.outcomes)
    AppointmentPrior.objects.bulk_create(
        [
            AppointmentPrior(
                appointment=appointment, study=s, rank=n, outcome=outcomes.get(s.study_uid, "")
            )
            for n, s in enumerate(found)
        ],
        ignore_conflicts=True,
    )
    state = Appointment.State.QUEUED if found else Appointment.State.NO_PRIORS
    Appointment.objects.filter(pk=appointment.pk).update(
        state=state, processed_at=timezone.now(), detail=f"{len(found)} prior(s)"
    )
    appointment.refresh_from_db()
    publish("migration.appointments", {"id": appointment.pk, "state": appointment.state})
    return appointment


def fail_appointment(appointment_id, message):
    Appointment.objects.filter(pk=appointment_id).update(
        state=Appointment.State.FAILED, detail=message[:300], processed_at=timezone.now()
    )
    publish("migration.appointments", {"id": appointment_id, "state": "failed"})
