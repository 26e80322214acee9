"""REST API of the inventory (/inventory/api/...): thin adapters over actions and reports.

Reading needs `view_inventory`, changing needs `operate_inventory`. Patient names, IDs
and accession numbers are only in study responses for `view_phi`, and every such response
is recorded in the PHI access log.
"""

import io

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from core.access import ReadWrite, RulePermission, has_rule
from core.audit import record_phi_access
from inventory import actions, reports, tasks, witness
from inventory.catalogue import KINDS
from inventory.forms import StudyFilterForm
from inventory.models import (
    CrawlRange,
    CrawlRun,
    PacsSource,
    Study,
    ViewerCapability,
    Witness,
)

ReadOrOperate = ReadWrite("view_inventory", "operate_inventory")


# -- sources -------------------------------------------------------------------------------


class PacsSourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = PacsSource
        fields = [
            "id",
            *PacsSource.SETTINGS,
            "last_echo_at",
            "last_echo_ok",
            "last_echo_ms",
            "last_echo_message",
        ]
        read_only_fields = ["last_echo_at", "last_echo_ok", "last_echo_ms", "last_echo_message"]

    def validate(self, attrs):
        return _model_validation(self, attrs)


EchoSerializer = inline_serializer(
    "EchoResult",
    {
        "ok": serializers.BooleanField(),
        "ms": serializers.FloatField(allow_null=True),
        "message": serializers.CharField(),
    },
)


class CrawlStartSerializer(serializers.Serializer):
    since = serializers.DateField(required=False, allow_null=True)
    with_series = serializers.BooleanField(default=True)


class ScanSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="a folder below one of INVENTORY_SCAN_ROOTS")
    threads = serializers.IntegerField(default=4, min_value=1, max_value=32)


class ListingSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV with a StudyInstanceUID column")


class WitnessedSerializer(serializers.Serializer):
    witness = serializers.IntegerField()
    files = serializers.IntegerField()
    studies = serializers.IntegerField()
    instances = serializers.IntegerField()
    unreadable = serializers.ListField(child=serializers.DictField())


class CompareSerializer(serializers.Serializer):
    crawl = serializers.IntegerField()
    witness = serializers.IntegerField()
    kind = serializers.CharField()
    crawled_studies = serializers.IntegerField()
    witness_studies = serializers.IntegerField()
    only_in_witness = serializers.ListField(child=serializers.CharField())
    only_in_crawl = serializers.ListField(child=serializers.CharField())
    agree = serializers.BooleanField()


class PacsSourceViewSet(viewsets.ModelViewSet):
    """Legacy PACS sources. POST .../echo/ runs C-ECHO; POST .../crawl/ starts a crawl;
    .../scan/ and .../listing/ record a second witness, .../compare/ checks the crawl."""

    queryset = PacsSource.objects.all()
    serializer_class = PacsSourceSerializer
    permission_classes = [ReadOrOperate]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        source, _ = actions.register_source(
            data.pop("name"), data.pop("ae_title"), data.pop("host"), data.pop("port"), **data
        )
        serializer.instance = source

    def destroy(self, request, *args, **kwargs):
        source = self.get_object()
        if source.studies.exists() or source.crawls.exists():
            return Response(
                {"detail": "this source has an inventory; it cannot be deleted"},
                status=status.HTTP_409_CONFLICT,
            )
        return super().destroy(request, *args, **kwargs)

    @extend_schema(request=None, responses=EchoSerializer)
    @action(detail=True, methods=["post"])
    def echo(self, request, pk=None):
        result = actions.echo_source(self.get_object())
        return Response({"ok": result.ok, "ms": result.ms, "message": result.message})

    @extend_schema(request=CrawlStartSerializer, responses={201: "CrawlRunSerializer"})
    @action(detail=True, methods=["post"])
    def crawl(self, request, pk=None):
        source = self.get_object()
        params = CrawlStartSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            run = actions.start_crawl(source, user=request.user, **params.validated_data)
        except actions.CrawlError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(CrawlRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ScanSerializer,
        responses={
            202: inline_serializer(
                "ScanQueued",
                {"queued": serializers.BooleanField(), "path": serializers.CharField()},
            )
        },
    )
    @action(detail=True, methods=["post"])
    def scan(self, request, pk=None):
        """Queue a read-only scan of the PACS's storage folder (a Celery task)."""
        source = self.get_object()
        params = ScanSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            path = witness.allowed_path(
                params.validated_data["path"], settings.INVENTORY_SCAN_ROOTS
            )
        except witness.ListingError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        tasks.scan.delay(source.pk, path, params.validated_data["threads"])
        return Response({"queued": True, "path": path}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request={"multipart/form-data": ListingSerializer}, responses={201: WitnessedSerializer}
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def listing(self, request, pk=None):
        """Record a CSV export of the PACS database (a StudyInstanceUID column)."""
        source = self.get_object()
        params = ListingSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        upload = params.validated_data["file"]
        try:
            lines = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
            seen = witness.read_listing(lines)
        except (UnicodeDecodeError, witness.ListingError) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        found = actions.record_witness(source, "listing", upload.name, seen)
        return Response({"witness": found.pk, **seen.summary()}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=CompareSerializer)
    @action(detail=True, methods=["post"])
    def compare(self, request, pk=None):
        """The last finished crawl against the last witness; witness-only studies join."""
        try:
            result = actions.compare_witness(self.get_object())
        except actions.CrawlError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(result)


# -- crawls --------------------------------------------------------------------------------


class CrawlRunSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = CrawlRun
        fields = [
            "id",
            "source",
            "status",
            "phase",
            "since",
            "with_series",
            "created_at",
            "started_at",
            "finished_at",
            "cancel_requested",
            "detected_cap",
            "queries",
            "studies_found",
            "studies_new",
            "studies_changed",
            "studies_vanished",
            "series_found",
            "instances_found",
            "problems",
            "complete",
            "unproven",
            "complete_reason",
            "proof",
            "error",
            "progress",
        ]

    @extend_schema(responses=serializers.DictField())
    def get_progress(self, run):
        return actions.progress_stats(run)


class CrawlRangeSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)

    class Meta:
        model = CrawlRange
        fields = [
            "id",
            "parent",
            "kind",
            "level",
            "label",
            "date_from",
            "date_to",
            "time_from",
            "time_to",
            "modality",
            "status",
            "count",
            "unique_count",
            "capped",
            "note",
        ]


class CrawlRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Crawls with their progress; POST .../cancel/ stops one; .../ranges/ is its ledger."""

    queryset = CrawlRun.objects.select_related("source")
    serializer_class = CrawlRunSerializer
    permission_classes = [ReadOrOperate]

    @extend_schema(request=None, responses=CrawlRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        try:
            run = actions.cancel_crawl(self.get_object())
        except actions.CrawlError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(CrawlRunSerializer(run).data)

    @extend_schema(responses=CrawlRangeSerializer(many=True))
    @action(detail=True, methods=["get"])
    def ranges(self, request, pk=None):
        run = self.get_object()
        page = self.paginate_queryset(run.ranges.order_by("pk"))
        return self.get_paginated_response(CrawlRangeSerializer(page, many=True).data)


# -- witnesses -----------------------------------------------------------------------------


class WitnessSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", read_only=True)
    unreadable = serializers.SerializerMethodField(help_text="{reason: files}")

    class Meta:
        model = Witness
        fields = ["id", "source", "kind", "location", "created_at", "files", "studies",
                  "instances", "unreadable", "compared_run", "comparison"]  # fmt: skip

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField()))
    def get_unreadable(self, found):
        return reports.unreadable_reasons(found)


class WitnessViewSet(viewsets.ReadOnlyModelViewSet):
    """Storage scans and database listings of the sources, with their last comparison."""

    queryset = Witness.objects.select_related("source")
    serializer_class = WitnessSerializer
    permission_classes = [ReadOrOperate]


# -- studies -------------------------------------------------------------------------------


class StudySerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Study
        fields = [
            "id",
            "source",
            "study_uid",
            "study_date",
            "study_time",
            "description",
            "modalities",
            "num_series",
            "num_instances",
            "charset",
            "problems",
            "found_by",
            "vanished",
            "first_seen",
            "last_seen",
        ]


class StudyPHISerializer(StudySerializer):
    class Meta(StudySerializer.Meta):
        fields = [*StudySerializer.Meta.fields, "patient_id", "patient_name", "accession_number"]


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 100


STUDY_FILTERS = [
    OpenApiParameter("source", int),
    OpenApiParameter("modality", str),
    OpenApiParameter("date_from", str, description="YYYY-MM-DD"),
    OpenApiParameter("date_to", str, description="YYYY-MM-DD"),
    OpenApiParameter("undated", bool),
    OpenApiParameter("problems", bool),
    OpenApiParameter("vanished", bool),
    OpenApiParameter("uid", str),
]


class PhiSearchSerializer(serializers.Serializer):
    patient_id = serializers.CharField(required=False, max_length=64)
    accession = serializers.CharField(required=False, max_length=16)


@extend_schema(parameters=STUDY_FILTERS)
class StudyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The study ledger, newest first, by cursor. PHI fields only with `view_phi`; search by
    patient ID or accession number with POST .../search/ (never in a URL)."""

    permission_classes = [RulePermission("view_inventory")]
    pagination_class = NewestFirst

    def get_queryset(self):
        form = StudyFilterForm(self.request.query_params or None)
        filters = form.cleaned_data if form.is_valid() else {}
        filters = {k: v for k, v in filters.items() if k not in ("patient_id", "accession")}
        return reports.filter_studies(Study.objects.select_related("source"), filters)

    def get_serializer_class(self):
        return StudyPHISerializer if self._phi() else StudySerializer

    def _phi(self):
        return has_rule(self.request.user, "view_phi")

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self._phi() and response.status_code == 200:
            shown = _count_shown(response.data)
            if shown:
                record_phi_access(request, "inventory.study", kwargs.get("pk", "api"), shown)
        return response

    @extend_schema(request=PhiSearchSerializer, responses=StudyPHISerializer(many=True))
    @action(
        detail=False,
        methods=["post"],
        permission_classes=[RulePermission("view_phi")],
        pagination_class=None,
    )
    def search(self, request):
        params = PhiSearchSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        if not params.validated_data:
            raise serializers.ValidationError("give patient_id or accession")
        rows = reports.filter_studies(Study.objects.select_related("source"), params.validated_data)
        return Response(StudyPHISerializer(rows.order_by("-id")[:500], many=True).data)


def _count_shown(data):
    if isinstance(data, dict) and "results" in data:
        return len(data["results"])
    if isinstance(data, list):
        return len(data)
    return 1 if isinstance(data, dict) and "study_uid" in data else 0


# -- summary -------------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("source", int),
        OpenApiParameter("horizon", int, description="months to project"),
    ],
    responses=inline_serializer(
        "InventorySummary",
        {
            "totals": serializers.DictField(),
            "by_modality": serializers.ListField(child=serializers.DictField()),
            "by_year": serializers.DictField(),
            "growth": serializers.DictField(),
            "formats": serializers.DictField(),
            "problems": serializers.DictField(),
        },
    ),
)
@api_view(["GET"])
@permission_classes([RulePermission("view_inventory")])
def summary_view(request):
    """Totals, volumes by modality and year, growth with projection, formats, problems."""
    pk = request.query_params.get("source")
    source = get_object_or_404(PacsSource, pk=pk) if pk else None
    try:
        horizon = min(120, max(1, int(request.query_params.get("horizon", 12))))
    except ValueError:
        horizon = 12
    years, stacks = reports.by_year(source)
    growth = reports.growth(source, horizon=horizon)
    return Response(
        {
            "totals": reports.totals(source),
            "by_modality": reports.by_modality(source),
            "by_year": {"years": years, "modalities": stacks},
            "growth": {
                "actual": [{"month": m, "studies": n} for m, n in growth["actual"]],
                "projection": [{"month": m, "studies": n} for m, n in growth["projection"]],
                "per_month": growth["per_month"],
                "projected_new": growth["projected_new"],
            },
            "formats": reports.formats(source),
            "problems": reports.problem_counts(source),
        }
    )


# -- the environment catalogue ---------------------------------------------------------------


class ViewerCapabilitySerializer(serializers.ModelSerializer):
    class Meta:
        model = ViewerCapability
        fields = ["id", "code", "name", "standard"]
        read_only_fields = ["standard"]


class ViewerCapabilityViewSet(viewsets.ModelViewSet):
    """The viewer capability checklist: the standard ones plus free entries."""

    queryset = ViewerCapability.objects.all()
    serializer_class = ViewerCapabilitySerializer
    permission_classes = [ReadOrOperate]


def _catalogue_viewset(kind):
    meta = type("Meta", (), {"model": kind.model, "fields": ["id", *kind.form.Meta.fields]})
    serializer = type(
        f"{kind.model.__name__}Serializer",
        (serializers.ModelSerializer,),
        {"Meta": meta, "validate": _model_validation},
    )
    return type(
        f"{kind.model.__name__}ViewSet",
        (viewsets.ModelViewSet,),
        {
            "queryset": kind.model.objects.all(),
            "serializer_class": serializer,
            "permission_classes": [ReadOrOperate],
            "__doc__": f"{kind.title}: {kind.intro}",
        },
    )


def _model_validation(self, attrs):
    plain = {k: v for k, v in attrs.items() if not isinstance(v, list)}
    instance = self.Meta.model(**plain) if self.instance is None else self.instance
    for key, value in plain.items():
        setattr(instance, key, value)
    try:
        instance.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None
    return attrs


CATALOGUE_VIEWSETS = {slug: _catalogue_viewset(kind) for slug, kind in KINDS.items()}
