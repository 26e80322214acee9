"""Pages of the hybrid period: sync mode with its live lag panels, and the upcoming
appointments with their priors' readiness. Thin views over `sync.actions`."""

from datetime import timedelta

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.access import has_rule, require
from core.audit import record_phi_access
from inventory.models import PacsSource
from migration.models import Destination
from sync import actions, readiness
from sync.models import SyncSource

UPCOMING_SHOWN = 200


@require("view_migration")
def index(request):
    actions.settle()
    panels = [actions.panel_context(s) for s in SyncSource.objects.select_related("source")]
    context = {
        "panels": panels,
        "unsynced": PacsSource.objects.filter(sync__isnull=True),
        "destinations": Destination.objects.all(),
    }
    return render(request, "sync/index.html", context)


@require("manage_sync")
@require_POST
def toggle(request, name):
    source = get_object_or_404(PacsSource, name=name)
    destination = Destination.objects.filter(name=request.POST.get("destination", "")).first()
    try:
        every = float(request.POST["every"]) if request.POST.get("every") else None
        actions.configure(
            source, enabled=request.POST.get("enabled") == "1", every_minutes=every,
            destination=destination, user=request.user,
        )  # fmt: skip
    except (ValueError, actions.SyncError) as exc:
        messages.error(request, str(exc) or "The interval is a number of minutes.")
    return redirect("sync:index")


@require("view_migration")
def appointments(request):
    """Upcoming appointments (from an hour ago on) and whether their priors are in the
    cloud; the patient's identifier only for roles with `view_phi` (recorded)."""
    rows = readiness.upcoming(timezone.now() - timedelta(hours=1), UPCOMING_SHOWN)
    show_phi = has_rule(request.user, "view_phi")
    if show_phi and rows:
        record_phi_access(request, "sync.appointment", count=len(rows))
    context = {"rows": rows, "show_phi": show_phi}
    template = "sync/_appointments.html" if request.GET.get("part") else "sync/appointments.html"
    return render(request, template, context)
