"""State changes of the migration app, each followed by its live event (after commit).

Views, API views, tasks and management commands call these; the ledger's own state
machine is `migration/ledger.py`, which the engine drives.
"""

import contextlib
import logging
import threading

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from core import scrub
from core.alerts import raise_alert
from core.events import publish
from inventory.models import Study
from migration import conflicts, conformance, ledger, mapping, measures
from migration.models import (
    ERROR_CLASSES,
    TERMINAL_STATES,
    WAVE_TRANSITIONS,
    Conflict,
    ConformanceRun,
    ConformanceWaiver,
    Destination,
    DestinationDesign,
    EngineControl,
    LookupTable,
    MappingProfile,
    StudyState,
    Wave,
    WaveState,
    WaveStudy,
)
from migration.storage import DestinationError, config_client, open_store
from migration.throttle import client, key

log = logging.getLogger(__name__)
PUBLISH_INTERVAL_MS = 1000


class ActionError(ValueError):
    """A request that cannot be carried out; the message says why, for people."""


# --- waves ------------------------------------------------------------------------------


def _problems(exc):
    return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())


def select_studies(source, *, date_from=None, date_to=None, modalities=(), accession_numbers=(),
                   patient_ids=()):  # fmt: skip
    """The inventory studies a wave's criteria pick (not vanished ones)."""
    studies = Study.objects.filter(source=source, vanished=False)
    if date_from:
        studies = studies.filter(study_date__gte=date_from)
    if date_to:
        studies = studies.filter(study_date__lte=date_to)
    if modalities:
        match = Q()
        for modality in modalities:
            match |= Q(modalities__regex=rf"(^|\\){modality}(\\|$)")
        studies = studies.filter(match)
    if accession_numbers or patient_ids:
        studies = studies.filter(
            Q(accession_number__in=list(accession_numbers)) | Q(patient_id__in=list(patient_ids))
        )
    return studies


def _wave_studies(wave):
    return select_studies(
        wave.source,
        date_from=wave.date_from,
        date_to=wave.date_to,
        modalities=wave.modalities,
        accession_numbers=wave.accession_numbers,
        patient_ids=wave.patient_ids,
    )


def create_wave(*, name, source, destination, user=None, **fields):
    """A new draft wave with its ledger rows. Returns (wave, {"studies", "unmatched"}):
    `unmatched` counts uploaded accession numbers / patient IDs matching no study."""
    if Wave.objects.filter(name=name).exists():
        raise ActionError(f"a wave named {name!r} already exists")
    wave = Wave(name=name, source=source, destination=destination, created_by=user, **fields)
    try:
        wave.full_clean()
    except ValidationError as exc:
        raise ActionError(_problems(exc)) from None
    with transaction.atomic():
        wave.save()
        added = materialise(wave)
    found = _wave_studies(wave).values_list("accession_number", "patient_id")
    accessions, patients = {a for a, _p in found}, {p for _a, p in found}
    unmatched = len(set(wave.accession_numbers) - accessions) + len(
        set(wave.patient_ids) - patients
    )
    publish_progress(wave.pk, force=True)
    return wave, {
        "studies": added,
        "unmatched": unmatched if (wave.accession_numbers or wave.patient_ids) else 0,
    }


def materialise(wave):
    """Add a ledger row for every selected study not yet in the wave; returns how many."""
    before = wave.ledger.count()
    WaveStudy.objects.bulk_create(
        [
            WaveStudy(wave=wave, study_id=pk)
            for pk in _wave_studies(wave).values_list("pk", flat=True)
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    return wave.ledger.count() - before


def change_wave(wave, verb, user=None):
    """start | pause | resume | cancel | finish, guarded by WAVE_TRANSITIONS."""
    if verb not in WAVE_TRANSITIONS:
        raise ActionError(f"unknown action {verb!r}")
    sources, target = WAVE_TRANSITIONS[verb]
    if verb == "start" and wave.state in sources:
        require_conformance(wave, user)
    now = timezone.now()
    fields = {"state": target}
    if verb == "start":
        fields.update(started_at=now, finished_at=None)
    if verb in ("finish", "cancel"):
        fields["finished_at"] = now
    with transaction.atomic():
        before = Wave.objects.filter(pk=wave.pk).values_list("state", flat=True).first()
        if not Wave.objects.filter(pk=wave.pk, state__in=sources).update(**fields):
            wave.refresh_from_db()
            raise ActionError(
                f"cannot {verb} wave {wave.name}: it is {wave.get_state_display().lower()}"
            )
        _after_change(wave, verb)
        wave.refresh_from_db()
        _audit(wave, {"state": [before, wave.state]}, user)
    log.info("wave %s: %s by %s", wave.pk, verb, getattr(user, "pk", "system"))
    publish_progress(wave.pk, force=True)
    if verb in ("start", "resume"):
        transaction.on_commit(lambda: _dispatch_source(wave.source_id))
    return wave


def _audit(instance, changes, user):
    """The guarded UPDATE bypasses model signals, so record the change for the audit log.

    The content type is read, not taken from ContentType's per-process cache: a
    long-lived worker must not write an id that a database flush has since replaced."""
    meta = instance._meta
    content_type = ContentType.objects.filter(app_label=meta.app_label, model=meta.model_name)
    LogEntry.objects.log_create(
        instance,
        content_type=content_type.get(),
        action=LogEntry.Action.UPDATE,
        changes=changes,
        actor=user if getattr(user, "is_authenticated", False) else None,
    )


def _after_change(wave, verb):
    if verb == "start":
        materialise(wave)
        wave.ledger.filter(state=StudyState.CANCELLED).update(
            state=StudyState.QUEUED, not_before=None
        )
    elif verb == "cancel":
        wave.ledger.filter(state__in=[StudyState.QUEUED, StudyState.FAILED]).update(
            state=StudyState.CANCELLED, updated_at=timezone.now()
        )


def _dispatch_source(source_id):
    from inventory.models import PacsSource
    from migration import dispatch

    try:
        dispatch.dispatch(PacsSource.objects.get(pk=source_id))
    except Exception as exc:  # the broker is down: beat's tick will catch up
        log.warning("could not dispatch PACS %s: %s", source_id, exc)


def retry_quarantined(wave):
    """A person looked at the quarantined studies: queue them again with fresh attempts."""
    ids = list(wave.ledger.filter(state=StudyState.QUARANTINED).values_list("pk", flat=True))
    moved = sum(
        ledger.transition(pk, StudyState.QUEUED, attempts=0, not_before=None, error_class="")
        for pk in ids
    )
    publish_progress(wave.pk, force=True)
    if wave.state == WaveState.RUNNING:
        transaction.on_commit(lambda: _dispatch_source(wave.source_id))
    return moved


def close_finished_waves(source_id):
    """Running waves of this PACS with nothing left to do become done."""
    for wave in Wave.objects.filter(source_id=source_id, state=WaveState.RUNNING):
        if not wave.ledger.exclude(state__in=TERMINAL_STATES).exists():
            with contextlib.suppress(ActionError):
                change_wave(wave, "finish")


# --- what the engine reports ------------------------------------------------------------


def study_finished(ledger_id, state):
    """After a study run: progress event, alert on failure, wave closed when complete."""
    row = WaveStudy.objects.select_related("wave").get(pk=ledger_id)
    if row.state in (StudyState.FAILED, StudyState.QUARANTINED):
        _alert(row)
        publish(
            f"migration.wave.{row.wave_id}.failure",
            {
                "ledger": row.pk,
                "state": row.state,
                "error_class": row.error_class,
                "error": row.last_error[:300],
            },
        )
    close_finished_waves(row.wave.source_id)
    publish_progress(row.wave_id)
    from migration import discrepancies

    discrepancies.study_finished(row)


def _alert(row):
    label, _retry, category = ERROR_CLASSES.get(row.error_class, ("Error", True, "performance"))
    final = row.state == StudyState.QUARANTINED
    what = "quarantined" if final else "failing"
    raise_alert(
        "migration",
        cause=f"migration.{row.state}.wave-{row.wave_id}.{row.error_class or 'error'}",
        title=f"Wave {row.wave.name}: studies {what} ({label.lower()})",
        category=category,
        impact="high" if final else "medium",
        urgency="medium" if final else "low",
        detail=f"ledger {row.pk}, study {row.study_id}, attempt {row.attempts}: "
        f"{row.last_error[:1000]}",
        links={"wave": row.wave_id, "study": row.study_id},
    )


def publish_progress(wave_id, force=False):
    """Push the wave's progress to its page and the overview, once a second at most (a
    render costs the engine's worker ~25 ms of CPU); a skipped update is sent shortly
    after, so the last state always arrives."""
    if not force and not client().set(key("pub", wave_id), 1, nx=True, px=PUBLISH_INTERVAL_MS):
        if client().set(key("pub-trailing", wave_id), 1, nx=True, px=PUBLISH_INTERVAL_MS * 2):
            timer = threading.Timer(PUBLISH_INTERVAL_MS / 1000, _trailing, args=(wave_id,))
            timer.daemon = True
            timer.start()
        return False
    wave = Wave.objects.select_related("source", "destination").filter(pk=wave_id).first()
    if wave is None:  # deleted meanwhile: nothing to show
        return False
    status = measures.wave_status(wave)
    html = render_to_string("migration/_progress.html", progress_context(wave, status))
    payload = {k: v for k, v in status.items() if k != "per_minute"}
    publish(f"migration.wave.{wave_id}", payload, html=html)
    publish(
        "migration.waves", {k: payload[k] for k in ("id", "state", "percent", "counts", "total")}
    )
    return True


def _trailing(wave_id):
    try:
        publish_progress(wave_id, force=True)
    except Exception:
        log.exception("wave %s: trailing progress event failed", wave_id)
    finally:
        connection.close()


def progress_context(wave, status=None):
    from migration import charts

    status = status or measures.wave_status(wave)
    return {
        "wave": wave,
        "status": status,
        "slowest": measures.slowest_studies(wave),
        "failures": measures.recent_failures(wave),
        "throughput_chart": charts.throughput(status["per_minute"]),
    }


# --- destinations, profiles, tables, conflicts, the pause button ------------------------


def add_destination(**fields):
    """A new destination; an S3 one starts with the recommended design (encryption,
    versioning, public access blocked, TLS-only policy), which its owners then adjust."""
    destination = Destination(**fields)
    try:
        destination.full_clean()
    except ValidationError as exc:
        raise ActionError(_problems(exc)) from None
    with transaction.atomic():
        destination.save()
        if destination.kind == Destination.Kind.S3:
            recommended = {**conformance.RECOMMENDED_S3, "region": destination.region}
            if destination.sse:
                recommended.update(encryption=destination.sse, kms_key_id=destination.kms_key_id)
            DestinationDesign.objects.create(destination=destination, **recommended)
    publish("migration.destinations", {"id": destination.pk, "name": destination.name})
    return destination


def queue_destination_check(destination):
    """Ask a worker to check the destination (the web process never connects to it);
    the result arrives as the `migration.destination.<id>` event and on the row."""
    from migration import tasks

    transaction.on_commit(lambda: tasks.enqueue_destination_check(destination.pk))
    return {"queued": True, "id": destination.pk}


def check_destination(destination):
    """Write, read back and delete a probe; the result is kept on the destination."""
    try:
        result = open_store(destination).check()
    except DestinationError as exc:  # e.g. refused by the egress policy
        result = {"ok": False, "detail": str(exc)[:300], "ms": None}
    except Exception as exc:
        result = {"ok": False, "detail": scrub.exception_text(exc)[:300], "ms": None}
    Destination.objects.filter(pk=destination.pk).update(
        last_check_ok=result["ok"],
        last_check_at=timezone.now(),
        last_check_detail=result["detail"],
        last_check_ms=result["ms"],
    )
    destination.refresh_from_db()
    html = render_to_string("migration/_check_result.html", {"d": destination})
    publish("migration.destinations", {"id": destination.pk, "check": result})
    publish(f"migration.destination.{destination.pk}", {"check": result}, html=html)
    return result


def save_profile(*, name, rules, description="", profile=None):
    """Create or update a mapping profile; ActionError lists every invalid rule."""
    tables = LookupTable.objects.values_list("name", flat=True)
    problems = mapping.validate_rules(rules, tables)
    if problems:
        raise ActionError("; ".join(problems))
    profile = profile or MappingProfile(name=name)
    profile.name, profile.rules, profile.description = name, rules, description
    profile.save()
    return profile


def import_lookup_table(*, name, entries=None, text=None, description=""):
    """Create or replace a lookup table from {old: new} or from CSV text."""
    if entries is None:
        try:
            entries = mapping.parse_lookup_csv(text or "")
        except ValueError as exc:
            raise ActionError(str(exc)) from exc
    table, _created = LookupTable.objects.update_or_create(
        name=name, defaults={"entries": entries, "description": description}
    )
    return table


def decide_conflict(conflict, decision, user, note=""):
    """Record a person's decision; "use the second copy" is applied first (objects,
    manifest and record swapped, audited), so a decision that failed is not recorded."""
    if decision not in Conflict.Decision.values or not decision:
        raise ActionError(f"unknown decision {decision!r}")
    if decision == Conflict.Decision.USE_SECOND and conflict.decision != decision:
        try:
            changes = conflicts.use_second(conflict)
        except conflicts.ConflictError as exc:
            raise ActionError(f"cannot use the second copy of {conflict.sop_uid}: {exc}") from exc
        _audit(conflict, changes, user)
    conflict.decision, conflict.decided_by, conflict.note = decision, user, note[:500]
    conflict.decided_at = timezone.now()
    conflict.save(update_fields=["decision", "decided_by", "decided_at", "note"])
    publish("migration.conflicts", {"id": conflict.pk, "decision": decision})
    return conflict


def set_paused(paused, user=None, reason=""):
    """The global pause: no new study starts on any PACS until resumed."""
    control = EngineControl.get()
    control.paused, control.reason = bool(paused), reason[:200]
    control.changed_by, control.changed_at = user, timezone.now()
    control.save()
    publish("migration.control", {"paused": control.paused, "reason": control.reason})
    if not control.paused:
        transaction.on_commit(_tick_now)
    return control


def set_latency_bound(bound_ms, user=None):
    control = EngineControl.get()
    control.latency_bound_ms = bound_ms
    control.changed_by, control.changed_at = user, timezone.now()
    control.save()
    return control


def _tick_now():
    from migration.tasks import enqueue_tick

    try:
        enqueue_tick()
    except Exception as exc:
        log.warning("could not queue a migration tick: %s", exc)


# --- the destination's design and its conformance ---------------------------------------

DESIGN_FIELDS = [
    f.name
    for f in DestinationDesign._meta.get_fields()
    if f.concrete and f.name not in ("id", "destination", "updated_at", "updated_by")
]


def design_values(design):
    return {name: getattr(design, name) for name in DESIGN_FIELDS}


def save_design(destination, user=None, **fields):
    """Create or change a destination's design (audited by auditlog, like every model)."""
    unknown = set(fields) - set(DESIGN_FIELDS)
    if unknown:
        raise ActionError(f"unknown design fields: {', '.join(sorted(unknown))}")
    design = DestinationDesign.objects.filter(destination=destination).first()
    design = design or DestinationDesign(destination=destination)
    for name, value in fields.items():
        setattr(design, name, value)
    design.updated_by = user if getattr(user, "is_authenticated", False) else None
    if design.encryption != "aws:kms" and design.kms_key_id:
        raise ActionError("kms_key_id: a named key needs SSE-KMS encryption")
    if not isinstance(design.required_tags, dict):
        raise ActionError('required_tags: an object of {"key": "value"}')
    design.save()
    publish("migration.destinations", {"id": destination.pk, "design": True})
    return design


def read_store(destination):
    """What the destination's own endpoint says about its configuration."""
    if destination.kind == Destination.Kind.S3:
        return conformance.read_s3(config_client(destination), destination.bucket)
    if destination.kind == Destination.Kind.DICOMWEB:
        return conformance.read_dicomweb(destination.url)
    return {}


def check_conformance(destination, trigger="on demand", user=None):
    """Compare the store with its design and keep the result; a failure raises a ticket
    (one per destination), a pass clears it. Returns the ConformanceRun."""
    design = DestinationDesign.objects.filter(destination=destination).first()
    requirements, error = [], ""
    if design is None:
        error = "no design recorded for this destination: nothing to check against"
    else:
        try:
            answers = read_store(destination)
        except DestinationError as exc:
            answers, error = {}, str(exc)[:500]
        requirements = conformance.compare(destination.kind, design_values(design), answers)
        if not requirements and not error:
            error = "the design names no requirement that applies to this destination"
    run = ConformanceRun.objects.create(
        destination=destination, trigger=trigger[:20], requirements=requirements,
        conforms=conformance.verdict(requirements) and not error, error=error,
        checked_by=user if getattr(user, "is_authenticated", False) else None,
    )  # fmt: skip
    _conformance_alert(destination, run)
    publish("migration.conformance", {"destination": destination.pk, "conforms": run.conforms})
    return run


def _conformance_alert(destination, run):
    from core.alerts import clear_alert

    cause = f"migration.conformance.destination-{destination.pk}"
    if run.conforms:
        clear_alert("migration", cause, detail=f"conformance run {run.pk} passed")
        return
    failed = [r["name"] for r in run.requirements if not r["ok"]] or [run.error]
    raise_alert(
        "migration",
        cause=cause,
        title=f"Destination {destination.name} does not conform to its design",
        category="performance",
        impact="high",
        urgency="medium",
        detail=f"conformance run {run.pk} ({run.trigger}): failed {', '.join(failed)}",
        links={},
    )


def failed_names(run):
    return ", ".join(r["name"] for r in run.requirements if not r["ok"]) or run.error


def require_conformance(wave, user=None):
    """Before a wave starts: a destination with a design must conform to it, unless a lead
    recorded a waiver for this wave. Raises ActionError saying what failed."""
    if not DestinationDesign.objects.filter(destination_id=wave.destination_id).exists():
        return None
    run = check_conformance(wave.destination, trigger="wave start", user=user)
    if run.conforms:
        return run
    waiver = wave.conformance_waivers.first()
    if waiver is not None:
        log.info("wave %s starts under conformance waiver %s", wave.pk, waiver.pk)
        return run
    raise ActionError(
        f"cannot start wave {wave.name}: destination {wave.destination.name} does not conform "
        f"to its design ({failed_names(run)}); a lead may record a waiver with a reason"
    )


def waive_conformance(wave, user, reason):
    """A lead lets this wave start against a non-conforming destination, saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise ActionError("a waiver needs a reason")
    waiver = ConformanceWaiver.objects.create(wave=wave, reason=reason[:500], granted_by=user)
    publish(f"migration.wave.{wave.pk}.waiver", {"wave": wave.pk, "waiver": waiver.pk})
    return waiver
