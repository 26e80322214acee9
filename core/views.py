"""The home page and the machine-readable health check."""

import logging

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from core import health
from core.access import public, require
from core.models import HealthSample
from core.tasks import publish_health

log = logging.getLogger(__name__)


@require("view_home")
def home(request):
    """The dashboard shows the last health check; beat pushes each new one live."""
    latest = HealthSample.objects.order_by("-checked_at").first()
    if latest is None:
        _request_health_check()
    snap = None if latest is None else health.recorded(latest.checked_at)
    return render(request, "core/home.html", {"health": snap})


@public
@never_cache
def healthz(request):
    """Machine-readable health for load balancers and monitors: anyone sees up or down,
    a logged-in user each component; computed at most every HEALTHZ_CACHE_SECONDS."""
    snap = health.MEMO.get(settings.HEALTHZ_CACHE_SECONDS)
    body = {**health.public_view(snap), **(snap if request.user.is_authenticated else {})}
    return JsonResponse(body, status=200 if snap["ok"] else 503)


def _request_health_check():
    try:
        publish_health.apply_async(retry=False)
    except Exception as exc:  # the broker is down: the card says so until it is back
        log.warning("could not queue a health check: %s", exc)
