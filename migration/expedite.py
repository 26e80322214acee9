"""Put studies at the head of the engine's queue and dispatch (a minimal version: the
sync work of issue 18 brings the full one with this signature).

A study goes into its PACS's expedite wave, which runs above every other wave of the
PACS and whose criteria select nothing (its studies are added one by one); a row of the
study still waiting in another wave is cancelled, so that it runs once.
"""

import logging
from datetime import date

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from inventory.models import Study
from migration import actions, ledger
from migration.models import ACTIVE_STATES, StudyState, Wave, WaveState, WaveStudy

log = logging.getLogger(__name__)
WAITING = (StudyState.QUEUED, StudyState.FAILED)
NOTHING = date(9999, 12, 31)  # a date_from no study has: the wave's criteria select none


def expedite(source, study_uids, *, reason, actor=None):
    """Returns {study_uid: what was done} ("moved to the head of wave W", "already
    running", "already in the cloud", "not in the inventory")."""
    done = {}
    with transaction.atomic():
        for uid in study_uids:
            study = Study.objects.filter(source=source, study_uid=uid).first()
            done[uid] = _expedite_one(source, study) if study else "not in the inventory"
    log.info("expedited %d studies of PACS %s (%s)", len(done), source.pk, reason[:80])
    transaction.on_commit(lambda: actions._dispatch_source(source.pk))
    return done


def _expedite_one(source, study):
    rows = WaveStudy.objects.filter(study=study).select_related("wave").order_by("-pk")
    if any(r.state in (*ACTIVE_STATES, StudyState.DONE) for r in rows):
        return "already running or in the cloud"
    destination = next((r.wave.destination for r in rows), None) or _latest_destination(source)
    if destination is None:
        return "no destination: the PACS has no wave yet"
    for row in rows:
        if row.state in WAITING:
            ledger.transition(row.pk, StudyState.CANCELLED, last_error="expedited")
    wave = _expedite_wave(source, destination)
    WaveStudy.objects.update_or_create(
        wave=wave,
        study=study,
        defaults={"state": StudyState.QUEUED, "not_before": None, "attempts": 0},
    )
    return f"moved to the head of wave {wave.name}"


def _latest_destination(source):
    wave = Wave.objects.filter(source=source).order_by("-pk").first()
    return wave.destination if wave else None


def _expedite_wave(source, destination):
    others = Wave.objects.filter(source=source).exclude(name=f"expedite-{source.name}"[:60])
    top = others.aggregate(top=Max("priority"))["top"] or 0
    wave, _new = Wave.objects.get_or_create(
        name=f"expedite-{source.name}"[:60],
        defaults={"source": source, "destination": destination, "date_from": NOTHING},
    )
    Wave.objects.filter(pk=wave.pk).update(
        priority=max(wave.priority, top + 1),
        state=WaveState.RUNNING,
        started_at=wave.started_at or timezone.now(),
        finished_at=None,
    )
    wave.refresh_from_db()
    return wave
