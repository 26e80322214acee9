"""REST API of the design, conformance and forecast (under /migration/api/): thin adapters
over actions and planning. Designs: `view_design` to read, `edit_design` to change and to
run a check; waivers: `waive_conformance`; forecast and prices: `view_forecast` to read,
`edit_forecast` to change."""

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from core.access import ReadWrite, RulePermission
from migration import actions, planning
from migration.forms import WhatIfForm
from migration.models import (
    ConformanceRun,
    ConformanceWaiver,
    Destination,
    DestinationDesign,
    ForecastAssumptions,
    PriceList,
    Wave,
)


class DesignSerializer(serializers.ModelSerializer):
    destination = serializers.SlugRelatedField(
        slug_field="name", queryset=Destination.objects.all()
    )

    class Meta:
        model = DestinationDesign
        exclude = ["updated_by"]
        read_only_fields = ["updated_at"]

    def validate_required_tags(self, tags):
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise serializers.ValidationError('an object of strings: {"key": "value"}')
        if len(tags) > 50 or any(
            not 0 < len(k) <= 128 or len(v) > 256 or "\x00" in k + v for k, v in tags.items()
        ):
            raise serializers.ValidationError(
                "at most 50 tags, keys of 1–128 and values of up to 256 characters, no NUL"
            )
        return tags

    def save(self, **kwargs):
        data = dict(self.validated_data)
        destination = data.pop("destination", None) or self.instance.destination
        user = self.context["request"].user
        try:
            self.instance = actions.save_design(destination, user, **data)
        except actions.ActionError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        return self.instance


class DesignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Each destination's target design (one per destination; changes are audited)."""

    queryset = DestinationDesign.objects.select_related("destination").order_by("destination__name")
    serializer_class = DesignSerializer
    permission_classes = [ReadWrite("view_design", "edit_design")]


class ConformanceSerializer(serializers.ModelSerializer):
    destination = serializers.SlugRelatedField(
        slug_field="name", queryset=Destination.objects.all()
    )

    class Meta:
        model = ConformanceRun
        fields = ["id", "destination", "trigger", "conforms", "requirements", "error",
                  "checked_at"]  # fmt: skip
        read_only_fields = ["trigger", "conforms", "requirements", "error", "checked_at"]


class ConformanceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    """Conformance checks: POST {"destination": name} runs one now against the store."""

    queryset = ConformanceRun.objects.select_related("destination")
    serializer_class = ConformanceSerializer
    permission_classes = [ReadWrite("view_design", "edit_design")]

    def get_queryset(self):
        rows = super().get_queryset()
        name = self.request.query_params.get("destination")
        return rows.filter(destination__name=name) if name else rows

    def perform_create(self, serializer):
        destination = serializer.validated_data["destination"]
        serializer.instance = actions.check_conformance(destination, user=self.request.user)


class WaiverSerializer(serializers.ModelSerializer):
    wave = serializers.SlugRelatedField(slug_field="name", queryset=Wave.objects.all())
    granted_by = serializers.StringRelatedField()

    class Meta:
        model = ConformanceWaiver
        fields = ["id", "wave", "reason", "granted_by", "granted_at"]
        read_only_fields = ["granted_by", "granted_at"]


class WaiverViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """A lead's waiver letting one wave start against a non-conforming destination."""

    queryset = ConformanceWaiver.objects.select_related("wave", "granted_by")
    serializer_class = WaiverSerializer
    permission_classes = [ReadWrite("view_design", "waive_conformance")]

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = actions.waive_conformance(
                data["wave"], self.request.user, data["reason"]
            )
        except actions.ActionError as exc:
            raise serializers.ValidationError({"reason": str(exc)}) from None


class PriceListSerializer(serializers.ModelSerializer):
    class Meta:
        model = PriceList
        fields = ["id", "name", "region", "currency", "taken_on", "source", "prices"]
        extra_kwargs = {"prices": {"required": True}}  # the forecast costs with every key

    def validate_prices(self, prices):
        from migration.forecast import price_problem

        if problem := price_problem(prices):
            raise serializers.ValidationError(problem)
        return prices


class PriceListViewSet(viewsets.ModelViewSet):
    """Cloud list prices with the date they were taken (editable data, no look-up)."""

    queryset = PriceList.objects.all()
    serializer_class = PriceListSerializer
    permission_classes = [ReadWrite("view_forecast", "edit_forecast")]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]


class AssumptionsSerializer(serializers.ModelSerializer):
    class Meta:
        model = ForecastAssumptions
        exclude = ["id"]
        read_only_fields = ["updated_at"]


@extend_schema(
    parameters=[
        OpenApiParameter("hosts", int),
        OpenApiParameter("link_mbps", float),
        OpenApiParameter("hours_per_day", float),
        OpenApiParameter("target_date", OpenApiTypes.DATE),
    ],  # fmt: skip
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([RulePermission("view_forecast")])
def forecast(request):
    """The forecast (the keys of `manage.py plan --json`); query parameters are what-ifs."""
    form = WhatIfForm(request.query_params)
    if not form.is_valid():
        return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
    return Response(planning.plan(**form.overrides()))


@extend_schema(request=AssumptionsSerializer, responses=AssumptionsSerializer)
@api_view(["GET", "PUT", "PATCH"])
@permission_classes([ReadWrite("view_forecast", "edit_forecast")])
def assumptions(request):
    """The forecast's saved assumptions (one record)."""
    current = ForecastAssumptions.get()
    if request.method == "GET":
        return Response(AssumptionsSerializer(current).data)
    serializer = AssumptionsSerializer(
        current, data=request.data, partial=request.method == "PATCH"
    )
    serializer.is_valid(raise_exception=True)
    serializer.save()
    return Response(serializer.data)


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@permission_classes([RulePermission("view_design")])
def latest_conformance(request, name):
    """The latest conformance check of one destination ({} when never checked)."""
    destination = get_object_or_404(Destination, name=name)
    run = ConformanceRun.objects.filter(destination=destination).first()
    return Response(ConformanceSerializer(run).data if run else {})


router = SimpleRouter()
router.register("api/designs", DesignViewSet, basename="api-design")
router.register("api/conformance", ConformanceViewSet, basename="api-conformance")
router.register("api/waivers", WaiverViewSet, basename="api-waiver")
router.register("api/prices", PriceListViewSet, basename="api-price-list")
urlpatterns = [
    path("api/forecast/", forecast, name="api-forecast"),
    path("api/forecast/assumptions/", assumptions, name="api-forecast-assumptions"),
    path(
        "api/destinations/<slug:name>/conformance/",
        latest_conformance,
        name="api-destination-conformance",
    ),  # fmt: skip
    *router.urls,
]
