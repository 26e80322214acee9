"""What follows a study run: the one owner of "a study finished".

The engine (`engine.migrate_study`) verifies what it stored and records the outcome on
the ledger row; then `study_finished` runs, whoever ran the study (a stream of
`dispatch`, or `dispatch.tick` for a study a dead worker left): a failure raises its
alert and event, a re-migrated study is validated again by a task, the waves of its PACS
with nothing left to do close, and the wave's progress is pushed.
"""

import contextlib
import logging

from django.db import transaction

from core.alerts import raise_alert
from core.events import publish
from migration import actions
from migration.enqueue import enqueue_revalidation
from migration.models import (
    ERROR_CLASSES,
    TERMINAL_STATES,
    Discrepancy,
    StudyState,
    Wave,
    WaveState,
    WaveStudy,
)

log = logging.getLogger(__name__)


def study_finished(ledger_id, state):
    """After a study run (`state` is its outcome, None when a dead worker left it)."""
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
    actions.publish_progress(row.wave_id)
    _revalidate_if_remigrated(row)


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


def close_finished_waves(source_id):
    """Running waves of this PACS with nothing left to do become done."""
    for wave in Wave.objects.filter(source_id=source_id, state=WaveState.RUNNING):
        if not wave.ledger.exclude(state__in=TERMINAL_STATES).exists():
            with contextlib.suppress(actions.ActionError):
                actions.change_wave(wave, "finish")


def _revalidate_if_remigrated(row):
    """A re-migrated study that reached a final state is validated again by a task (not
    here: this worker holds a PACS slot)."""
    if row.state not in (StudyState.DONE, StudyState.QUARANTINED):
        return
    if row.discrepancies.filter(status=Discrepancy.Status.REMIGRATING).exists():
        transaction.on_commit(lambda: _enqueue_revalidation(row.pk))


def _enqueue_revalidation(ledger_id):
    try:
        enqueue_revalidation(ledger_id)
    except Exception as exc:
        log.warning("ledger %s: could not queue its re-validation: %s", ledger_id, exc)
