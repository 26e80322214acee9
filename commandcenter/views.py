import logging

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from commandcenter import health
from commandcenter.access import require
from commandcenter.models import HealthSample
from commandcenter.tasks import publish_health

log = logging.getLogger(__name__)


@require("view_home")
def home(request):
    """The dashboard shows the last health check; beat pushes each new one live."""
    latest = HealthSample.objects.order_by("-checked_at").first()
    if latest is None:
        _request_health_check()
    snap = None if latest is None else _snapshot_from_samples(latest.checked_at)
    return render(request, "commandcenter/home.html", {"health": snap})


@login_not_required
@never_cache
def healthz(request):
    """Machine-readable health for load balancers and monitors: no login, no PHI."""
    snap = health.snapshot()
    return JsonResponse(snap, status=200 if snap["ok"] else 503)


@require("view_board")
def board(request):
    return render(request, "commandcenter/board.html")


def _request_health_check():
    try:
        publish_health.apply_async(retry=False)
    except Exception as exc:  # the broker is down: the card says so until it is back
        log.warning("could not queue a health check: %s", exc)


def _snapshot_from_samples(checked_at):
    samples = HealthSample.objects.filter(checked_at=checked_at)
    parts = {s.component: {"ok": s.ok, "detail": s.detail, "ms": s.ms} for s in samples}
    return {
        "ok": all(p["ok"] for p in parts.values()),
        "checked_at": checked_at.isoformat(),
        "components": parts,
    }
