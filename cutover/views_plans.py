"""Integration cutover plans, viewer validation and the go/no-go screen: thin views."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.access import require
from core.audit import phi_response
from cutover import actions, readiness
from cutover.forms import (
    CaseResultForm,
    CloudViewerForm,
    EvidenceForm,
    ItemForm,
    ProbeForm,
    ThresholdForm,
)
from cutover.models import (
    ChecklistItem,
    CloudViewer,
    CutoverPlan,
    Probe,
    Stage,
    ViewerTestCase,
)


def _say(request, exc):
    messages.error(request, "; ".join(getattr(exc, "messages", [str(exc)])))


@require("view_roadmap")
def plans(request):
    from inventory.models import Integration

    integrations = Integration.objects.select_related("cutover_plan").annotate(
        open_gates=Count(
            "cutover_plan__stages", filter=Q(cutover_plan__stages__gate_opened_at__isnull=False)
        ),
        stage_count=Count("cutover_plan__stages"),
    )
    return render(request, "cutover/plans.html", {"integrations": integrations})


@require("edit_roadmap")
@require_POST
def plan_create(request, integration_pk):
    from inventory.models import Integration

    integration = get_object_or_404(Integration, pk=integration_pk)
    plan = getattr(integration, "cutover_plan", None) or actions.create_plan(
        integration, request.user
    )
    return redirect("cutover:plan", plan.pk)


def _plan_context(plan):
    stages = plan.stages.prefetch_related("items__signed_by").select_related("gate_opened_by")
    rows = [{"stage": s, "blockers": actions.gate_blockers(s)} for s in stages]
    probes = [(p, p.results.all()[:10]) for p in plan.probes.all()]
    return {"plan": plan, "stages": rows, "probes": probes, "item_form": ItemForm()}


@require("view_roadmap")
def plan_detail(request, pk):
    plan = get_object_or_404(CutoverPlan.objects.select_related("integration"), pk=pk)
    context = _plan_context(plan)
    context["probe_form"] = ProbeForm()
    return render(request, "cutover/plan.html", context)


@require("view_roadmap")
def plan_body(request, pk):
    """The stages and probes part of the plan page, re-fetched when the plan's topic fires."""
    plan = get_object_or_404(CutoverPlan.objects.select_related("integration"), pk=pk)
    return render(request, "cutover/_plan_body.html", _plan_context(plan))


@require("edit_roadmap")
@require_POST
def item_add(request, stage_pk):
    stage = get_object_or_404(Stage.objects.select_related("plan"), pk=stage_pk)
    form = ItemForm(request.POST)
    if form.is_valid():
        try:
            actions.add_item(stage, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _say(request, exc)
    else:
        messages.error(request, "An item needs a text.")
    return redirect("cutover:plan", stage.plan_id)


def _on_item(request, item_pk, action):
    item = get_object_or_404(ChecklistItem.objects.select_related("stage"), pk=item_pk)
    try:
        action(item, request.user)
    except ValidationError as exc:
        _say(request, exc)
    return _back_to_plan(request, item.stage.plan_id)


@require("edit_roadmap")
@require_POST
def item_sign(request, item_pk):
    return _on_item(request, item_pk, actions.sign_item)


@require("edit_roadmap")
@require_POST
def item_unsign(request, item_pk):
    return _on_item(request, item_pk, actions.unsign_item)


@require("edit_roadmap")
@require_POST
def item_evidence(request, item_pk):
    item = get_object_or_404(ChecklistItem.objects.select_related("stage"), pk=item_pk)
    form = EvidenceForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        actions.save_evidence(item, request.user, data["evidence_note"], data["evidence_file"])
    else:
        _say(request, ValidationError(form.errors.get("evidence_file", ["bad evidence"])))
    return redirect("cutover:plan", item.stage.plan_id)


@require("view_roadmap", "view_phi")
def item_evidence_file(request, item_pk):
    item = get_object_or_404(ChecklistItem, pk=item_pk)
    if not item.evidence_file:
        raise Http404("no evidence file")
    response = FileResponse(item.evidence_file.open("rb"), as_attachment=True)
    return phi_response(request, response, "cutover.evidence", item.pk)


def _back_to_plan(request, plan_pk):
    if request.htmx:
        plan = get_object_or_404(CutoverPlan.objects.select_related("integration"), pk=plan_pk)
        return render(request, "cutover/_plan_body.html", _plan_context(plan))
    return redirect("cutover:plan", plan_pk)


@require("edit_roadmap")
@require_POST
def gate_open(request, stage_pk):
    stage = get_object_or_404(Stage, pk=stage_pk)
    try:
        actions.open_gate(stage, request.user, request.POST.get("note", ""))
    except ValidationError as exc:
        _say(request, exc)
    return _back_to_plan(request, stage.plan_id)


@require("edit_roadmap")
@require_POST
def gate_close(request, stage_pk):
    stage = get_object_or_404(Stage, pk=stage_pk)
    reason = request.POST.get("reason", "").strip() or "rolled back"
    try:
        actions.close_gate(stage, request.user, reason)
    except ValidationError as exc:
        _say(request, exc)
    return _back_to_plan(request, stage.plan_id)


@require("edit_roadmap")
@require_POST
def rollback_save(request, stage_pk):
    stage = get_object_or_404(Stage, pk=stage_pk)
    actions.save_rollback(stage, request.POST.get("rollback_steps", "")[:5000], request.user)
    return redirect("cutover:plan", stage.plan_id)


@require("edit_roadmap")
@require_POST
def probe_add(request, pk):
    plan = get_object_or_404(CutoverPlan, pk=pk)
    form = ProbeForm(request.POST)
    if form.is_valid():
        try:
            actions.save_probe(Probe(plan=plan), form.cleaned_data, request.user)
        except ValidationError as exc:
            _say(request, exc)
    else:
        _say(request, ValidationError([f"{k}: {v[0]}" for k, v in form.errors.items()]))
    return redirect("cutover:plan", pk)


@require("edit_roadmap")
@require_POST
def probe_run(request, probe_pk):
    probe = get_object_or_404(Probe.objects.select_related("plan__integration"), pk=probe_pk)
    actions.queue_probe(probe)
    messages.info(request, f"{probe.name}: queued; its result appears on this page.")
    return redirect("cutover:plan", probe.plan_id)


# -- viewer validation ----------------------------------------------------------------------


@require("view_roadmap")
def viewers(request):
    cloud = CloudViewer.objects.annotate(
        cases_total=Count("cases"),
        passed=Count("cases", filter=Q(cases__result="pass")),
        gaps=Count("cases", filter=Q(cases__result__in=["fail", "gap"], cases__gap_resolved=False)),
    )
    return render(request, "cutover/viewers.html", {"viewers": cloud, "form": CloudViewerForm()})


@require("edit_roadmap")
@require_POST
def viewer_create(request):
    form = CloudViewerForm(request.POST)
    if not form.is_valid():
        _say(request, ValidationError([f"{k}: {v[0]}" for k, v in form.errors.items()]))
        return redirect("cutover:viewers")
    viewer = actions.create_cloud_viewer(form.cleaned_data, request.user)
    return redirect("cutover:viewer", viewer.pk)


@require("view_roadmap")
def viewer_detail(request, pk):
    viewer = get_object_or_404(CloudViewer, pk=pk)
    legacy = dict(actions.legacy_capabilities())
    cases = viewer.cases.select_related("capability", "tester")
    rows = [
        {"case": c, "legacy": legacy.get(c.capability, []), "form": CaseResultForm(instance=c)}
        for c in cases
    ]
    return render(request, "cutover/viewer.html", {"viewer": viewer, "rows": rows})


@require("edit_roadmap")
@require_POST
def viewer_generate(request, pk):
    viewer = get_object_or_404(CloudViewer, pk=pk)
    added = actions.generate_test_plan(viewer, request.user)
    messages.success(request, f"{added} test cases added from the legacy viewers.")
    return redirect("cutover:viewer", pk)


@require("edit_roadmap")
@require_POST
def case_record(request, case_pk):
    case = get_object_or_404(ViewerTestCase, pk=case_pk)
    form = CaseResultForm(
        request.POST, request.FILES, instance=ViewerTestCase.objects.get(pk=case.pk)
    )
    if not form.is_valid():
        _say(request, ValidationError([f"{k}: {v[0]}" for k, v in form.errors.items()]))
        return redirect("cutover:viewer", case.viewer_id)
    data = form.cleaned_data
    actions.record_result(
        case,
        request.user,
        data["result"],
        data["notes"],
        data["screenshot"] or None,
        gap_owner=data["gap_owner"],
        gap_solution=data["gap_solution"],
        gap_resolved=data["gap_resolved"],
    )
    return redirect("cutover:viewer", case.viewer_id)


@require("view_roadmap", "view_phi")
def case_screenshot(request, case_pk):
    case = get_object_or_404(ViewerTestCase, pk=case_pk)
    if not case.screenshot:
        raise Http404("no screenshot")
    response = FileResponse(case.screenshot.open("rb"))
    return phi_response(request, response, "cutover.viewer_screenshot", case.pk)


@require("view_roadmap")
def viewer_matrix(request):
    legacy = actions.legacy_capabilities()
    from inventory.models import Viewer

    legacy_viewers = list(Viewer.objects.values_list("name", flat=True))
    cloud = list(CloudViewer.objects.all())
    results = {(c.viewer_id, c.capability_id): c for c in ViewerTestCase.objects.all()}
    rows = [
        {
            "capability": cap,
            "legacy": [name in names for name in legacy_viewers],
            "cloud": [results.get((v.pk, cap.pk)) for v in cloud],
        }
        for cap, names in legacy
    ]
    context = {"rows": rows, "legacy_viewers": legacy_viewers, "cloud": cloud}
    return render(request, "cutover/matrix.html", context)


# -- go/no-go -------------------------------------------------------------------------------


@require("view_roadmap")
def readiness_view(request):
    return render(
        request,
        "cutover/readiness.html",
        {"readiness": readiness.evaluate(), "threshold_form": ThresholdForm()},
    )


@require("edit_roadmap")
@require_POST
def threshold_save(request):
    form = ThresholdForm(request.POST)
    if not form.is_valid():
        _say(request, ValidationError([f"{k}: {v[0]}" for k, v in form.errors.items()]))
        return redirect("cutover:readiness")
    data = form.cleaned_data
    actions.set_threshold(data["key"], data["threshold"], request.user)
    actions.waive_criterion(data["key"], data["reason"], request.user, waived=data["waived"])
    messages.success(request, "Criterion settings saved.")
    return redirect("cutover:readiness")
