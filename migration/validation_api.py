"""REST API of validation (under /migration/api/validation/): runs with their progress,
the discrepancy queue and each wave's validation state. Thin adapters over
migration/discrepancies.py. Reading needs `view_migration`; running, assigning,
accepting and re-migrating need `validate_migration`. Nothing here carries PHI."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from core.access import ReadWrite, RulePermission
from migration import discrepancies
from migration.actions import ActionError
from migration.api import bad_request
from migration.models import Discrepancy, ValidationRun, Wave

ValidationAccess = ReadWrite("view_migration", "validate_migration")


class RunSerializer(serializers.ModelSerializer):
    wave = serializers.SlugRelatedField(slug_field="name", queryset=Wave.objects.all())
    kind = serializers.ChoiceField(
        choices=[ValidationRun.Kind.RECONCILE, ValidationRun.Kind.SPOTCHECK]
    )
    sample_size = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    percent = serializers.SerializerMethodField()

    class Meta:
        model = ValidationRun
        fields = [
            "id", "wave", "kind", "state", "sample_size", "seed", "progress_done",
            "progress_total", "percent", "totals", "error", "created_at", "started_at",
            "finished_at",
        ]  # fmt: skip
        read_only_fields = [
            "state", "progress_done", "progress_total", "totals", "error", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip

    def get_percent(self, run) -> float:
        if not run.progress_total:
            return 100.0 if run.state == ValidationRun.State.DONE else 0.0
        return round(100.0 * run.progress_done / run.progress_total, 1)


class RunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Reconciliations and spot-checks (?wave=NAME&kind=…); POST starts one as a task."""

    serializer_class = RunSerializer
    permission_classes = [ValidationAccess]

    def get_queryset(self):
        runs = ValidationRun.objects.select_related("wave").exclude(wave=None)
        params = self.request.query_params
        if params.get("wave"):
            runs = runs.filter(wave__name=params["wave"])
        if params.get("kind"):
            runs = runs.filter(kind=params["kind"])
        return runs.order_by("-created_at", "-pk")

    def create(self, request, *args, **kwargs):
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            run = discrepancies.start_run(
                data["wave"], data["kind"], user=request.user,
                sample=data.get("sample_size"), seed=data.get("seed"),
            )  # fmt: skip
        except ActionError as exc:
            return bad_request(exc)
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)


class DiscrepancySerializer(serializers.ModelSerializer):
    wave = serializers.CharField(source="wave.name", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True, default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True, default=None)

    class Meta:
        model = Discrepancy
        fields = [
            "id", "wave", "ledger", "run", "study_uid", "series_uid", "sop_uid", "kind",
            "subject", "detail", "status", "owner", "reason", "created_at", "updated_at",
            "resolved_at", "resolved_by",
        ]  # fmt: skip
        read_only_fields = fields


class AssignSerializer(serializers.Serializer):
    owner = serializers.CharField(allow_blank=True, allow_null=True, help_text="a username")


class AcceptSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class DiscrepancyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The discrepancy queue (?wave=NAME&status=open&kind=tag&owner=USERNAME)."""

    serializer_class = DiscrepancySerializer
    permission_classes = [ValidationAccess]
    FILTERS = {"wave": "wave__name", "status": "status", "kind": "kind",
               "owner": "owner__username", "study": "study_uid"}  # fmt: skip

    def get_queryset(self):
        rows = Discrepancy.objects.select_related("wave", "owner", "resolved_by")
        for param, field in self.FILTERS.items():
            if self.request.query_params.get(param):
                rows = rows.filter(**{field: self.request.query_params[param]})
        return rows.order_by("-created_at", "-pk")

    @extend_schema(request=AssignSerializer, responses=DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        form = AssignSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        name = form.validated_data.get("owner")
        owner = None
        if name:
            owner = get_user_model().objects.filter(username=name, is_active=True).first()
            if owner is None:
                return bad_request(f"no active user named {name!r}")
        try:
            item = discrepancies.assign(self.get_object(), request.user, owner)
        except ActionError as exc:
            return bad_request(exc)
        return Response(self.get_serializer(item).data)

    @extend_schema(request=AcceptSerializer, responses=DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """Accept the difference as it is; a reason is required."""
        form = AcceptSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            item = discrepancies.accept(
                self.get_object(), request.user, form.validated_data["reason"]
            )
        except ActionError as exc:
            return bad_request(exc)
        return Response(self.get_serializer(item).data)

    @extend_schema(request=None, responses=DiscrepancySerializer)
    @action(detail=True, methods=["post"])
    def remigrate(self, request, pk=None):
        """Run the study through the engine again, then validate it again."""
        item = self.get_object()
        try:
            discrepancies.remigrate(item, request.user)
        except ActionError as exc:
            return bad_request(exc)
        item.refresh_from_db()
        return Response(self.get_serializer(item).data, status=status.HTTP_202_ACCEPTED)


WaveValidation = inline_serializer(
    "WaveValidation",
    {
        "wave": serializers.CharField(),
        "validated": serializers.BooleanField(),
        "reconciled": serializers.BooleanField(),
        "open": serializers.IntegerField(),
        "last_reconcile": RunSerializer(allow_null=True),
        "last_spotcheck": RunSerializer(allow_null=True),
    },
)


@extend_schema(responses=WaveValidation)
@api_view(["GET"])
@permission_classes([RulePermission("view_migration")])
def wave_validation_view(request, name):
    """Whether the wave is validated (for the cutover gate), with its latest runs."""
    wave = get_object_or_404(Wave, name=name)
    state = discrepancies.wave_validation(wave)
    state.pop("reconciled_counts")
    for key in ("last_reconcile", "last_spotcheck"):
        state[key] = RunSerializer(state[key]).data if state[key] else None
    return Response({"wave": wave.name, **state})


router = SimpleRouter()
router.register("api/validation/runs", RunViewSet, basename="api-validation-run")
router.register(
    "api/validation/discrepancies", DiscrepancyViewSet, basename="api-validation-discrepancy"
)
urlpatterns = [
    path(
        "api/validation/waves/<slug:name>/",
        wave_validation_view,
        name="api-validation-wave",
    ),
    *router.urls,
]
