"""State changes of the command center, each followed by its live event."""

from django.template.loader import render_to_string

from core import health
from core.events import publish
from core.models import HealthSample


def record_health():
    """Check every component, keep the samples, and push the result to every home page."""
    snap = health.snapshot()
    checked_at = snap["checked_at"]
    HealthSample.objects.bulk_create(
        HealthSample(
            component=name,
            ok=part["ok"],
            detail=part["detail"][:300],
            ms=part["ms"],
            checked_at=checked_at,
        )
        for name, part in snap["components"].items()
    )
    html = render_to_string("core/_health_card.html", {"health": snap})
    publish("health", snap, html=html)
    return snap
