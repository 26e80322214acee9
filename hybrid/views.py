"""Pages of the hybrid period: the study locator and the bridges (thin views).

The locator answers a GET for a Study UID (`?study=`) and a POST for an accession number
or a patient ID (no patient data in URLs); a patient-ID search is recorded, and so is
every answer that shows patient data (only to `view_phi`).
"""

from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.access import has_rule, require
from cutover.models import Stage
from hybrid import actions, api, locate, routing
from hybrid.models import Bridge, Forward, RoundTrip
from inventory.models import Study

SEARCH_LABELS = {"accession": "Accession number", "patient_id": "Patient ID", "study": "Study UID"}


@require("view_migration")
def locate_page(request):
    key, value = "study", request.GET.get("study", "")
    if request.method == "POST":
        key, value = request.POST.get("key", ""), request.POST.get("value", "")
    context = {"labels": SEARCH_LABELS, "key": key if key in SEARCH_LABELS else "accession"}
    if value:
        try:
            context["found"] = api.answer(request, key, value)
            context["searched"] = True
            context["value"] = value if key == "study" else ""
        except locate.LocateError as exc:
            context["error"] = str(exc)
    return render(request, "hybrid/locate.html", context)


def _card(request, study, **extra):
    (found,) = locate.describe([study])
    context = {"s": found, "study": study, **extra}
    return render(request, "hybrid/_study.html", context)


@require("view_migration")
def study_card(request, pk):
    """One study's card, re-read when its wave reports progress (no patient data)."""
    return _card(request, get_object_or_404(Study.objects.select_related("source"), pk=pk))


@require("view_migration")
@require_POST
def live_find(request, pk):
    study = get_object_or_404(Study.objects.select_related("source"), pk=pk)
    result = locate.live_find(study.source, study.study_uid)
    return render(request, "hybrid/_live_find.html", {"live": result, "study": study})


@require("expedite_studies")
@require_POST
def migrate_now(request, pk):
    study = get_object_or_404(Study.objects.select_related("source"), pk=pk)
    outcome = actions.migrate_now(study, request.user)
    return _card(request, study, outcome=outcome)


# --- bridges ------------------------------------------------------------------------------


@require("view_migration")
def bridges(request):
    rows = [
        {"bridge": b, "route": routing.route(b), "last": b.round_trips.first()}
        for b in Bridge.objects.select_related("source", "destination")
    ]
    return render(request, "hybrid/bridges.html", {"rows": rows})


@require("view_migration")
def bridge_detail(request, name):
    bridge = get_object_or_404(Bridge.objects.select_related("source", "destination"), name=name)
    stages = Stage.objects.filter(
        kind="verify", plan__integration__source=bridge.source
    ).select_related("plan__integration")
    context = {
        "bridge": bridge,
        "route": routing.route(bridge),
        "forwards": bridge.forwards.all()[:100],
        "trips": bridge.round_trips.all()[:50],
        "stages": stages if has_rule(request.user, "edit_roadmap") else [],
    }
    return render(request, "hybrid/bridge.html", context)


@require("operate_migration")
@require_POST
def bridge_probe(request, name):
    bridge = get_object_or_404(Bridge, name=name)
    actions.start_round_trip(bridge, request.user)
    return redirect("hybrid:bridge", name=bridge.name)


@require("operate_migration")
@require_POST
def forward_retry(request, pk):
    row = get_object_or_404(Forward.objects.select_related("bridge"), pk=pk)
    try:
        actions.retry_forward(row)
    except actions.HybridError as exc:
        return HttpResponseBadRequest(str(exc))
    return redirect("hybrid:bridge", name=row.bridge.name)


@require("edit_roadmap")
@require_POST
def round_trip_sign(request, pk):
    trip = get_object_or_404(RoundTrip.objects.select_related("bridge"), pk=pk)
    stage_id = request.POST.get("stage", "")
    if not stage_id.isdigit():
        return HttpResponseBadRequest("choose a cutover stage")
    stage = get_object_or_404(Stage.objects.select_related("plan__integration"), pk=stage_id)
    try:
        actions.sign_from_round_trip(stage, trip, request.user)
    except actions.HybridError as exc:
        return HttpResponseBadRequest(str(exc))
    return redirect("cutover:plan", pk=stage.plan_id)
