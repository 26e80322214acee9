"""Pages of the cloud side's design: a destination's design (editable by engineers and
project managers, audited), its conformance checks, the printable design record, and a
lead's waiver letting one wave start against a non-conforming destination."""

from auditlog.models import LogEntry
from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from core.access import has_rule, require
from migration import actions
from migration.forms import DesignForm, WaiverForm
from migration.models import ConformanceRun, Destination, DestinationDesign, Wave


def _context(destination, form=None, run=None):
    design = DestinationDesign.objects.filter(destination=destination).first()
    return {
        "destination": destination,
        "design": design,
        "form": form or DesignForm(instance=design),
        "run": run or ConformanceRun.objects.filter(destination=destination).first(),
        "history": _history(design),
        "waves": destination.waves.order_by("name"),
    }


def _history(design, limit=10):
    if design is None:
        return []
    kind = ContentType.objects.get_for_model(DestinationDesign)
    entries = LogEntry.objects.filter(content_type=kind, object_pk=str(design.pk))
    return list(entries.select_related("actor").order_by("-timestamp")[:limit])


@require("view_design")
def design(request, name):
    destination = get_object_or_404(Destination, name=name)
    if request.method == "POST":
        return _save(request, destination)
    return render(request, "migration/design.html", _context(destination))


def _save(request, destination):
    if not has_rule(request.user, "edit_design"):
        raise PermissionDenied("This page needs the 'edit_design' permission.")
    current = DestinationDesign.objects.filter(destination=destination).first()
    form = DesignForm(request.POST, instance=current)
    if form.is_valid():
        fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
        try:
            actions.save_design(destination, request.user, **fields)
        except actions.ActionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Design of {destination.name} saved.")
            return redirect("migration:design", name=destination.name)
    return render(request, "migration/design.html", _context(destination, form), status=400)


@require("edit_design")
@require_POST
def conform(request, name):
    """Run the conformance check now; htmx gets the result table, others a redirect."""
    destination = get_object_or_404(Destination, name=name)
    run = actions.check_conformance(destination, user=request.user)
    if request.htmx:
        return render(
            request, "migration/_conformance.html", {"run": run, "destination": destination}
        )
    (messages.success if run.conforms else messages.error)(
        request, f"{name}: {'conforms' if run.conforms else 'does not conform'} to its design."
    )
    return redirect("migration:design", name=name)


@require("view_design")
def design_print(request, name):
    """The design record for the steering committee: requirements, last check, sign-off."""
    destination = get_object_or_404(Destination, name=name)
    return render(request, "migration/design_print.html", _context(destination))


@require("waive_conformance")
@require_POST
def waive(request, name):
    wave = get_object_or_404(Wave, name=name)
    form = WaiverForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A waiver needs a reason.")
        return redirect("migration:wave", name=name)
    try:
        actions.waive_conformance(wave, request.user, form.cleaned_data["reason"])
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Waiver recorded: wave {name} may start against its destination."
        )
    return redirect("migration:wave", name=name)


urlpatterns = [
    path("destinations/<slug:name>/design/", design, name="design"),
    path("destinations/<slug:name>/design/print/", design_print, name="design_print"),
    path("destinations/<slug:name>/conform/", conform, name="conform"),
    path("waves/<slug:name>/waiver/", waive, name="wave_waiver"),
]
