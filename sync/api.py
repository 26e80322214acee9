"""REST API of the hybrid period (under /sync/api/): sync mode per PACS (status and
toggle) and the appointments whose priors go first. Reading needs `view_migration`,
changing sync mode `manage_sync`; an appointment's patient identifier and placer number
only with `view_phi`, each such answer recorded."""

from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import ReadWrite, RulePermission, has_rule
from core.audit import record_phi_access
from inventory.models import PacsSource
from migration.models import Destination
from sync import actions, lag, readiness
from sync.models import SyncSource

SyncAccess = ReadWrite("view_migration", "manage_sync")


class SyncStatusSerializer(serializers.Serializer):
    source = serializers.CharField()
    enabled = serializers.BooleanField()
    every_minutes = serializers.FloatField(allow_null=True)
    destination = serializers.CharField(allow_null=True)
    lag_p50_s = serializers.FloatField(allow_null=True)
    lag_p95_s = serializers.FloatField(allow_null=True)
    oldest_unsynced_s = serializers.FloatField(allow_null=True)
    pending = serializers.IntegerField()
    verified_last_hour = serializers.IntegerField(required=False)
    objective_s = serializers.FloatField(required=False)
    over_objective = serializers.BooleanField(required=False)
    last_crawl_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)


class SyncChangeSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    every_minutes = serializers.FloatField(required=False, min_value=0.1, max_value=1440)
    destination = serializers.SlugRelatedField(
        slug_field="name", queryset=Destination.objects.all(), required=False
    )


def _status(source):
    sync = SyncSource.objects.filter(source=source).select_related("destination").first()
    figures = actions.status_of(source)
    return {
        "source": source.name,
        "every_minutes": sync.every_minutes if sync else None,
        "destination": sync.destination.name if sync else None,
        "last_crawl_at": sync.high_water if sync else None,
        "last_error": sync.last_error if sync else "",
        **figures,
    }


class SyncListView(APIView):
    """Sync mode and lag of every PACS."""

    permission_classes = [SyncAccess]

    @extend_schema(responses=SyncStatusSerializer(many=True))
    def get(self, request):
        actions.settle()
        return Response([_status(source) for source in PacsSource.objects.all()])


class SyncSourceView(APIView):
    """One PACS's sync mode: its lag (p50/p95 over the last hour, oldest unsynced, pending)
    and, with POST, on or off (interval, destination)."""

    permission_classes = [SyncAccess]

    @extend_schema(responses=SyncStatusSerializer)
    def get(self, request, name):
        return Response(_status(get_object_or_404(PacsSource, name=name)))

    @extend_schema(request=SyncChangeSerializer, responses=SyncStatusSerializer)
    def post(self, request, name):
        source = get_object_or_404(PacsSource, name=name)
        change = SyncChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        values = change.validated_data
        try:
            actions.configure(
                source, enabled=values["enabled"], every_minutes=values.get("every_minutes"),
                destination=values.get("destination"), user=request.user,
            )  # fmt: skip
        except actions.SyncError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(_status(source))


class AppointmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="appointment.pk")
    message_type = serializers.CharField(source="appointment.message_type")
    state = serializers.CharField(source="appointment.state")
    modality = serializers.CharField(source="appointment.modality")
    scheduled_at = serializers.DateTimeField(source="appointment.scheduled_at", allow_null=True)
    received_at = serializers.DateTimeField(source="appointment.received_at")
    priors = serializers.IntegerField()
    ready = serializers.IntegerField()
    all_ready = serializers.BooleanField()


class AppointmentPHISerializer(AppointmentSerializer):
    patient_id = serializers.CharField(source="appointment.patient_id")
    issuer = serializers.CharField(source="appointment.issuer")
    placer = serializers.CharField(source="appointment.placer")


class AppointmentListView(APIView):
    """Upcoming appointments (from an hour ago on) with their priors' readiness; the
    patient's identifier and placer number only for `view_phi` (recorded)."""

    permission_classes = [RulePermission("view_migration")]

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="at most this many (≤ 1000)")],
        responses=AppointmentPHISerializer(many=True),
    )
    def get(self, request):
        try:
            limit = max(1, min(1000, int(request.query_params.get("limit", 200))))
        except ValueError:
            limit = 200
        rows = readiness.upcoming(timezone.now() - lag.WINDOW, limit)
        if has_rule(request.user, "view_phi"):
            if rows:
                record_phi_access(request, "sync.appointment", "api", len(rows))
            return Response(AppointmentPHISerializer(rows, many=True).data)
        return Response(AppointmentSerializer(rows, many=True).data)


urlpatterns = [
    path("api/sources/", SyncListView.as_view(), name="api-sync-list"),
    path("api/sources/<slug:name>/", SyncSourceView.as_view(), name="api-sync-source"),
    path("api/appointments/", AppointmentListView.as_view(), name="api-appointments"),
]
