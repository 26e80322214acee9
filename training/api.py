"""REST API for training and feedback: thin adapters over `training.actions`."""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from core.access import ReadWrite, RulePermission
from core.audit import record_phi_access
from training import actions, permissions, queries, reports
from training.actions import TrainingError
from training.forms import SessionForm
from training.models import (
    ClinicianProfile,
    Department,
    Enrolment,
    Feedback,
    Highlight,
    Module,
    SignOff,
    TrainingSession,
)
from training.permissions import Allowed
from training.readiness import clinicians, readiness_by_department, totals
from training.serializers import (
    ClinicianProfileSerializer,
    EnrolmentSerializer,
    FeedbackCreateSerializer,
    FeedbackDetailSerializer,
    FeedbackReplySerializer,
    FeedbackSerializer,
    FeedbackTriageSerializer,
    MaterialSerializer,
    SignOffCreateSerializer,
    SignOffSerializer,
    TrainingAttendanceSerializer,
    TrainingDepartmentSerializer,
    TrainingModuleCreateSerializer,
    TrainingModuleSerializer,
    TrainingReadinessSerializer,
    TrainingSessionSerializer,
    ViewerHighlightSerializer,
)

VIEW, MANAGE = RulePermission("view_training"), RulePermission("manage_training")
VIEW_MANAGE = ReadWrite("view_training", "manage_training")


def refusal(exc):
    return Response({"detail": exc.message}, status=exc.status)


class ModuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training modules and their competency checklists."""

    queryset = Module.objects.prefetch_related("items")
    serializer_class = TrainingModuleSerializer
    permission_classes = [VIEW_MANAGE]

    @extend_schema(
        request=TrainingModuleCreateSerializer, responses={201: TrainingModuleSerializer}
    )
    def create(self, request):
        if not permissions.may_manage(request.user):
            raise PermissionDenied("Only the project team adds modules.")
        body = TrainingModuleCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        module = actions.create_module(data["title"], summary=data["summary"], items=data["items"])
        return Response(TrainingModuleSerializer(module).data, status=status.HTTP_201_CREATED)


class DepartmentViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Departments; the project team adds them."""

    queryset = Department.objects.all()
    serializer_class = TrainingDepartmentSerializer
    permission_classes = [VIEW_MANAGE]

    @extend_schema(
        request=TrainingDepartmentSerializer, responses={201: TrainingDepartmentSerializer}
    )
    def create(self, request):
        if not permissions.may_manage(request.user):
            raise PermissionDenied("Only the project team adds departments.")
        body = TrainingDepartmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            department = actions.add_department(body.validated_data["name"])
        except TrainingError as exc:
            return refusal(exc)
        return Response(TrainingDepartmentSerializer(department).data, status=201)


class ProfileViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Clinician profiles (department, lead user, contact), by user id; project team only."""

    queryset = ClinicianProfile.objects.select_related("user", "department")
    serializer_class = ClinicianProfileSerializer
    permission_classes = [MANAGE]
    lookup_field = "user"
    lookup_value_converter = "int"

    @extend_schema(request=ClinicianProfileSerializer, responses=ClinicianProfileSerializer)
    def partial_update(self, request, user=None):
        """Create or change a clinician's profile; only the fields sent change."""
        person = get_object_or_404(clinicians(), pk=user)
        body = ClinicianProfileSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        profile = actions.set_profile(person, **body.validated_data)
        return Response(ClinicianProfileSerializer(profile).data)


class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training sessions: upcoming by default, `?past=1` for past ones."""

    serializer_class = TrainingSessionSerializer

    def get_permissions(self):
        """Creating a session is for the project team; enrolling is for everyone."""
        return [(MANAGE if self.action == "create" else VIEW)()]

    def get_queryset(self):
        past = self.request.query_params.get("past") == "1"
        if self.action != "list":
            return TrainingSession.objects.all()
        return queries.sessions(past=past).prefetch_related(
            "materials", "audience_roles", "audience_departments"
        )

    @extend_schema(
        parameters=[OpenApiParameter("past", bool, description="past sessions instead")],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=TrainingSessionSerializer, responses={201: TrainingSessionSerializer})
    def create(self, request):
        """Create a session (project team). Fields as in the session form; audience as ids."""
        if not permissions.may_manage(request.user):
            raise PermissionDenied("Only the project team creates sessions.")
        form = SessionForm(request.data)
        if not form.is_valid():
            return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        session = actions.save_session(form, request.user)
        return Response(TrainingSessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: EnrolmentSerializer})
    @action(detail=True, methods=["post"])
    def enrol(self, request, pk=None):
        """Take a seat, or a waitlist place when full (status tells which)."""
        try:
            enrolment = actions.enrol(int(pk), request.user)
        except TrainingSession.DoesNotExist:
            return Response({"detail": "No such session."}, status=404)
        except TrainingError as exc:
            return refusal(exc)
        return Response(EnrolmentSerializer(enrolment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=EnrolmentSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel your place; the next person on the waitlist gets the seat."""
        try:
            enrolment, _ = actions.cancel(int(pk), request.user)
        except TrainingSession.DoesNotExist:
            return Response({"detail": "No such session."}, status=404)
        except TrainingError as exc:
            return refusal(exc)
        return Response(EnrolmentSerializer(enrolment).data)

    @extend_schema(
        request=TrainingAttendanceSerializer,
        responses=inline_serializer(
            "TrainingAttendanceResult",
            {"present": serializers.IntegerField(), "absent": serializers.IntegerField()},
        ),
    )
    @action(detail=True, methods=["post"])
    def attendance(self, request, pk=None):
        """Trainer: the ids of the enrolled people who came; everyone else is absent."""
        session = get_object_or_404(TrainingSession, pk=pk)
        body = TrainingAttendanceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = actions.record_attendance(
                session.pk, request.user, body.validated_data["present"]
            )
        except TrainingError as exc:
            return refusal(exc)
        return Response(result)

    @extend_schema(request=MaterialSerializer, responses={201: MaterialSerializer})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser, JSONParser])
    def materials(self, request, pk=None):
        """Trainer and project team: add a link or a file (multipart) to the session."""
        session = get_object_or_404(TrainingSession, pk=pk)
        if not permissions.may_take_attendance(request.user, session):
            raise PermissionDenied("Only the trainer or the project team add materials.")
        body = MaterialSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        material = actions.add_material(
            session,
            request.user,
            title=data["title"],
            url=data.get("url", ""),
            upload=data.get("file"),
        )
        return Response(MaterialSerializer(material).data, status=201)

    @extend_schema(responses=EnrolmentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def roster(self, request, pk=None):
        """Trainer and project team: enrolled and waitlisted people, in waitlist order."""
        session = get_object_or_404(TrainingSession, pk=pk)
        if not permissions.may_take_attendance(request.user, session):
            raise PermissionDenied("The roster is for the trainer and the project team.")
        rows = session.enrolments.exclude(status="cancelled").select_related("user")
        return Response(EnrolmentSerializer(rows, many=True).data)


@extend_schema(responses=EnrolmentSerializer(many=True))
@api_view(["GET"])
@permission_classes([VIEW])
def my_enrolments(request):
    """Your enrolments (including waitlist places and cancellations)."""
    rows = Enrolment.objects.filter(user=request.user).order_by("session__starts_at")
    return Response(EnrolmentSerializer(rows, many=True).data)


class SignOffViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Competency sign-offs: yours, or all of them for those who sign off."""

    serializer_class = SignOffSerializer
    permission_classes = [VIEW]

    def get_queryset(self):
        qs = SignOff.objects.select_related("clinician", "signed_by")
        if permissions.may_sign_off_anyone(self.request.user):
            return qs
        return qs.filter(clinician=self.request.user)

    @extend_schema(request=SignOffCreateSerializer, responses={201: SignOffSerializer})
    def create(self, request):
        body = SignOffCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        clinician = get_object_or_404(get_user_model(), pk=data["clinician"])
        try:
            record = actions.sign_off(
                data["module"].pk, clinician, request.user, data["items"], note=data["note"]
            )
        except TrainingError as exc:
            return refusal(exc)
        return Response(SignOffSerializer(record).data, status=status.HTTP_201_CREATED)


class FeedbackViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Viewer feedback. Clinicians see their own; lead users, the project team and
    command-center staff see all. The accession number appears only in the detail view and
    only for `view_phi` holders (audited)."""

    queryset = Feedback.objects.none()  # for the schema; get_queryset decides
    serializer_class = FeedbackSerializer
    permission_classes = [RulePermission("give_feedback")]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return queries.visible_feedback(self.request.user)

    @extend_schema(request=FeedbackCreateSerializer, responses={201: FeedbackSerializer})
    def create(self, request):
        """Send feedback (multipart for a screenshot). "blocks" raises a ticket at once."""
        body = FeedbackCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        feedback = actions.submit_feedback(request.user, **body.validated_data)
        return Response(FeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=FeedbackDetailSerializer)
    def retrieve(self, request, pk=None):
        feedback = get_object_or_404(self.get_queryset(), pk=pk)
        if feedback.accession_number and permissions.may_see_phi(request.user):
            record_phi_access(request, "training.feedback.accession", feedback.pk)
            return Response(FeedbackDetailSerializer(feedback).data)
        return Response(FeedbackSerializer(feedback).data)

    @extend_schema(request=FeedbackTriageSerializer, responses=FeedbackSerializer)
    @action(detail=True, methods=["post"])
    def triage(self, request, pk=None):
        """Lead users and project team: set themes (by name) and status."""
        body = FeedbackTriageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        get_object_or_404(self.get_queryset(), pk=pk)
        try:
            feedback = actions.triage_feedback(int(pk), request.user, **body.validated_data)
        except TrainingError as exc:
            return refusal(exc)
        return Response(FeedbackSerializer(feedback).data)

    @extend_schema(request=FeedbackReplySerializer, responses=FeedbackSerializer)
    @action(detail=True, methods=["post"])
    def reply(self, request, pk=None):
        """Lead users and project team: answer the clinician (and optionally move status)."""
        body = FeedbackReplySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        get_object_or_404(self.get_queryset(), pk=pk)
        data = body.validated_data
        try:
            feedback = actions.reply_to_feedback(
                int(pk), request.user, data["reply"], status=data.get("status")
            )
        except TrainingError as exc:
            return refusal(exc)
        return Response(FeedbackSerializer(feedback).data)

    @extend_schema(
        responses=inline_serializer(
            "FeedbackStats",
            {
                "summary": serializers.DictField(child=serializers.IntegerField()),
                "by_kind": serializers.DictField(child=serializers.DictField()),
                "volume": serializers.ListField(child=serializers.DictField()),
                "themes": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    @action(
        detail=False,
        methods=["get"],
        permission_classes=[Allowed(permissions.may_see_all_feedback)],
    )
    def stats(self, request):
        """Volume by week and severity, counts by kind and severity, top themes."""
        if not permissions.may_see_all_feedback(request.user):
            raise PermissionDenied("Feedback figures are for lead users and the project team.")
        return Response(
            {
                "summary": reports.feedback_summary(),
                "by_kind": reports.feedback_by_kind(),
                "volume": reports.feedback_volume(),
                "themes": reports.top_themes(),
            }
        )


@extend_schema(
    parameters=[OpenApiParameter("module", int, description="one module (default: all active)")],
    responses=TrainingReadinessSerializer,
)
@api_view(["GET"])
@permission_classes([VIEW])
def readiness(request):
    """Share of clinicians trained and signed off, per department and overall."""
    module = request.query_params.get("module")
    if module is not None:
        module = get_object_or_404(Module, pk=module)
    rows = readiness_by_department(module)
    return Response({"overall": totals(rows), "departments": rows})


class HighlightViewSet(viewsets.ModelViewSet):
    """ "What's new in the cloud viewer": everyone reads, the project team writes."""

    queryset = Highlight.objects.all()
    serializer_class = ViewerHighlightSerializer
    http_method_names = ["get", "post", "patch", "delete"]

    def get_permissions(self):
        return [(VIEW if self.action in ("list", "retrieve") else MANAGE)()]

    def perform_create(self, serializer):
        highlight = Highlight(**serializer.validated_data)
        serializer.instance = actions.save_highlight(highlight, self.request.user)

    def perform_update(self, serializer):
        for field, value in serializer.validated_data.items():
            setattr(serializer.instance, field, value)
        actions.save_highlight(serializer.instance, self.request.user)

    def perform_destroy(self, instance):
        actions.delete_highlight(instance.pk)
