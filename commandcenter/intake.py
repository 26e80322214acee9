"""Automatic tickets: the command center's listener on the event bus, and the helpers
other parts of the product call to report a problem.

`on_event` is registered in `CommandCenterConfig.ready()` with `events.subscribe_local`.
It runs after the publisher's commit, in the publishing process (a Celery worker, the
web server): `alerts.<source>` events become tickets (one open ticket per cause), and a
health snapshot with a component down raises a monitoring alert.
"""

import logging

from commandcenter import tickets
from commandcenter.alerts import raise_alert

log = logging.getLogger(__name__)

COMPONENT_LABELS = {"database": "Database", "redis": "Redis", "workers": "Celery workers"}


def on_event(topic, message):
    if topic.startswith("alerts."):
        tickets.ingest_alert(message["data"])
    elif topic == "health":
        health_alerts(message["data"])


def health_alerts(snapshot):
    """One monitoring alert per component down (the same component updates one ticket)."""
    raised = []
    for name, part in snapshot.get("components", {}).items():
        if part.get("ok"):
            continue
        label = COMPONENT_LABELS.get(name, name)
        raised.append(
            raise_alert(
                "monitoring",
                f"health.{name}.down",
                f"{label} is down",
                category="performance",
                impact="high",
                urgency="high",
                detail=f"Health check: {part.get('detail', '')}",
            )
        )
    return raised


def pacs_unreachable(source, operation, error, wave_id=None):
    """What the migration engine raises when a legacy PACS fails an operation (C-FIND,
    C-GET, C-MOVE): one ticket per PACS and operation (per wave, when given), however
    many studies fail the same way. Carries no PHI: the PACS name and the error only."""
    scope = f".wave-{wave_id}" if wave_id is not None else ""
    links = {"wave": wave_id} if wave_id is not None else {}
    return raise_alert(
        "migration",
        f"migration.pacs_failed.{source.pk}.{operation}{scope}",
        f"{operation} against legacy PACS {source.name} fails",
        category="missing/incorrect images",
        impact="high",
        urgency="high",
        detail=str(error)[:1000],
        links=links,
    )


def check_migration_source(source, wave_id=None):
    """Before (and while) migrating from `source`: a study-level C-FIND must succeed.

    A failure (PACS down, association rejected, failure status) raises the migration
    alert above, so repeated failures count on one ticket. Returns True when reachable.
    """
    from commandcenter.services import dicomnet

    try:
        dicomnet.find(
            source.host,
            source.port,
            source.ae_title,
            dicomnet.study_query(),
            calling_aet=source.calling_ae_title,
        )
    except dicomnet.FindTruncatedError:
        return True  # a capped PACS still answers
    except (dicomnet.DicomNetError, OSError) as exc:
        log.warning("legacy PACS %s failed C-FIND: %s", source.pk, exc)
        pacs_unreachable(source, "C-FIND", exc, wave_id)
        return False
    return True
