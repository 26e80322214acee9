"""The head of the engine's queue: studies that must be in the cloud before anything else
(a patient's priors, "Migrate now", what sync mode finds).

Urgent studies go into a managed wave per (PACS, destination, profile) whose priority is
above every bulk wave, so each stream of the PACS claims them next (`ledger.claim_next`
walks waves by priority). A study still queued in a bulk wave is *moved*: its ledger row
changes wave by one conditional UPDATE that names the states it may be in (as
`ledger.transition` does), so a worker claiming it meanwhile wins and the study is
neither lost nor run twice. Within a managed wave rows are claimed by `not_before` (then
id): each placement stamps them just before now, in the order asked, so earlier requests
go first and each request keeps its own order.

Managed waves select nothing by their criteria (an empty date range), so starting one by
hand never pulls in the whole PACS.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from inventory.models import Study
from migration.models import (
    ACTIVE_STATES,
    StudyState,
    Wave,
    WaveState,
    WaveStudy,
)

log = logging.getLogger(__name__)

URGENT, SYNC = "urgent", "sync"
PRIORITY = {URGENT: "MIGRATION_URGENT_PRIORITY", SYNC: "MIGRATION_SYNC_PRIORITY"}
WAITING = (StudyState.QUEUED, StudyState.FAILED)
NOTHING = {"date_from": date(9999, 12, 31), "date_to": date(1, 1, 1)}


@dataclass
class Placed:
    """What happened to each study asked for: outcome by Study Instance UID, and the
    ledger row each now has in the managed wave (by study id)."""

    wave: Wave | None = None
    outcomes: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)

    @property
    def queued(self):
        return [uid for uid, what in self.outcomes.items() if what in ("moved", "added")]


def expedite(source, study_uids, *, reason, actor=None):
    """Put these studies of `source` at the head of the engine's queue and dispatch.

    Outcomes per UID: moved (out of a bulk wave's queue), added, queued (already at the
    head), in_flight (a worker has it), done (verified in the cloud already),
    quarantined, no_destination, unknown (not in the inventory). Returns `Placed`."""
    placed = place(source, study_uids, kind=URGENT)
    who = getattr(actor, "pk", None) or "system"
    log.info(
        "expedite on PACS %s by %s (%s): %s",
        source.pk, who, reason[:80], _summary(placed.outcomes),
    )  # fmt: skip
    return placed


def place(source, study_uids, *, kind=URGENT, destination=None, profile=None, again=False):
    """Queue studies in the managed wave of `kind` (urgent or sync). With `again`, a
    study already done is queued once more (a top-up: only its new instances upload)."""
    uids = list(dict.fromkeys(study_uids))
    studies = {s.study_uid: s for s in Study.objects.filter(source=source, study_uid__in=uids)}
    placed = Placed(outcomes={uid: "unknown" for uid in uids if uid not in studies})
    stamp = timezone.now() - timedelta(seconds=1)
    waves = set()
    with transaction.atomic():
        for rank, uid in enumerate(u for u in uids if u in studies):
            target = _target(source, studies[uid], destination, profile)
            if target is None:
                placed.outcomes[uid] = "no_destination"
                continue
            wave = managed_wave(source, kind, *target)
            when = stamp + timedelta(microseconds=rank)
            outcome, row = _place_one(wave, studies[uid], when, again)
            placed.outcomes[uid], placed.wave = outcome, wave
            if row is not None:
                placed.rows[studies[uid].pk] = row
            if outcome in ("moved", "added"):
                waves.add(wave.pk)
        for wave_pk in waves:
            _run(wave_pk)
    if placed.wave is not None:
        placed.wave.refresh_from_db()
    if waves:
        transaction.on_commit(lambda: _dispatch(source.pk, waves))
    return placed


def managed_wave(source, kind, destination, profile):
    """The managed wave of `kind` for this PACS, destination and profile (created once)."""
    name = f"{kind}-{source.pk}-{destination.pk}-{profile.pk if profile else 0}"
    priority = int(getattr(settings, PRIORITY[kind]))
    wave = Wave.objects.filter(name=name).first()
    if wave is not None:
        return wave
    try:
        with transaction.atomic():
            return Wave.objects.create(
                name=name, source=source, destination=destination, profile=profile,
                priority=priority, **NOTHING,
            )  # fmt: skip
    except IntegrityError:
        return Wave.objects.get(name=name)


def is_managed(wave):
    return wave.name.split("-", 1)[0] in PRIORITY and wave.date_from == NOTHING["date_from"]


def _target(source, study, destination, profile):
    """(destination, profile): given, else those of the wave the study waits in or was
    last in, else the PACS's sync settings, else its latest wave's."""
    if destination is not None:
        return destination, profile
    row = (
        WaveStudy.objects.filter(study=study)
        .exclude(state=StudyState.CANCELLED)
        .select_related("wave__destination", "wave__profile")
        .order_by("-pk")
        .first()
    )
    if row is not None:
        return row.wave.destination, row.wave.profile
    sync = getattr(source, "sync", None)  # the sync app's settings for this PACS, if any
    if sync is not None:
        return sync.destination, sync.profile
    latest = Wave.objects.filter(source=source).order_by("-created_at").first()
    return (latest.destination, latest.profile) if latest else None


def _place_one(wave, study, when, again):
    rows = WaveStudy.objects.filter(study=study, wave__destination=wave.destination_id)
    mine = rows.filter(wave=wave).first()
    active = rows.filter(state__in=ACTIVE_STATES).order_by("-pk").first()
    if active is not None:
        return "in_flight", active
    if mine is not None and mine.state in WAITING:
        return "queued", mine
    waiting = rows.filter(state__in=WAITING).exclude(wave=wave).order_by("pk").first()
    if waiting is not None and mine is None:
        moved = _move(waiting, wave, when)
        return ("moved", moved) if moved else ("in_flight", WaveStudy.objects.get(pk=waiting.pk))
    if rows.filter(state=StudyState.DONE).exists() and not again:
        return "done", mine
    if rows.filter(state=StudyState.QUARANTINED).exists() and not again:
        return "quarantined", mine
    if mine is not None:
        return _requeue(mine, when)
    row, created = WaveStudy.objects.get_or_create(
        wave=wave, study=study, defaults={"not_before": when}
    )
    return ("added", row) if created else ("queued", row)


def _move(row, wave, when):
    """Move a waiting ledger row into `wave` unless a worker claimed it meanwhile. A
    queued row goes to the head; a failed one keeps its retry time (its backoff)."""
    still = WaveStudy.objects.filter(pk=row.pk, state__in=WAITING, wave=row.wave_id)
    fields = {"wave": wave, "updated_at": timezone.now()}
    moved = still.filter(state=StudyState.QUEUED).update(not_before=when, **fields)
    moved = moved or still.filter(state=StudyState.FAILED).update(**fields)
    if not moved:
        return None
    log.info("ledger %s: moved from wave %s to wave %s", row.pk, row.wave_id, wave.pk)
    return WaveStudy.objects.get(pk=row.pk)


def _requeue(row, when):
    """Our own row again: done (a top-up) or cancelled goes back to the queue."""
    from migration import ledger

    fresh = Q(state__in=[StudyState.DONE, StudyState.CANCELLED, StudyState.QUARANTINED])
    if ledger.transition(
        row.pk, StudyState.QUEUED, where=fresh, not_before=when, attempts=0,
        error_class="", last_error="",
    ):  # fmt: skip
        return "added", WaveStudy.objects.get(pk=row.pk)
    return "in_flight", row


def _run(wave_pk):
    """A managed wave runs whenever it holds work (the engine closes it when empty)."""
    Wave.objects.filter(pk=wave_pk, state__in=[WaveState.DRAFT, WaveState.DONE]).update(
        state=WaveState.RUNNING, started_at=timezone.now(), finished_at=None
    )


def restart_stalled():
    """Managed waves closed while a row was being added (a race with the engine's
    close): run them again. Beat calls this through the sync tick."""
    waves = Wave.objects.filter(
        state=WaveState.DONE, date_from=NOTHING["date_from"], ledger__state__in=WAITING
    ).distinct()
    started = []
    for wave in waves:
        _run(wave.pk)
        started.append(wave.source_id)
    for source_id in set(started):
        _dispatch(source_id, ())
    return len(started)


def _dispatch(source_id, wave_pks):
    from migration.actions import _dispatch_source, publish_progress

    for wave_pk in wave_pks:
        try:
            publish_progress(wave_pk, force=True)
        except Exception:
            log.exception("wave %s: progress event failed", wave_pk)
    _dispatch_source(source_id)


def _summary(outcomes):
    counts = {}
    for what in outcomes.values():
        counts[what] = counts.get(what, 0) + 1
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"
