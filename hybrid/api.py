"""REST API of the hybrid period (thin adapters): the study locator, bridges, the forward
ledger and the round-trip probes.

Reading needs `view_migration`; Migrate now needs `expedite_studies`; bridges and probes
need `operate_migration`; signing a cutover stage from a round trip needs `edit_roadmap`.
A search by patient ID is a POST (no patient data in URLs) and is recorded; patient data
appear in answers only for `view_phi`, and each such answer is recorded.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from core.access import ReadWrite, RulePermission, has_rule
from core.audit import record_phi_access
from cutover.models import Stage
from hybrid import actions, locate, routing
from hybrid.models import Bridge, Forward, RoundTrip
from inventory.models import PacsSource, Study
from migration.models import Destination

READ = "view_migration"


class LocateRequest(serializers.Serializer):
    accession = serializers.CharField(required=False, max_length=64)
    patient_id = serializers.CharField(required=False, max_length=64)
    study = serializers.CharField(required=False, max_length=64)

    def validate(self, attrs):
        given = [k for k in locate.KEYS if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError("give exactly one of accession, patient_id, study")
        return {"key": given[0], "value": attrs[given[0]]}


class LocatedSerializer(serializers.Serializer):
    study = serializers.CharField(help_text="Study Instance UID")
    source = serializers.CharField()
    on_legacy = serializers.BooleanField()
    in_cloud = serializers.BooleanField()
    verified = serializers.BooleanField()
    wave = serializers.CharField(allow_null=True)
    state = serializers.ChoiceField(choices=list(locate.STATES))
    state_label = serializers.CharField()
    ledger_state = serializers.CharField(allow_null=True)
    discrepancies = serializers.ListField(child=serializers.DictField())
    tickets = serializers.ListField(child=serializers.DictField())
    manifest = serializers.DictField(allow_null=True)
    history = serializers.ListField(child=serializers.DictField())
    forwards = serializers.ListField(child=serializers.DictField())
    inventory = serializers.DictField(allow_null=True)
    can_expedite = serializers.BooleanField()
    patient = serializers.DictField(required=False, help_text="only for view_phi")


def answer(request, key, value):
    """The located studies, with patient data for view_phi (recorded), and a record of
    every search by patient ID."""
    phi = has_rule(request.user, "view_phi")
    found = locate.locate(key, value, phi=phi)
    if key == "patient_id":
        record_phi_access(request, "hybrid.locate.patient_id", count=len(found))
    elif phi and found:
        record_phi_access(request, "inventory.study", found[0]["study"], count=len(found))
    return found


@extend_schema(
    methods=["GET"],
    parameters=[OpenApiParameter("study", str, description="Study Instance UID", required=True)],
    responses=LocatedSerializer(many=True),
)
@extend_schema(methods=["POST"], request=LocateRequest, responses=LocatedSerializer(many=True))
@api_view(["GET", "POST"])
@permission_classes([RulePermission(READ)])
def locate_view(request):
    """Where is this study? GET ?study=UID; POST {accession | patient_id | study}."""
    data = (
        request.data if request.method == "POST" else {"study": request.query_params.get("study")}
    )
    if request.method == "GET" and set(request.query_params) - {"study", "format"}:
        return Response({"detail": "search by accession or patient ID with POST"}, status=400)
    query = LocateRequest(data={k: v for k, v in data.items() if v})
    query.is_valid(raise_exception=True)
    try:
        found = answer(request, **query.validated_data)
    except locate.LocateError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(LocatedSerializer(found, many=True).data)


LIVE_FIND = inline_serializer(
    "LiveFind",
    {
        "ok": serializers.BooleanField(),
        "found": serializers.BooleanField(),
        "instances": serializers.IntegerField(allow_null=True),
        "series": serializers.IntegerField(allow_null=True),
        "modalities": serializers.CharField(),
        "ms": serializers.FloatField(),
        "detail": serializers.CharField(),
    },
)


@extend_schema(request=None, responses=LIVE_FIND)
@api_view(["POST"])
@permission_classes([RulePermission(READ)])
def live_find_view(request, pk):
    """A C-FIND on the study's legacy PACS, now."""
    study = get_object_or_404(Study.objects.select_related("source"), pk=pk)
    return Response(locate.live_find(study.source, study.study_uid))


@extend_schema(
    request=None,
    responses=inline_serializer(
        "Expedited", {"study": serializers.CharField(), "outcome": serializers.CharField()}
    ),  # fmt: skip
)
@api_view(["POST"])
@permission_classes([RulePermission("expedite_studies")])
def migrate_now_view(request, pk):
    """Migrate now: put the study at the head of the engine's queue."""
    study = get_object_or_404(Study.objects.select_related("source"), pk=pk)
    return Response({"study": study.study_uid, "outcome": actions.migrate_now(study, request.user)})


# --- bridges, forwards, round trips -------------------------------------------------------


class BridgeSerializer(serializers.ModelSerializer):
    destination = serializers.SlugRelatedField(
        slug_field="name", queryset=Destination.objects.all()
    )
    source = serializers.SlugRelatedField(slug_field="name", queryset=PacsSource.objects.all())
    forwarding = serializers.SerializerMethodField()

    class Meta:
        model = Bridge
        fields = [
            "id", "name", "destination", "source", "lookback_days", "lag_objective_s",
            "enabled", "last_scan_at", "last_scan_detail", "forwarding",
        ]  # fmt: skip
        read_only_fields = ["last_scan_at", "last_scan_detail"]

    def get_forwarding(self, bridge) -> dict:
        return routing.route(bridge)


class ForwardSerializer(serializers.ModelSerializer):
    class Meta:
        model = Forward
        exclude = ["lease_owner", "lease_expires"]


class RoundTripSerializer(serializers.ModelSerializer):
    class Meta:
        model = RoundTrip
        exclude = ["started_by"]


BRIDGE_ACCESS = [ReadWrite(READ, "operate_migration")]


@extend_schema(methods=["GET"], responses=BridgeSerializer(many=True))
@extend_schema(methods=["POST"], request=BridgeSerializer, responses=BridgeSerializer)
@api_view(["GET", "POST"])
@permission_classes(BRIDGE_ACCESS)
def bridges_view(request):
    """Bridges: a cloud DICOMweb store whose new studies go to a legacy PACS."""
    if request.method == "GET":
        return Response(BridgeSerializer(Bridge.objects.all(), many=True).data)
    data = BridgeSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    try:
        bridge = actions.create_bridge(**data.validated_data, user=request.user)
    except actions.HybridError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(BridgeSerializer(bridge).data, status=status.HTTP_201_CREATED)


@extend_schema(responses=BridgeSerializer)
@api_view(["GET"])
@permission_classes([RulePermission(READ)])
def bridge_view(request, pk):
    return Response(BridgeSerializer(get_object_or_404(Bridge, pk=pk)).data)


@extend_schema(responses=ForwardSerializer(many=True))
@api_view(["GET"])
@permission_classes([RulePermission(READ)])
def forwards_view(request, pk):
    """The bridge's forward ledger, newest first (the last 200)."""
    bridge = get_object_or_404(Bridge, pk=pk)
    return Response(ForwardSerializer(bridge.forwards.all()[:200], many=True).data)


@extend_schema(request=None, responses=ForwardSerializer)
@api_view(["POST"])
@permission_classes([RulePermission("operate_migration")])
def forward_retry_view(request, pk):
    """Queue a quarantined forward again."""
    row = get_object_or_404(Forward.objects.select_related("bridge"), pk=pk)
    try:
        actions.retry_forward(row)
    except actions.HybridError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    row.refresh_from_db()
    return Response(ForwardSerializer(row).data)


@extend_schema(methods=["GET"], responses=RoundTripSerializer(many=True))
@extend_schema(methods=["POST"], request=None, responses=RoundTripSerializer)
@api_view(["GET", "POST"])
@permission_classes(BRIDGE_ACCESS)
def round_trips_view(request, pk):
    """The bridge's round-trip probes (history, newest first); POST starts one."""
    bridge = get_object_or_404(Bridge, pk=pk)
    if request.method == "GET":
        return Response(RoundTripSerializer(bridge.round_trips.all()[:100], many=True).data)
    trip = actions.start_round_trip(bridge, request.user)
    return Response(RoundTripSerializer(trip).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=RoundTripSerializer)
@api_view(["GET"])
@permission_classes([RulePermission(READ)])
def round_trip_view(request, pk):
    return Response(RoundTripSerializer(get_object_or_404(RoundTrip, pk=pk)).data)


@extend_schema(
    request=inline_serializer("SignFromRoundTrip", {"stage": serializers.IntegerField()}),
    responses=inline_serializer("Signed", {"signed": serializers.ListField()}),
)
@api_view(["POST"])
@permission_classes([RulePermission("edit_roadmap")])
def sign_view(request, pk):
    """Sign the flow items of a Verify bidirectional flow stage from this round trip."""
    trip = get_object_or_404(RoundTrip.objects.select_related("bridge"), pk=pk)
    stage_id = request.data.get("stage")
    if not str(stage_id or "").isdigit():
        return Response({"stage": ["the id of a cutover stage"]}, status=400)
    stage = get_object_or_404(Stage.objects.select_related("plan__integration"), pk=stage_id)
    try:
        signed = actions.sign_from_round_trip(stage, trip, request.user)
    except actions.HybridError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return Response({"signed": [item.text for item in signed]})
