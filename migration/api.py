"""REST API of the migration (under /migration/api/): thin adapters over actions and
measures. Reading needs `view_migration`, changing needs `operate_migration`. Nothing here
returns PHI: ledger rows carry UIDs and ids only."""

from django.conf import settings
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from core.access import ReadWrite, RulePermission
from inventory.models import PacsSource
from migration import actions, mapping, measures, throttle
from migration.models import (
    Conflict,
    Destination,
    EngineControl,
    LookupTable,
    MappingProfile,
    Wave,
    WaveStudy,
)

MigrationAccess = ReadWrite("view_migration", "operate_migration")


def bad_request(exc):
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


# --- destinations -----------------------------------------------------------------------


class DestinationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Destination
        exclude = ["created_at"]
        read_only_fields = ["last_check_ok", "last_check_at", "last_check_detail", "last_check_ms"]

    def validate(self, attrs):
        candidate = Destination(**{**attrs})
        try:
            candidate.clean()
        except Exception as exc:
            raise serializers.ValidationError(getattr(exc, "message_dict", str(exc))) from None
        return attrs


CheckQueued = inline_serializer(
    "DestinationCheckQueued",
    {"queued": serializers.BooleanField(), "id": serializers.IntegerField()},
)


class DestinationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Cloud destinations (S3, DICOMweb, folder); credentials are named, never stored."""

    queryset = Destination.objects.all()
    serializer_class = DestinationSerializer
    permission_classes = [MigrationAccess]

    def perform_create(self, serializer):
        serializer.instance = actions.add_destination(**serializer.validated_data)

    @extend_schema(request=None, responses={202: CheckQueued})
    @action(detail=True, methods=["post"])
    def check(self, request, pk=None):
        """Queue a worker to write, read back and delete a probe object; the result lands
        on the destination (`last_check_*`) and in the `migration.destination.<id>` event."""
        queued = actions.queue_destination_check(self.get_object())
        return Response(queued, status=status.HTTP_202_ACCEPTED)


# --- mapping profiles -------------------------------------------------------------------


class ProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = MappingProfile
        fields = ["id", "name", "description", "rules", "updated_at"]
        read_only_fields = ["updated_at"]

    def validate_rules(self, rules):
        problems = mapping.validate_rules(rules, LookupTable.objects.values_list("name", flat=True))
        if problems:
            raise serializers.ValidationError(problems)
        return rules


class ProfileViewSet(viewsets.ModelViewSet):
    """Mapping profiles: ordered tag rules (see migration/mapping.py RULES)."""

    queryset = MappingProfile.objects.all()
    serializer_class = ProfileSerializer
    permission_classes = [MigrationAccess]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]


# --- waves ------------------------------------------------------------------------------


class WaveSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", queryset=PacsSource.objects.all())
    destination = serializers.SlugRelatedField(
        slug_field="name", queryset=Destination.objects.all()
    )
    profile = serializers.SlugRelatedField(
        slug_field="name", queryset=MappingProfile.objects.all(), allow_null=True, required=False
    )
    accession_numbers = serializers.ListField(
        child=serializers.CharField(max_length=64), write_only=True, required=False,
        max_length=settings.UPLOAD_LIST_MAX_ITEMS,
    )  # fmt: skip
    patient_ids = serializers.ListField(
        child=serializers.CharField(max_length=64), write_only=True, required=False,
        max_length=settings.UPLOAD_LIST_MAX_ITEMS,
    )  # fmt: skip
    schedule_spec = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text="e.g. 'mon-fri 7-19=1'"
    )
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Wave
        fields = [
            "id", "name", "source", "destination", "profile", "priority", "state", "date_from",
            "date_to", "modalities", "schedule", "schedule_spec", "accession_numbers",
            "patient_ids", "created_at", "started_at", "finished_at", "progress",
        ]  # fmt: skip
        read_only_fields = ["state", "schedule", "created_at", "started_at", "finished_at"]

    def get_progress(self, wave) -> dict:
        return measures.wave_progress([wave.pk])

    def validate_schedule_spec(self, spec):
        try:
            return throttle.parse_schedule(spec) if spec else []
        except throttle.ScheduleError as exc:
            raise serializers.ValidationError(str(exc)) from None


class LedgerRowSerializer(serializers.ModelSerializer):
    study_uid = serializers.CharField(source="study.study_uid")

    class Meta:
        model = WaveStudy
        fields = [
            "id", "study_uid", "state", "attempts", "error_class", "last_error",
            "instances_reported", "instances_received", "instances_stored",
            "instances_quarantined", "conflicts", "bytes_stored", "pacs_latency_ms",
            "started_at", "finished_at", "duration_s", "manifest_key", "manifest_sha256",
            "not_before",
        ]  # fmt: skip


WaveStatus = OpenApiTypes.OBJECT


class WaveViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Waves: create from the inventory, start/pause/resume/cancel, status, the ledger."""

    queryset = Wave.objects.select_related("source", "destination", "profile")
    serializer_class = WaveSerializer
    permission_classes = [MigrationAccess]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["schedule"] = data.pop("schedule_spec", [])
        try:
            wave, info = actions.create_wave(user=request.user, **data)
        except actions.ActionError as exc:
            return bad_request(exc)
        body = {**self.get_serializer(wave).data, "unmatched": info["unmatched"]}
        return Response(body, status=status.HTTP_201_CREATED)

    def _verb(self, verb):
        try:
            wave = actions.change_wave(self.get_object(), verb, self.request.user)
        except actions.ActionError as exc:
            return bad_request(exc)
        return Response(self.get_serializer(wave).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._verb("start")

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._verb("pause")

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._verb("resume")

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._verb("cancel")

    @extend_schema(
        request=None, responses=inline_serializer("Retried", {"queued": serializers.IntegerField()})
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue the wave's quarantined studies again, with fresh attempts."""
        return Response({"queued": actions.retry_quarantined(self.get_object())})

    @extend_schema(responses=WaveStatus)
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """Counts per state, instances, bytes, rates, ETA, PACS associations and latency."""
        return Response(measures.wave_status(self.get_object()))

    @extend_schema(responses=LedgerRowSerializer(many=True))
    @action(detail=True, methods=["get"])
    def studies(self, request, pk=None):
        """The wave's ledger rows (?state=failed etc.), paginated."""
        rows = self.get_object().ledger.select_related("study").order_by("pk")
        if request.query_params.get("state"):
            rows = rows.filter(state=request.query_params["state"])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(LedgerRowSerializer(page, many=True).data)


# --- conflicts, the engine switch, measures ----------------------------------------------


class ConflictSerializer(serializers.ModelSerializer):
    wave = serializers.CharField(source="ledger.wave.name", read_only=True)

    class Meta:
        model = Conflict
        fields = [
            "id", "wave", "ledger", "sop_uid", "series_uid", "kept_key", "kept_sha256",
            "other_key", "other_sha256", "other_size", "detected_at", "decision", "note",
            "decided_at",
        ]  # fmt: skip
        read_only_fields = fields


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[c for c in Conflict.Decision.values if c])
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class ConflictViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Same SOP Instance UID, different content: both copies kept until a person decides."""

    queryset = Conflict.objects.select_related("ledger__wave").order_by("-detected_at")
    serializer_class = ConflictSerializer
    permission_classes = [MigrationAccess]

    @extend_schema(request=DecisionSerializer, responses=ConflictSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        form = DecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            conflict = actions.decide_conflict(
                self.get_object(), form.validated_data["decision"], request.user,
                form.validated_data.get("note", ""),
            )  # fmt: skip
        except actions.ActionError as exc:
            return bad_request(exc)
        return Response(ConflictSerializer(conflict).data)


class ControlSerializer(serializers.ModelSerializer):
    class Meta:
        model = EngineControl
        fields = ["paused", "reason", "latency_bound_ms", "changed_at"]
        read_only_fields = ["changed_at"]


@extend_schema(methods=["GET"], responses=ControlSerializer)
@extend_schema(methods=["POST"], request=ControlSerializer, responses=ControlSerializer)
@api_view(["GET", "POST"])
@permission_classes([ReadWrite("view_migration", "pause_migration")])
def control_view(request):
    """The engine's global pause and the PACS latency bound (POST needs pause_migration)."""
    if request.method == "POST":
        form = ControlSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if "latency_bound_ms" in data:
            actions.set_latency_bound(data["latency_bound_ms"], request.user)
        if "paused" in data:
            actions.set_paused(data["paused"], request.user, data.get("reason", ""))
    return Response(ControlSerializer(EngineControl.get()).data)


@extend_schema(
    responses=inline_serializer(
        "MigrationMeasures",
        {"progress": serializers.DictField(), "validation": serializers.DictField()},
    )
)
@api_view(["GET"])
@permission_classes([RulePermission("view_migration")])
def measures_view(request):
    """wave_progress() over all waves and validation_summary(), as other apps read them."""
    return Response(
        {"progress": measures.wave_progress(), "validation": measures.validation_summary()}
    )


router = SimpleRouter()
router.register("api/destinations", DestinationViewSet, basename="api-destination")
router.register("api/profiles", ProfileViewSet, basename="api-profile")
router.register("api/waves", WaveViewSet, basename="api-wave")
router.register("api/conflicts", ConflictViewSet, basename="api-conflict")
urlpatterns = [
    path("api/control/", control_view, name="api-control"),
    path("api/measures/", measures_view, name="api-measures"),
    *router.urls,
]
