"""The seam through which any part of the product raises a problem for the command center.

Callers (the migration engine, validation, monitors, clinician feedback) call
`raise_alert(...)`; it publishes one `alerts.<source>` event after commit. The command
center listens (`core.events.subscribe_local`) and opens or updates one
ticket per `cause`, counting occurrences. Nothing here may carry PHI: use ledger ids
and UIDs, never patient names, patient IDs or accession numbers.
"""

from core.events import publish

SOURCES = ("migration", "validation", "monitoring", "feedback", "integration", "inventory")
LEVELS = ("high", "medium", "low")


def raise_alert(
    source,
    cause,
    title,
    *,
    category="other",
    impact="medium",
    urgency="medium",
    detail="",
    links=None,
):
    """Report a problem. `cause` is a stable key (same cause → same open ticket), e.g.
    "migration.study_failed.wave-3"; `links` maps "wave", "study", "integration",
    "training_session", "feedback" to ids."""
    if source not in SOURCES:
        raise ValueError(f"unknown alert source {source!r}")
    if impact not in LEVELS or urgency not in LEVELS:
        raise ValueError("impact and urgency are 'high', 'medium' or 'low'")
    payload = {
        "source": source,
        "cause": cause[:200],
        "title": title[:200],
        "category": category,
        "impact": impact,
        "urgency": urgency,
        "detail": detail[:4000],
        "links": dict(links or {}),
    }
    publish(f"alerts.{source}", payload)
    return payload


def clear_alert(source, cause, detail=""):
    """Report that the problem of `cause` is over; its open automatic ticket, if any, is
    resolved. Call it when a check goes from failing to passing (each call is an event)."""
    if source not in SOURCES:
        raise ValueError(f"unknown alert source {source!r}")
    payload = {"source": source, "cause": cause[:200], "recovered": True, "detail": detail[:4000]}
    publish(f"alerts.{source}", payload)
    return payload
