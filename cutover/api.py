"""REST API of the roadmap, cutover plans, viewer validation and go/no-go (thin adapters).

Reading needs `view_roadmap`; every change needs `edit_roadmap`.
"""

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiTypes, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from core.access import RulePermission, has_rule
from core.uploads import cap_bytes
from cutover import actions, csvio, planning, readiness
from cutover import serializers as s
from cutover.models import (
    Baseline,
    ChecklistItem,
    CloudViewer,
    CutoverPlan,
    Dependency,
    Probe,
    Roadmap,
    Stage,
    Task,
    ViewerTestCase,
)


class EditForWrites(BasePermission):
    read_rule, write_rule = "view_home", "edit_roadmap"

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or has_rule(request.user, "edit_roadmap")


ACCESS = [RulePermission("view_roadmap"), EditForWrites]
CSV_UPLOAD = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}


def _bad(exc):
    detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    return Response(detail, status=status.HTTP_400_BAD_REQUEST)


def _page(request, queryset, serializer):
    return Response(serializer(queryset, many=True).data)


@extend_schema(methods=["GET"], responses=s.RoadmapSerializer(many=True))
@extend_schema(methods=["POST"], request=s.RoadmapSerializer, responses=s.RoadmapSerializer)
@api_view(["GET", "POST"])
@permission_classes(ACCESS)
def roadmaps(request):
    """Roadmaps; POST with `template: true` creates the standard PACS-to-cloud roadmap."""
    if request.method == "GET":
        return _page(request, Roadmap.objects.select_related("go_live"), s.RoadmapSerializer)
    data = s.RoadmapSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    v = data.validated_data
    if v.pop("template"):
        roadmap = actions.create_from_template(v["name"], v["start_date"], request.user)
    else:
        roadmap = actions.create_roadmap(user=request.user, **v)
    return Response(s.RoadmapSerializer(roadmap).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=s.RoadmapSerializer)
@api_view(["GET"])
@permission_classes(ACCESS)
def roadmap(request, pk):
    return Response(s.RoadmapSerializer(get_object_or_404(Roadmap, pk=pk)).data)


@extend_schema(methods=["GET"], responses=s.TaskSerializer(many=True))
@extend_schema(methods=["POST"], request=s.TaskSerializer, responses=s.TaskSerializer)
@api_view(["GET", "POST"])
@permission_classes(ACCESS)
def tasks(request, pk):
    """A roadmap's tasks with their scheduled dates and slack; POST adds a task."""
    rm = get_object_or_404(Roadmap, pk=pk)
    if request.method == "GET":
        queryset = rm.tasks.prefetch_related("predecessor_links")
        return _page(request, queryset, s.TaskSerializer)
    data = s.TaskSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    task = Task(roadmap=rm)
    try:
        actions.save_task(task, dict(data.validated_data), request.user)
    except ValidationError as exc:
        return _bad(exc)
    task.refresh_from_db()
    return Response(s.TaskSerializer(task).data, status=status.HTTP_201_CREATED)


@extend_schema(methods=["PATCH"], request=s.TaskSerializer, responses=s.ShiftSerializer)
@extend_schema(methods=["GET"], responses=s.TaskSerializer)
@extend_schema(methods=["DELETE"], responses={204: None})
@api_view(["GET", "PATCH", "DELETE"])
@permission_classes(ACCESS)
def task(request, pk):
    """One task. PATCH saves and answers how go-live moved; DELETE removes it."""
    obj = get_object_or_404(Task.objects.select_related("roadmap"), pk=pk)
    if request.method == "GET":
        return Response(s.TaskSerializer(obj).data)
    try:
        if request.method == "DELETE":
            actions.delete_task(obj, request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = s.TaskSerializer(obj, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        shift = actions.save_task(obj, dict(data.validated_data), request.user)
    except ValidationError as exc:
        return _bad(exc)
    return Response(s.ShiftSerializer(shift).data)


@extend_schema(request=s.TaskSerializer, responses=s.ShiftSerializer)
@api_view(["POST"])
@permission_classes([RulePermission("edit_roadmap")])
def task_preview(request, pk):
    """How go-live would move if these fields were saved ("this moves go-live by 3 working
    days"); nothing is saved."""
    obj = get_object_or_404(Task.objects.select_related("roadmap"), pk=pk)
    data = s.TaskSerializer(obj, data=request.data, partial=True)
    data.is_valid(raise_exception=True)
    try:
        shift = actions.preview_task_change(obj, dict(data.validated_data))
    except ValidationError as exc:
        return _bad(exc)
    return Response(s.ShiftSerializer(shift).data)


@extend_schema(request=s.DependencySerializer, responses=s.DependencySerializer)
@api_view(["POST"])
@permission_classes([RulePermission("edit_roadmap")])
def dependencies(request):
    """Link two tasks (FS or SS, lag in working days); a cycle is refused with a 400 that
    names it."""
    data = s.DependencySerializer(data=request.data)
    data.is_valid(raise_exception=True)
    v = data.validated_data
    try:
        dep, _shift = actions.add_dependency(
            v["predecessor"], v["successor"], v.get("kind", "FS"), v.get("lag", 0), request.user
        )
    except ValidationError as exc:
        return _bad(exc)
    return Response(s.DependencySerializer(dep).data, status=status.HTTP_201_CREATED)


@extend_schema(responses={204: None})
@api_view(["DELETE"])
@permission_classes([RulePermission("edit_roadmap")])
def dependency(request, pk):
    actions.remove_dependency(get_object_or_404(Dependency, pk=pk), request.user)
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(methods=["GET"], responses=s.BaselineSerializer(many=True))
@extend_schema(methods=["POST"], request=s.BaselineSerializer, responses=s.BaselineSerializer)
@api_view(["GET", "POST"])
@permission_classes(ACCESS)
def baselines(request, pk):
    rm = get_object_or_404(Roadmap, pk=pk)
    if request.method == "GET":
        return _page(request, rm.baselines.all(), s.BaselineSerializer)
    data = s.BaselineSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    baseline = actions.save_baseline(rm, data.validated_data["name"], request.user)
    return Response(s.BaselineSerializer(baseline).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=s.SlipSerializer(many=True))
@api_view(["GET"])
@permission_classes(ACCESS)
def baseline_compare(request, pk):
    """Current dates against the baseline: slips per task in working days."""
    baseline = get_object_or_404(Baseline.objects.select_related("roadmap"), pk=pk)
    return Response(s.SlipSerializer(planning.compare(baseline.roadmap, baseline), many=True).data)


@extend_schema(
    methods=["GET"], responses={(200, "text/csv"): OpenApiTypes.STR}, description="Export tasks"
)
@extend_schema(
    methods=["POST"],
    request={"multipart/form-data": CSV_UPLOAD},
    responses=inline_serializer("CsvImported", {"imported": serializers.IntegerField()}),
)
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, JSONParser])
@permission_classes(ACCESS)
def tasks_csv(request, pk):
    """GET: the tasks as CSV. POST (multipart `file`): import; all or nothing, 400 lists every
    bad line."""
    rm = get_object_or_404(Roadmap, pk=pk)
    if request.method == "GET":
        return HttpResponse(csvio.export_tasks(rm), content_type="text/csv; charset=utf-8")
    upload = request.FILES.get("file")
    if upload is None:
        return Response({"file": ["upload a CSV file"]}, status=400)
    if upload.size > cap_bytes("roadmap_csv"):
        return Response({"file": ["the file is too large"]}, status=400)
    try:
        count = actions.import_tasks(rm, upload.read().decode("utf-8-sig"), request.user)
    except UnicodeDecodeError:
        return Response({"file": ["the file is not UTF-8 text"]}, status=400)
    except csvio.CsvImportError as exc:
        errors = [{"line": line, "error": msg} for line, msg in exc.errors]
        return Response({"errors": errors}, status=400)
    return Response({"imported": count})


@extend_schema(methods=["GET"], responses=s.PlanSerializer(many=True))
@extend_schema(methods=["POST"], request=s.PlanSerializer, responses=s.PlanSerializer)
@api_view(["GET", "POST"])
@permission_classes(ACCESS)
def plans(request):
    """Integration cutover plans; POST {"integration": id} creates one with every stage."""
    if request.method == "GET":
        queryset = CutoverPlan.objects.select_related("integration").prefetch_related(
            "stages__items", "probes"
        )
        return _page(request, queryset, s.PlanSerializer)
    data = s.PlanSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    plan = actions.create_plan(data.validated_data["integration"], request.user)
    return Response(s.PlanSerializer(plan).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=s.PlanSerializer)
@api_view(["GET"])
@permission_classes(ACCESS)
def plan(request, pk):
    return Response(s.PlanSerializer(get_object_or_404(CutoverPlan, pk=pk)).data)


@extend_schema(request=None, responses=s.ItemSerializer)
@api_view(["POST"])
@permission_classes([RulePermission("edit_roadmap")])
def item_sign(request, pk):
    """Sign a checklist item as the logged-in user (name and time are stored and audited)."""
    try:
        item = actions.sign_item(get_object_or_404(ChecklistItem, pk=pk), request.user)
    except ValidationError as exc:
        return _bad(exc)
    return Response(s.ItemSerializer(item).data)


@extend_schema(request=None, responses=s.StageSerializer)
@api_view(["POST"])
@permission_classes([RulePermission("edit_roadmap")])
def gate_open(request, pk):
    """Open a stage's go/no-go gate; 409 with the reasons while items are unsigned."""
    try:
        stage = actions.open_gate(get_object_or_404(Stage, pk=pk), request.user)
    except ValidationError as exc:
        return Response({"detail": exc.messages}, status=status.HTTP_409_CONFLICT)
    return Response(s.StageSerializer(stage).data)


@extend_schema(
    request=None,
    responses={
        202: inline_serializer(
            "ProbeQueued", {"queued": serializers.BooleanField(), "id": serializers.IntegerField()}
        )
    },
)
@api_view(["POST"])
@permission_classes([RulePermission("edit_roadmap")])
def probe_run(request, pk):
    """Queue the probe in a worker; its result appears in `/probes/{id}/results/`."""
    probe = get_object_or_404(Probe.objects.select_related("plan__integration"), pk=pk)
    return Response(actions.queue_probe(probe), status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=s.ProbeResultSerializer(many=True))
@api_view(["GET"])
@permission_classes(ACCESS)
def probe_results(request, pk):
    probe = get_object_or_404(Probe, pk=pk)
    return _page(request, probe.results.all()[:200], s.ProbeResultSerializer)


@extend_schema(methods=["GET"], responses=s.CloudViewerSerializer(many=True))
@extend_schema(methods=["POST"], request=s.CloudViewerSerializer, responses=s.CloudViewerSerializer)
@api_view(["GET", "POST"])
@permission_classes(ACCESS)
def viewers(request):
    """Cloud viewers; POST adds one and generates its test plan from the legacy viewers."""
    if request.method == "GET":
        return _page(request, CloudViewer.objects.all(), s.CloudViewerSerializer)
    data = s.CloudViewerSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    viewer = actions.create_cloud_viewer(dict(data.validated_data), request.user)
    return Response(s.CloudViewerSerializer(viewer).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=s.CaseSerializer(many=True))
@api_view(["GET"])
@permission_classes(ACCESS)
def viewer_cases(request, pk):
    viewer = get_object_or_404(CloudViewer, pk=pk)
    return _page(request, viewer.cases.select_related("capability"), s.CaseSerializer)


@extend_schema(methods=["PATCH"], request=s.CaseSerializer, responses=s.CaseSerializer)
@extend_schema(methods=["GET"], responses=s.CaseSerializer)
@api_view(["GET", "PATCH"])
@permission_classes(ACCESS)
def case(request, pk):
    """One viewer test case; PATCH records a tester's result."""
    obj = get_object_or_404(ViewerTestCase.objects.select_related("capability"), pk=pk)
    if request.method == "GET":
        return Response(s.CaseSerializer(obj).data)
    data = s.CaseSerializer(obj, data=request.data, partial=True)
    data.is_valid(raise_exception=True)
    v = dict(data.validated_data)
    try:
        obj = actions.record_result(
            obj, request.user, v.pop("result", obj.result), v.pop("notes", obj.notes), **v
        )
    except ValidationError as exc:
        return _bad(exc)
    return Response(s.CaseSerializer(obj).data)


@extend_schema(responses=s.ReadinessSerializer)
@api_view(["GET"])
@permission_classes(ACCESS)
def readiness_view(request):
    """Go/no-go: every criterion with its threshold, live value, state and evidence link."""
    return Response(s.ReadinessSerializer(readiness.evaluate()).data)
