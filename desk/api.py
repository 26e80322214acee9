from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from core.access import ReadWrite, RulePermission, has_rule
from desk import (
    catalog,
    measures,
    notifications,
    priority,
    reports,
    roster,
    sla,
    tickets,
    triage,
    workflow,
)
from desk.forms import assignable_users
from desk.models import (
    Attachment,
    Comment,
    EscalationPolicy,
    EscalationStep,
    HandoffNote,
    MetricSample,
    Monitor,
    Notification,
    Override,
    Rotation,
    RotationMember,
    Ticket,
    TicketEvent,
)

# --- The 24/7 command center ----------------------------------------------------------------


class UserField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return assignable_users()


class TicketSerializer(serializers.ModelSerializer):
    reporter = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    assignee = UserField(required=False, allow_null=True)
    sla = serializers.SerializerMethodField()
    breached = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "title",
            "description",
            "category",
            "team",
            "department",
            "reporter",
            "assignee",
            "impact",
            "urgency",
            "priority",
            "status",
            "source",
            "cause",
            "occurrences",
            "last_seen",
            "links",
            "opened_at",
            "updated_at",
            "acknowledged_at",
            "resolved_at",
            "closed_at",
            "ack_due",
            "resolve_due",
            "paused_since",
            "escalations",
            "sla",
            "breached",
        ]
        read_only_fields = [
            f for f in fields if f not in (*tickets.EDITABLE_ALL, "id", "reporter", "cause")
        ]
        extra_kwargs = {"cause": {"required": False, "validators": []}}
        validators = []  # a repeated cause counts on the open ticket (see TicketList.create)

    @extend_schema_field(serializers.DictField())
    def get_sla(self, ticket):
        clock = sla.clock(ticket)
        return {k: v for k, v in clock.items() if k != "due"} | (
            {"due": clock["due"]} if "due" in clock else {}
        )

    def get_breached(self, ticket) -> bool:
        return sla.is_breached(ticket)

    def validate_links(self, links):
        if not isinstance(links, dict) or set(links) - set(catalog.LINK_KINDS):
            raise serializers.ValidationError(
                f"links maps some of {', '.join(catalog.LINK_KINDS)} to ids"
            )
        return links


class TicketList(generics.ListCreateAPIView):
    """Tickets (filters: status, priority, category, assignee, mine, breached). POST opens
    one; with a `cause`, a second POST of the same cause counts on the open ticket (200)."""

    serializer_class = TicketSerializer
    permission_classes = [ReadWrite("view_board", "open_tickets")]

    def get_queryset(self):
        params = self.request.query_params
        queryset = Ticket.objects.select_related("assignee", "reporter").order_by("-opened_at")
        if params.get("status") in workflow.STATUSES:
            queryset = queryset.filter(status=params["status"])
        filters = triage.parse_filters(params)
        return triage.apply_filters(queryset, filters, self.request.user, timezone.now())

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        cause = data.pop("cause", "")
        if cause:
            alert = {**data, "source": "api", "cause": cause, "detail": data.get("description", "")}
            ticket, created = tickets.ingest_alert(alert)
        else:
            ticket = tickets.create_ticket(**data, reporter=request.user, source="api")
            created = True
        body = TicketSerializer(ticket, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TicketDetail(generics.RetrieveUpdateAPIView):
    """One ticket; PATCH changes fields (impact or urgency recompute the priority)."""

    serializer_class = TicketSerializer
    permission_classes = [ReadWrite("view_board", "triage_tickets")]
    queryset = Ticket.objects.select_related("assignee", "reporter")
    http_method_names = ["get", "patch", "head", "options"]

    def perform_update(self, serializer):
        changes = {k: v for k, v in serializer.validated_data.items() if k in tickets.EDITABLE_ALL}
        serializer.instance = tickets.update_ticket(
            Ticket.objects.get(pk=serializer.instance.pk), self.request.user, **changes
        )


def _ticket(pk):
    return get_object_or_404(Ticket, pk=pk)


@extend_schema(
    request=inline_serializer("TransitionRequest", {"status": serializers.CharField()}),
    responses=TicketSerializer,
)
@api_view(["POST"])
@permission_classes([RulePermission("triage_tickets")])
def transition_view(request, pk):
    """Move a ticket (the board's drag and drop): 409 if the workflow does not allow it,
    403 if the move needs a role the user lacks."""
    ticket = _ticket(pk)
    try:
        ticket = tickets.transition(ticket, str(request.data.get("status", "")), request.user)
    except workflow.TransitionForbidden as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
    except workflow.TransitionRefused as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return Response(TicketSerializer(ticket).data)


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = ["created_at"]


@extend_schema(request=CommentSerializer, responses=CommentSerializer)
@api_view(["POST"])
@permission_classes([RulePermission("triage_tickets")])
def comment_view(request, pk):
    serializer = CommentSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    comment = tickets.add_comment(_ticket(pk), request.user, serializer.validated_data["body"])
    return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class AttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attachment
        fields = ["id", "name", "content_type", "size", "uploaded_at"]


@extend_schema(
    request={"multipart/form-data": inline_serializer("Upload", {"file": serializers.FileField()})},
    responses=AttachmentSerializer,
)
@api_view(["POST"])
@permission_classes([RulePermission("triage_tickets")])
@parser_classes([MultiPartParser])
def attachment_view(request, pk):
    """Attach a screenshot: PNG, JPEG, GIF or WebP (judged by content), at most 5 MB."""
    upload = request.FILES.get("file")
    if upload is None:
        return Response({"file": ["Send the screenshot as 'file'."]}, status=400)
    try:
        item = tickets.add_attachment(_ticket(pk), upload, request.user)
    except tickets.AttachmentRefused as exc:
        return Response({"file": [str(exc)]}, status=400)
    return Response(AttachmentSerializer(item).data, status=status.HTTP_201_CREATED)


class HistorySerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = TicketEvent
        fields = ["at", "actor", "kind", "field", "before", "after", "note"]


@extend_schema(responses=HistorySerializer(many=True))
@api_view(["GET"])
@permission_classes([RulePermission("view_board")])
def history_view(request, pk):
    """Every change of a ticket: who, when, before → after."""
    rows = _ticket(pk).history.select_related("actor")
    return Response(HistorySerializer(rows, many=True).data)


@extend_schema(
    responses=inline_serializer(
        "PriorityMatrix",
        {"matrix": serializers.ListField(), "sla_minutes": serializers.DictField()},
    )
)
@api_view(["GET"])
@permission_classes([RulePermission("view_board")])
def matrix_view(request):
    """The configured impact × urgency matrix and SLA targets."""
    rows = [
        {"impact": i, "urgency": u, "priority": p}
        for (i, u), p in sorted(priority.matrix().items())
    ]
    return Response({"matrix": rows, "sla_minutes": sla.targets()})


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = EscalationStep
        fields = ["id", "order", "after_minutes", "condition", "target", "person", "rotation"]

    def validate(self, data):
        if data.get("target") == EscalationStep.Target.PERSON and not data.get("person"):
            raise serializers.ValidationError({"person": "a person step names the person"})
        if data.get("target") == EscalationStep.Target.ON_CALL and not data.get("rotation"):
            raise serializers.ValidationError({"rotation": "an on-call step names the rotation"})
        return data


class PolicySerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True)

    class Meta:
        model = EscalationPolicy
        fields = [
            "id",
            "name",
            "priority",
            "active",
            "repeat_times",
            "repeat_after_minutes",
            "steps",
        ]

    def create(self, validated):
        steps = validated.pop("steps")
        with transaction.atomic():
            policy = EscalationPolicy.objects.create(**validated)
            self._replace_steps(policy, steps)
        return policy

    def update(self, policy, validated):
        steps = validated.pop("steps", None)
        with transaction.atomic():
            for field, value in validated.items():
                setattr(policy, field, value)
            policy.save()
            if steps is not None:
                self._replace_steps(policy, steps)
        return policy

    def _replace_steps(self, policy, steps):
        policy.steps.all().delete()
        EscalationStep.objects.bulk_create(EscalationStep(policy=policy, **s) for s in steps)


class PolicyList(generics.ListCreateAPIView):
    """Escalation policies: everyone on the board reads them, only leads change them."""

    serializer_class = PolicySerializer
    permission_classes = [ReadWrite("view_board", "manage_escalation")]
    queryset = EscalationPolicy.objects.prefetch_related("steps")


class PolicyDetail(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = PolicySerializer
    permission_classes = [ReadWrite("view_board", "manage_escalation")]
    queryset = EscalationPolicy.objects.prefetch_related("steps")


_person = inline_serializer(
    "OnCall",
    {
        "name": serializers.CharField(),
        "role": serializers.CharField(),
        "contact": serializers.CharField(),
    },
)


@extend_schema(
    parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, description="default: now")],
    responses=_person.__class__(many=True),
)
@api_view(["GET"])
@permission_classes([RulePermission("view_on_call")])
def on_call_view(request):
    """Who is on call now (or at `at`)."""
    at = request.query_params.get("at")
    when = parse_datetime(at) if at else None
    if at and when is None:
        return Response({"at": ["not an ISO 8601 date-time"]}, status=400)
    return Response(roster.on_call_now(when))


@extend_schema(
    responses=inline_serializer(
        "OpenTicketCounts", {p: serializers.IntegerField() for p in priority.PRIORITIES}
    )
)
@api_view(["GET"])
@permission_classes([RulePermission("view_ticket_reports")])
def open_counts_view(request):
    """Open tickets per priority."""
    return Response(measures.open_ticket_counts())


@extend_schema(
    responses=inline_serializer(
        "TeamBreaches",
        {
            "team": serializers.CharField(),
            "label": serializers.CharField(),
            "count": serializers.IntegerField(),
            "tickets": TicketSerializer(many=True),
        },
        many=True,
    )
)
@api_view(["GET"])
@permission_classes([RulePermission("view_board")])
def breaches_view(request):
    """Open tickets past an SLA deadline, per team."""
    return Response(
        [
            {**team, "tickets": TicketSerializer(team["tickets"], many=True).data}
            for team in triage.breached_by_team(limit=100)
        ]
    )


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@permission_classes([RulePermission("view_monitoring")])
def monitoring_view(request):
    """The latest monitoring sample (workers, queues, rates, PACS, destinations, migration)."""
    row = MetricSample.objects.order_by("-at").first()
    if row is None:
        return Response({"at": None})
    fields = [f.name for f in MetricSample._meta.fields if f.name != "id"]
    return Response({f: getattr(row, f) for f in fields})


@extend_schema(
    parameters=[OpenApiParameter("days", int, description="window, default 14")],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
@permission_classes([RulePermission("view_ticket_reports")])
def reports_view(request):
    """Tickets per day by category and priority, MTTA/MTTR, SLA compliance, top problems."""
    value = request.query_params.get("days", "")
    days = min(max(int(value), 1), 365) if value.isdigit() else 14
    return Response(reports.summary(days))


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "ticket", "text", "created_at", "read_at"]


@extend_schema(methods=["GET"], responses=NotificationSerializer(many=True))
@extend_schema(
    methods=["POST"],
    request=None,
    responses=inline_serializer("NotificationsRead", {"read": serializers.IntegerField()}),
)
@api_view(["GET", "POST"])
@permission_classes([RulePermission("view_on_call")])
def notifications_view(request):
    """Your latest notifications; POST marks them all read."""
    if request.method == "POST":
        return Response({"read": notifications.mark_read(request.user)})
    rows = request.user.cc_notifications.all()[:100]
    return Response(NotificationSerializer(rows, many=True).data)


# --- Roster ---------------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = RotationMember
        fields = ["user", "position", "contact"]


class RotationSerializer(serializers.ModelSerializer):
    members = MemberSerializer(many=True)
    on_call_now = serializers.SerializerMethodField()

    class Meta:
        model = Rotation
        fields = [
            "id",
            "name",
            "role_label",
            "starts_at",
            "shift_hours",
            "is_lead",
            "active",
            "members",
            "on_call_now",
        ]

    def get_on_call_now(self, rotation) -> str | None:
        current = roster.on_call(rotation, timezone.now())
        return current and current["user"].get_username()

    def create(self, validated):
        members = validated.pop("members")
        with transaction.atomic():
            rotation = Rotation.objects.create(**validated)
            RotationMember.objects.bulk_create(
                RotationMember(rotation=rotation, **m) for m in members
            )
        roster.publish_on_call(force=True)
        return rotation

    def update(self, rotation, validated):
        members = validated.pop("members", None)
        with transaction.atomic():
            for field, value in validated.items():
                setattr(rotation, field, value)
            rotation.save()
            if members is not None:
                rotation.members.all().delete()
                RotationMember.objects.bulk_create(
                    RotationMember(rotation=rotation, **m) for m in members
                )
        roster.publish_on_call(force=True)
        return rotation


class RotationList(generics.ListCreateAPIView):
    """24/7 rotations and who is on call in each; leads change them."""

    serializer_class = RotationSerializer
    permission_classes = [ReadWrite("view_on_call", "manage_roster")]
    queryset = Rotation.objects.prefetch_related("members__user", "overrides__user")


class RotationDetail(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = RotationSerializer
    permission_classes = [ReadWrite("view_on_call", "manage_roster")]
    queryset = Rotation.objects.prefetch_related("members__user", "overrides__user")


class OverrideSerializer(serializers.ModelSerializer):
    class Meta:
        model = Override
        fields = ["id", "rotation", "user", "starts_at", "ends_at", "reason"]

    def validate(self, data):
        if data["ends_at"] <= data["starts_at"]:
            raise serializers.ValidationError({"ends_at": "an override must end after it starts"})
        return data


class OverrideList(generics.ListCreateAPIView):
    """Overrides (someone covers a rotation for a while), current and planned."""

    serializer_class = OverrideSerializer
    permission_classes = [ReadWrite("view_on_call", "manage_roster")]

    def get_queryset(self):
        return Override.objects.filter(ends_at__gte=timezone.now())

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = roster.add_override(
            data["rotation"],
            data["user"],
            data["starts_at"],
            data["ends_at"],
            created_by=self.request.user,
            reason=data.get("reason", ""),
        )


class HandoffSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = HandoffNote
        fields = [
            "id",
            "rotation",
            "shift_start",
            "author",
            "body",
            "written_at",
            "acknowledged_by",
            "acknowledged_at",
        ]
        read_only_fields = ["shift_start", "written_at", "acknowledged_at"]


class HandoffList(generics.ListCreateAPIView):
    """Handoff notes, newest first; POST writes (or replaces) the running shift's note."""

    serializer_class = HandoffSerializer
    permission_classes = [ReadWrite("view_on_call", "triage_tickets")]
    queryset = HandoffNote.objects.select_related("author", "acknowledged_by")[:200]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            note = roster.write_handoff(data["rotation"], request.user, data["body"])
        except roster.RosterError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(HandoffSerializer(note).data, status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses=HandoffSerializer)
@api_view(["POST"])
@permission_classes([RulePermission("triage_tickets")])
def handoff_acknowledge_view(request, pk):
    """The next shift acknowledges a handoff note (409 with the reason if it may not)."""
    note = get_object_or_404(HandoffNote.objects.select_related("rotation"), pk=pk)
    try:
        roster.acknowledge_handoff(
            note, request.user, may_override=has_rule(request.user, "manage_roster")
        )
    except roster.RosterError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return Response(HandoffSerializer(note).data)


class MonitorSerializer(serializers.ModelSerializer):
    class Meta:
        model = Monitor
        fields = ["id", "name", "metric", "comparison", "threshold", "impact", "urgency", "enabled"]


class MonitorList(generics.ListCreateAPIView):
    """Monitoring thresholds; a crossed one opens (or updates) a ticket. Leads change them."""

    serializer_class = MonitorSerializer
    permission_classes = [ReadWrite("view_monitoring", "manage_escalation")]
    queryset = Monitor.objects.all()


class MonitorDetail(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = MonitorSerializer
    permission_classes = [ReadWrite("view_monitoring", "manage_escalation")]
    queryset = Monitor.objects.all()
