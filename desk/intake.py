"""Automatic tickets: the command center's listener on the event bus, and the helpers
other parts of the product call to report a problem.

`on_event` is registered in `CommandCenterConfig.ready()` with `events.subscribe_local`.
It runs after the publisher's commit, in the publishing process (a Celery worker, the
web server): `alerts.<source>` events become tickets (one open ticket per cause), or
resolve it when they say the problem is over; a health snapshot with a component down
raises a monitoring alert, and one with that component up again clears it.
"""

import logging

from core.alerts import clear_alert, raise_alert
from desk import tickets

log = logging.getLogger(__name__)

COMPONENT_LABELS = {"database": "Database", "redis": "Redis", "workers": "Celery workers"}


def on_event(topic, message):
    if topic.startswith("alerts."):
        data = message["data"]
        if data.get("recovered"):
            tickets.recover(data)
        else:
            tickets.ingest_alert(data)
    elif topic == "health":
        health_alerts(message["data"])


def health_alerts(snapshot):
    """One monitoring alert per component down (the same component updates one ticket);
    a component up again clears the alert of its open ticket."""
    components = snapshot.get("components", {})
    up = {f"health.{name}.down": part for name, part in components.items() if part.get("ok")}
    for cause in tickets.open_causes(up):
        clear_alert("monitoring", cause, detail=f"health check passes ({up[cause]['detail']})")
    raised = []
    for name, part in components.items():
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


def _pacs_cause(source, operation, wave_id):
    scope = f".wave-{wave_id}" if wave_id is not None else ""
    return f"migration.pacs_failed.{source.pk}.{operation}{scope}"


def pacs_unreachable(source, operation, error, wave_id=None):
    """What the migration engine raises when a legacy PACS fails an operation (C-FIND,
    C-GET, C-MOVE): one ticket per PACS and operation (per wave, when given), however
    many studies fail the same way. Carries no PHI: the PACS name and the error only."""
    links = {"wave": wave_id} if wave_id is not None else {}
    return raise_alert(
        "migration",
        _pacs_cause(source, operation, wave_id),
        f"{operation} against legacy PACS {source.name} fails",
        category="missing/incorrect images",
        impact="high",
        urgency="high",
        detail=str(error)[:1000],
        links=links,
    )


def pacs_reachable(source, operation, wave_id=None):
    """The operation works again: the open ticket of its failure, if any, is resolved."""
    cause = _pacs_cause(source, operation, wave_id)
    if tickets.open_causes([cause]):
        clear_alert("migration", cause, detail=f"{operation} against {source.name} succeeds")


def check_migration_source(source, wave_id=None):
    """Before (and while) migrating from `source`: a study-level C-FIND must succeed.

    A failure (PACS down, association rejected, failure status) raises the migration
    alert above, so repeated failures count on one ticket; a success resolves that
    ticket. Returns True when reachable.
    """
    from dicomnet import scu as dicomnet

    try:
        dicomnet.find(
            source.host,
            source.port,
            source.ae_title,
            dicomnet.study_query(),
            calling_aet=source.calling_ae_title,
        )
    except dicomnet.FindTruncatedError:
        pass  # a capped PACS still answers
    except (dicomnet.DicomNetError, OSError) as exc:
        log.warning("legacy PACS %s failed C-FIND: %s", source.pk, exc)
        pacs_unreachable(source, "C-FIND", exc, wave_id)
        return False
    pacs_reachable(source, "C-FIND", wave_id)
    return True
