from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from training.catalog import FEEDBACK_STATUSES, KINDS, SEVERITIES, VIEWERS, choices
from training.models import (
    ChecklistItem,
    ClinicianProfile,
    Department,
    Enrolment,
    Feedback,
    Highlight,
    Material,
    Module,
    SignOff,
    TrainingSession,
)
from training.screenshots import check_screenshot


class ModuleChecklistItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChecklistItem
        fields = ["id", "text", "position"]


class TrainingModuleSerializer(serializers.ModelSerializer):
    items = ModuleChecklistItemSerializer(many=True, read_only=True)

    class Meta:
        model = Module
        fields = ["id", "title", "summary", "position", "active", "items"]


class TrainingModuleCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    summary = serializers.CharField(required=False, allow_blank=True, default="")
    items = serializers.ListField(child=serializers.CharField(max_length=200), min_length=1)

    def validate_title(self, value):
        if Module.objects.filter(title__iexact=value.strip()).exists():
            raise serializers.ValidationError("There is already a module with this title.")
        return value.strip()


class TrainingDepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name"]


class ClinicianProfileSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    department = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = ClinicianProfile
        fields = ["user", "department", "is_lead", "contact"]


class MaterialSerializer(serializers.ModelSerializer):
    file = serializers.FileField(required=False, write_only=True)
    has_file = serializers.SerializerMethodField()

    class Meta:
        model = Material
        fields = ["id", "title", "url", "file", "filename", "has_file"]
        read_only_fields = ["filename"]

    def get_has_file(self, material) -> bool:
        return bool(material.file)

    def validate(self, data):
        if not data.get("url") and not data.get("file"):
            raise serializers.ValidationError("Give a link or attach a file.")
        return data


class TrainingSessionSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    trainer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    audience_roles = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    audience_departments = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True
    )
    seats = serializers.SerializerMethodField()
    materials = MaterialSerializer(many=True, read_only=True)

    class Meta:
        model = TrainingSession
        fields = [
            "id",
            "name",
            "module",
            "title",
            "starts_at",
            "ends_at",
            "location",
            "virtual_link",
            "trainer",
            "capacity",
            "audience_roles",
            "audience_departments",
            "notes",
            "seats",
            "materials",
        ]

    def get_seats(self, session) -> dict:
        from training.actions import seat_counts

        return seat_counts(session)


class EnrolmentSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Enrolment
        fields = ["id", "session", "user", "status", "queued_at", "attended"]


class TrainingAttendanceSerializer(serializers.Serializer):
    present = serializers.ListField(child=serializers.IntegerField(), allow_empty=True)


class SignOffSerializer(serializers.ModelSerializer):
    clinician = serializers.SlugRelatedField(slug_field="username", read_only=True)
    signed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SignOff
        fields = ["id", "module", "clinician", "signed_by", "signed_at", "note"]


class SignOffCreateSerializer(serializers.Serializer):
    module = serializers.PrimaryKeyRelatedField(queryset=Module.objects.all())
    clinician = serializers.IntegerField()
    items = serializers.ListField(child=serializers.IntegerField())
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class FeedbackCreateSerializer(serializers.Serializer):
    viewer = serializers.ChoiceField(choices=choices(VIEWERS))
    kind = serializers.ChoiceField(choices=choices(KINDS))
    severity = serializers.ChoiceField(choices=choices(SEVERITIES))
    description = serializers.CharField(max_length=4000)
    screenshot = serializers.FileField(required=False, allow_null=True)
    accession_number = serializers.RegexField(
        r"^[A-Za-z0-9./_-]*$", max_length=64, required=False, allow_blank=True, default=""
    )

    def validate_screenshot(self, upload):
        if upload:
            try:
                check_screenshot(upload)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(exc.messages) from None
        return upload


class FeedbackSerializer(serializers.ModelSerializer):
    """Never carries the accession number; see `FeedbackDetailSerializer`."""

    reporter = serializers.SlugRelatedField(slug_field="username", read_only=True)
    department = serializers.StringRelatedField(allow_null=True)
    themes = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    has_screenshot = serializers.SerializerMethodField()
    has_accession_number = serializers.SerializerMethodField()
    status_label = serializers.SerializerMethodField()

    class Meta:
        model = Feedback
        fields = [
            "id",
            "reporter",
            "department",
            "from_lead_user",
            "viewer",
            "kind",
            "severity",
            "description",
            "status",
            "status_label",
            "escalated",
            "reply",
            "replied_at",
            "themes",
            "has_screenshot",
            "has_accession_number",
            "created_at",
        ]

    def get_has_screenshot(self, fb) -> bool:
        return bool(fb.screenshot)

    def get_has_accession_number(self, fb) -> bool:
        return bool(fb.accession_number)

    def get_status_label(self, fb) -> str:
        return FEEDBACK_STATUSES[fb.status]


class FeedbackDetailSerializer(FeedbackSerializer):
    """Adds the accession number: only for users with `view_phi` (and audited)."""

    class Meta(FeedbackSerializer.Meta):
        fields = [*FeedbackSerializer.Meta.fields, "accession_number"]


class FeedbackTriageSerializer(serializers.Serializer):
    themes = serializers.ListField(child=serializers.CharField(max_length=80), default=list)
    status = serializers.ChoiceField(choices=choices(FEEDBACK_STATUSES), required=False)


class FeedbackReplySerializer(serializers.Serializer):
    reply = serializers.CharField(max_length=4000)
    status = serializers.ChoiceField(choices=choices(FEEDBACK_STATUSES), required=False)


class ViewerHighlightSerializer(serializers.ModelSerializer):
    class Meta:
        model = Highlight
        fields = ["id", "title", "body", "pinned", "published_at"]
        read_only_fields = ["published_at"]


class TrainingOverallReadinessSerializer(serializers.Serializer):
    clinicians = serializers.IntegerField()
    trained = serializers.IntegerField()
    signed_off = serializers.IntegerField()
    share_trained = serializers.FloatField()
    share_signed_off = serializers.FloatField()


class TrainingReadinessRowSerializer(TrainingOverallReadinessSerializer):
    department = serializers.CharField()


class TrainingReadinessSerializer(serializers.Serializer):
    overall = TrainingOverallReadinessSerializer()
    departments = TrainingReadinessRowSerializer(many=True)
