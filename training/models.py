import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from training.catalog import (
    ENROLMENT_STATUSES,
    FEEDBACK_STATUSES,
    KINDS,
    SEVERITIES,
    VIEWERS,
    choices,
)

USER = settings.AUTH_USER_MODEL


class Department(models.Model):
    name = models.CharField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ClinicianProfile(models.Model):
    """A clinician's department, and whether they are a lead user (first contact) there."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="clinician_profile")
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="profiles"
    )
    is_lead = models.BooleanField("lead user", default=False)
    contact = models.CharField(
        max_length=120, blank=True, help_text="Phone, pager or extension colleagues can use."
    )

    class Meta:
        ordering = ["department__name", "user__username"]

    def __str__(self):
        return f"{self.user} ({self.department or 'no department'})"


class Module(models.Model):
    """A training topic with a short competency checklist."""

    title = models.CharField(max_length=200, unique=True)
    summary = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True, help_text="Counts towards readiness.")

    class Meta:
        ordering = ["position", "title"]

    def __str__(self):
        return self.title


class ChecklistItem(models.Model):
    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="items")
    text = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["module", "position", "id"]

    def __str__(self):
        return self.text


class TrainingSession(models.Model):
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="sessions")
    title = models.CharField(max_length=200, blank=True, help_text="Defaults to the module.")
    audience_roles = models.ManyToManyField(Group, blank=True, related_name="+")
    audience_departments = models.ManyToManyField(Department, blank=True, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    location = models.CharField(max_length=200, blank=True)
    virtual_link = models.URLField(blank=True)
    trainer = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions_trained"
    )
    capacity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="training_session_ends_after_start"
            ),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="training_session_capacity"),
        ]

    def __str__(self):
        return f"{self.name} ({self.starts_at:%Y-%m-%d %H:%M})"

    @property
    def name(self):
        return self.title or self.module.title

    @property
    def has_started(self):
        return self.starts_at <= timezone.now()


def _material_path(instance, filename):
    suffix = filename.rsplit(".", 1)[-1][:10].lower() if "." in filename else "bin"
    return f"training/materials/{uuid.uuid4().hex}.{suffix}"


class Material(models.Model):
    """A link or an attachment for a session (served only through a login-protected view)."""

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="materials")
    title = models.CharField(max_length=200)
    url = models.URLField(blank=True)
    file = models.FileField(upload_to=_material_path, blank=True)
    filename = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.title


class Enrolment(models.Model):
    session = models.ForeignKey(
        TrainingSession, on_delete=models.CASCADE, related_name="enrolments"
    )
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="training_enrolments")
    status = models.CharField(max_length=12, choices=choices(ENROLMENT_STATUSES))
    queued_at = models.DateTimeField(default=timezone.now, help_text="Orders the waitlist.")
    updated_at = models.DateTimeField(auto_now=True)
    attended = models.BooleanField(null=True, blank=True)
    attendance_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attendance_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["queued_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "user"], name="training_one_enrolment")
        ]
        indexes = [models.Index(fields=["session", "status", "queued_at"])]

    def __str__(self):
        return f"{self.user} in {self.session_id}: {self.status}"


class SignOff(models.Model):
    """A trainer or lead user confirms a clinician can do everything on a module's checklist."""

    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="sign_offs")
    clinician = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="sign_offs")
    signed_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="sign_offs_given")
    signed_at = models.DateTimeField(default=timezone.now)
    items = models.ManyToManyField(ChecklistItem, blank=True, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-signed_at"]
        constraints = [
            models.UniqueConstraint(fields=["module", "clinician"], name="training_one_sign_off")
        ]

    def __str__(self):
        return f"{self.clinician} signed off on {self.module} by {self.signed_by}"


class Theme(models.Model):
    name = models.CharField(max_length=80, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def _screenshot_path(instance, filename):
    """Never the uploaded name (it may carry a patient's name): a random one."""
    now = timezone.now()
    suffix = instance.screenshot_type.rsplit("/", 1)[-1].replace("jpeg", "jpg") or "bin"
    return f"feedback/{now:%Y/%m}/{uuid.uuid4().hex}.{suffix}"


class Feedback(models.Model):
    """Clinician feedback on a viewer. The accession number is PHI: shown only with view_phi,
    masked in the audit log, and never put in events, ticket titles or logs."""

    reporter = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="viewer_feedback")
    viewer = models.CharField(max_length=20, choices=choices(VIEWERS))
    kind = models.CharField(max_length=20, choices=choices(KINDS))
    severity = models.CharField(max_length=12, choices=choices(SEVERITIES))
    description = models.TextField(max_length=4000)
    screenshot = models.FileField(upload_to=_screenshot_path, blank=True)
    screenshot_type = models.CharField(max_length=20, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    PHI_FIELDS = ("accession_number",)  # masked in the audit log (core/audit.py)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_lead_user = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=choices(FEEDBACK_STATUSES), default="new")
    escalated = models.BooleanField(
        default=False, help_text="Raised to the command center as a ticket."
    )
    reply = models.TextField(blank=True)
    replied_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    replied_at = models.DateTimeField(null=True, blank=True)
    themes = models.ManyToManyField(Theme, blank=True, related_name="feedback")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "feedback"
        indexes = [models.Index(fields=["reporter", "-created_at"])]

    def __str__(self):
        return f"Feedback #{self.pk} ({self.kind}, {self.severity})"

    @property
    def kind_label(self):
        return KINDS[self.kind]["label"]

    @property
    def severity_label(self):
        return SEVERITIES[self.severity]["label"]

    @property
    def blocks_care(self):
        return SEVERITIES[self.severity].get("ticket", False)


class Highlight(models.Model):
    """An entry on the "what's new in the cloud viewer" page, written by the project team."""

    title = models.CharField(max_length=200)
    body = models.TextField()
    pinned = models.BooleanField(default=False)
    published_at = models.DateTimeField(default=timezone.now)
    author = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pinned", "-published_at", "-id"]

    def __str__(self):
        return self.title
