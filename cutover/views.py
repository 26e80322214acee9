"""Roadmap pages: thin adapters over cutover.actions (changes) and cutover.planning (reads)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.access import has_rule, require
from cutover import actions, binding, csvio, gantt, planning
from cutover.forms import (
    BaselineForm,
    DependencyForm,
    HolidaysForm,
    ImportForm,
    RoadmapForm,
    TaskForm,
    TemplateRoadmapForm,
    WorkstreamForm,
)
from cutover.models import Baseline, Dependency, Roadmap, Task


def _require_edit(request):
    """Pages anyone with view_roadmap may read, but only editors may post to."""
    if not has_rule(request.user, "edit_roadmap"):
        raise PermissionDenied("This page needs the 'edit_roadmap' permission.")


def _error_text(exc):
    return "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


@require("view_roadmap")
def index(request):
    return render(
        request,
        "cutover/index.html",
        {
            "roadmaps": Roadmap.objects.select_related("go_live"),
            "template_form": TemplateRoadmapForm(),
            "roadmap_form": RoadmapForm(),
        },
    )


@require("edit_roadmap")
@require_POST
def create_from_template(request):
    form = TemplateRoadmapForm(request.POST)
    if not form.is_valid() or Roadmap.objects.filter(name=form.cleaned_data["name"]).exists():
        messages.error(request, "Give the roadmap a new name and a start date.")
        return redirect("cutover:index")
    data = form.cleaned_data
    roadmap = actions.create_from_template(data["name"], data["start_date"], request.user)
    return redirect("cutover:roadmap", roadmap.pk)


@require("edit_roadmap")
@require_POST
def create_roadmap(request):
    form = RoadmapForm(request.POST)
    if not form.is_valid() or Roadmap.objects.filter(name=form.cleaned_data["name"]).exists():
        messages.error(request, "Give the roadmap a new name and a start date.")
        return redirect("cutover:index")
    roadmap = actions.create_roadmap(user=request.user, **form.cleaned_data)
    return redirect("cutover:roadmap", roadmap.pk)


def _gantt_svg(request, roadmap):
    zoom = request.GET.get("zoom", "month")
    zoom = zoom if zoom in gantt.ZOOMS else "month"
    baseline = None
    if request.GET.get("baseline"):
        baseline = roadmap.baselines.filter(pk=request.GET["baseline"]).first()
    rows, links = planning.gantt_data(
        roadmap, baseline, href=lambda t: reverse("cutover:task_edit", args=[t.pk])
    )
    svg = gantt.render(
        rows, links, zoom=zoom, today=timezone.localdate(), title=f"Gantt chart of {roadmap.name}"
    )
    return svg, zoom, baseline


@require("view_roadmap")
def roadmap_detail(request, pk):
    roadmap = get_object_or_404(Roadmap.objects.select_related("go_live"), pk=pk)
    svg, zoom, baseline = _gantt_svg(request, roadmap)
    return render(
        request,
        "cutover/roadmap.html",
        {
            "roadmap": roadmap,
            "svg": svg,
            "zoom": zoom,
            "baseline": baseline,
            "summary": actions.roadmap_summary(roadmap),
            "tasks": roadmap.tasks.select_related("workstream"),
            "baselines": roadmap.baselines.all(),
            "workstream_form": WorkstreamForm(),
            "baseline_form": BaselineForm(),
        },
    )


@require("view_roadmap")
def gantt_svg(request, pk):
    roadmap = get_object_or_404(Roadmap, pk=pk)
    svg, _zoom, _baseline = _gantt_svg(request, roadmap)
    return HttpResponse(svg, content_type="image/svg+xml")


@require("edit_roadmap")
@require_POST
def add_workstream(request, pk):
    roadmap = get_object_or_404(Roadmap, pk=pk)
    form = WorkstreamForm(request.POST)
    if form.is_valid():
        name = form.cleaned_data["name"]
        roadmap.workstreams.get_or_create(
            name=name, defaults={"order": roadmap.workstreams.count()}
        )
    return redirect("cutover:roadmap", pk)


def _task_page(request, roadmap, task, form):
    deps = task.predecessor_links.select_related("predecessor") if task.pk else []
    return render(
        request,
        "cutover/task_form.html",
        {
            "roadmap": roadmap,
            "task": task,
            "form": form,
            "dependencies": deps,
            "dependency_form": DependencyForm(task=task) if task.pk else None,
            "measures": binding.MEASURES,
        },
    )


def _save_task(request, roadmap, task):
    form = TaskForm(request.POST, instance=task, roadmap=roadmap)
    if not form.is_valid():
        return _task_page(request, roadmap, task, form)
    changes = form.changes()
    task = Task.objects.get(pk=task.pk) if task.pk else Task(roadmap=roadmap)
    try:
        shift = actions.save_task(task, changes, request.user)
    except ValidationError as exc:
        form.add_error(None, _error_text(exc))
        return _task_page(request, roadmap, task, form)
    messages.success(request, f"Saved {task.code}: {shift['message'] or 'go-live unchanged'}.")
    return redirect("cutover:roadmap", roadmap.pk)


@require("view_roadmap")
def task_new(request, pk):
    roadmap = get_object_or_404(Roadmap, pk=pk)
    if request.method == "POST":
        _require_edit(request)
        return _save_task(request, roadmap, Task(roadmap=roadmap))
    return _task_page(request, roadmap, Task(roadmap=roadmap), TaskForm(roadmap=roadmap))


@require("view_roadmap")
def task_edit(request, task_pk):
    task = get_object_or_404(Task.objects.select_related("roadmap"), pk=task_pk)
    if request.method == "POST":
        _require_edit(request)
        return _save_task(request, task.roadmap, task)
    return _task_page(request, task.roadmap, task, TaskForm(instance=task, roadmap=task.roadmap))


@require("edit_roadmap")
@require_POST
def task_preview(request, task_pk):
    """htmx: what the edited values would do to go-live, before saving."""
    task = get_object_or_404(Task.objects.select_related("roadmap"), pk=task_pk)
    form = TaskForm(request.POST, instance=Task.objects.get(pk=task.pk), roadmap=task.roadmap)
    context = {"shift": None, "error": ""}
    if not form.is_valid():
        context["error"] = "Fix the highlighted fields to see the effect on go-live."
    else:
        try:
            context["shift"] = actions.preview_task_change(task, form.changes())
        except ValidationError as exc:
            context["error"] = _error_text(exc)
    return render(request, "cutover/_preview.html", context)


@require("edit_roadmap")
@require_POST
def task_move(request, task_pk):
    """From the Gantt drag: preview (preview=1) or save a new manual start date."""
    task = get_object_or_404(Task.objects.select_related("roadmap"), pk=task_pk)
    form = TaskForm(instance=task, roadmap=task.roadmap)
    try:
        start = form.fields["start_no_earlier"].clean(request.POST.get("start", ""))
        if request.POST.get("preview"):
            shift = actions.preview_task_change(task, {"start_no_earlier": start})
        else:
            shift = actions.save_task(task, {"start_no_earlier": start}, request.user)
    except ValidationError as exc:
        return render(request, "cutover/_preview.html", {"error": _error_text(exc)}, status=400)
    return render(request, "cutover/_preview.html", {"shift": shift, "task": task})


@require("edit_roadmap")
@require_POST
def task_delete(request, task_pk):
    task = get_object_or_404(Task, pk=task_pk)
    try:
        actions.delete_task(task, request.user)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    return redirect("cutover:roadmap", task.roadmap_id)


@require("edit_roadmap")
@require_POST
def dependency_add(request, task_pk):
    task = get_object_or_404(Task.objects.select_related("roadmap"), pk=task_pk)
    form = DependencyForm(request.POST, task=task)
    if not form.is_valid():
        messages.error(request, "Choose a predecessor, a kind and a lag in working days.")
        return redirect("cutover:task_edit", task.pk)
    data = form.cleaned_data
    try:
        _dep, shift = actions.add_dependency(
            data["predecessor"], task, data["kind"], data["lag"], request.user
        )
        messages.success(request, f"Linked: {shift['message'] or 'go-live unchanged'}.")
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    return redirect("cutover:task_edit", task.pk)


@require("edit_roadmap")
@require_POST
def dependency_delete(request, dep_pk):
    dep = get_object_or_404(Dependency, pk=dep_pk)
    task_pk = dep.successor_id
    actions.remove_dependency(dep, request.user)
    return redirect("cutover:task_edit", task_pk)


@require("edit_roadmap")
@require_POST
def baseline_create(request, pk):
    roadmap = get_object_or_404(Roadmap, pk=pk)
    form = BaselineForm(request.POST)
    if form.is_valid():
        baseline = actions.save_baseline(roadmap, form.cleaned_data["name"], request.user)
        messages.success(request, f"Saved baseline {baseline.name}.")
    return redirect("cutover:roadmap", pk)


@require("view_roadmap")
def baseline_compare(request, baseline_pk):
    baseline = get_object_or_404(Baseline.objects.select_related("roadmap"), pk=baseline_pk)
    rows = planning.compare(baseline.roadmap, baseline)
    return render(
        request,
        "cutover/baseline.html",
        {
            "baseline": baseline,
            "roadmap": baseline.roadmap,
            "rows": rows,
            "slipped": [r for r in rows if r["slipped"]],
        },
    )


@require("view_roadmap")
def export_csv(request, pk):
    roadmap = get_object_or_404(Roadmap, pk=pk)
    response = HttpResponse(csvio.export_tasks(roadmap), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="roadmap-{roadmap.pk}-tasks.csv"'
    return response


@require("edit_roadmap")
def import_csv(request, pk):
    roadmap = get_object_or_404(Roadmap, pk=pk)
    form = ImportForm(request.POST or None, request.FILES or None)
    errors = []
    if request.method == "POST" and form.is_valid():
        try:
            text = form.cleaned_data["file"].read().decode("utf-8-sig")
            count = actions.import_tasks(roadmap, text, request.user)
        except UnicodeDecodeError:
            errors = [(0, "the file is not UTF-8 text")]
        except csvio.CsvImportError as exc:
            errors = exc.errors
        else:
            messages.success(request, f"Imported {count} tasks.")
            return redirect("cutover:roadmap", pk)
    return render(
        request, "cutover/import.html", {"roadmap": roadmap, "form": form, "errors": errors}
    )


@require("edit_roadmap")
def holidays(request, pk):
    roadmap = get_object_or_404(Roadmap, pk=pk)
    initial = "\n".join(f"{h.day.isoformat()} {h.name}".strip() for h in roadmap.holidays.all())
    form = HolidaysForm(request.POST or None, initial={"holidays": initial})
    if request.method == "POST" and form.is_valid():
        actions.set_holidays(roadmap, form.cleaned_data["holidays"], request.user)
        messages.success(request, "Holidays saved; the roadmap is rescheduled.")
        return redirect("cutover:roadmap", pk)
    return render(request, "cutover/holidays.html", {"roadmap": roadmap, "form": form})


@require("edit_roadmap")
@require_POST
def refresh_live(request, pk):
    roadmap = get_object_or_404(Roadmap, pk=pk)
    count = actions.refresh_live_tasks(roadmap)
    messages.success(request, f"Live-bound tasks refreshed ({count} changed).")
    return redirect("cutover:roadmap", pk)
