"""Roadmap (workstreams, tasks, dependencies, baselines), integration cutover plans,
viewer validation and go/no-go settings.

Scheduled dates on `Task` are computed by `cutover.schedule` through
`cutover.actions.reschedule`; nobody types them in.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from cutover.stages import STAGE_CHOICES


class Roadmap(models.Model):
    name = models.CharField(max_length=120, unique=True)
    start_date = models.DateField(
        help_text="the project starts on this day (or the next working day)"
    )
    description = models.TextField(blank=True)
    go_live = models.ForeignKey(
        "Task",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the milestone whose date is the go-live",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class Holiday(models.Model):
    roadmap = models.ForeignKey(Roadmap, on_delete=models.CASCADE, related_name="holidays")
    day = models.DateField()
    name = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(fields=["roadmap", "day"], name="unique_holiday_per_roadmap")
        ]

    def __str__(self):
        return f"{self.day} {self.name}".strip()


class Workstream(models.Model):
    roadmap = models.ForeignKey(Roadmap, on_delete=models.CASCADE, related_name="workstreams")
    name = models.CharField(max_length=120)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["roadmap", "name"], name="unique_workstream_name")
        ]

    def __str__(self):
        return self.name


class Task(models.Model):
    class Kind(models.TextChoices):
        TASK = "task", "Task"
        MILESTONE = "milestone", "Milestone"
        BUFFER = "buffer", "Buffer (contingency)"

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", "Not started"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        BLOCKED = "blocked", "Blocked"

    roadmap = models.ForeignKey(Roadmap, on_delete=models.CASCADE, related_name="tasks")
    workstream = models.ForeignKey(Workstream, on_delete=models.PROTECT, related_name="tasks")
    code = models.CharField(max_length=20, help_text="short key, used by CSV dependencies")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.TASK)
    owner = models.CharField(max_length=120, blank=True)
    duration = models.PositiveIntegerField(
        default=1, help_text="working days (milestones: 0)", validators=[MaxValueValidator(2000)]
    )
    start_no_earlier = models.DateField(
        null=True, blank=True, help_text="manual start date, kept as a constraint"
    )
    deadline = models.DateField(null=True, blank=True, help_text="must finish by this day")
    percent_complete = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    status = models.CharField(max_length=12, choices=Status, default=Status.NOT_STARTED)
    notes = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)
    measure = models.CharField(
        max_length=40, blank=True, help_text="live measure that sets % complete (see binding.py)"
    )
    measure_params = models.JSONField(default=dict, blank=True)
    # Computed by the scheduler (cutover.actions.reschedule).
    early_start = models.DateField(null=True, editable=False)
    early_finish = models.DateField(null=True, editable=False)
    late_start = models.DateField(null=True, editable=False)
    late_finish = models.DateField(null=True, editable=False)
    total_slack = models.IntegerField(null=True, editable=False)
    free_slack = models.IntegerField(null=True, editable=False)
    critical = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["workstream__order", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["roadmap", "code"], name="unique_task_code"),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"

    @property
    def is_milestone(self):
        return self.kind == self.Kind.MILESTONE


class Dependency(models.Model):
    class Kind(models.TextChoices):
        FS = "FS", "Finish-to-start"
        SS = "SS", "Start-to-start"

    predecessor = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="successor_links")
    successor = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="predecessor_links")
    kind = models.CharField(max_length=2, choices=Kind, default=Kind.FS)
    lag = models.IntegerField(default=0, help_text="working days; negative is a lead")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["predecessor", "successor"], name="unique_dependency"),
            models.CheckConstraint(
                condition=~models.Q(predecessor=models.F("successor")), name="no_self_dependency"
            ),
        ]

    def __str__(self):
        lag = f"{self.lag:+d}" if self.lag else ""
        return f"{self.predecessor.code} {self.kind}{lag} {self.successor.code}"


class Baseline(models.Model):
    roadmap = models.ForeignKey(Roadmap, on_delete=models.CASCADE, related_name="baselines")
    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name


class BaselineTask(models.Model):
    baseline = models.ForeignKey(Baseline, on_delete=models.CASCADE, related_name="entries")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="baseline_entries")
    start = models.DateField()
    finish = models.DateField()
    duration = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["baseline", "task"], name="unique_baseline_task")
        ]

    def __str__(self):
        return f"{self.baseline}: {self.task_id} {self.start} – {self.finish}"


class ReadinessSetting(models.Model):
    """A project manager's threshold for one go/no-go criterion (defaults in readiness.py),
    or a waiver: the criterion is accepted as a known risk, with the reason on record."""

    key = models.CharField(max_length=40, unique=True)
    threshold = models.FloatField(null=True, blank=True, help_text="empty: the default")
    waived = models.BooleanField(default=False)
    waiver_reason = models.CharField(max_length=300, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.key} {'waived' if self.waived else self.threshold}"


# -- integration cutover -----------------------------------------------------------------


class CutoverPlan(models.Model):
    integration = models.OneToOneField(
        "inventory.Integration", on_delete=models.PROTECT, related_name="cutover_plan"
    )
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["integration__name"]

    def __str__(self):
        return f"cutover of {self.integration}"


class Stage(models.Model):
    plan = models.ForeignKey(CutoverPlan, on_delete=models.CASCADE, related_name="stages")
    kind = models.CharField(max_length=20, choices=STAGE_CHOICES)
    order = models.PositiveSmallIntegerField(default=0)
    rollback_steps = models.TextField(blank=True)
    gate_opened_at = models.DateTimeField(null=True, blank=True)
    gate_opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    gate_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["plan", "order"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "kind"], name="unique_stage_per_plan")
        ]

    def __str__(self):
        return f"{self.plan.integration}: {self.get_kind_display()}"

    @property
    def gate_open(self):
        return self.gate_opened_at is not None


class ChecklistItem(models.Model):
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="items")
    text = models.CharField(max_length=300)
    owner = models.CharField(max_length=120, blank=True)
    due_date = models.DateField(null=True, blank=True)
    evidence_note = models.TextField(blank=True)
    evidence_file = models.FileField(upload_to="cutover/evidence/%Y/%m/", blank=True)
    order = models.PositiveSmallIntegerField(default=0)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_name = models.CharField(max_length=150, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["stage", "order", "id"]

    def __str__(self):
        return self.text

    @property
    def signed(self):
        return self.signed_at is not None


class Probe(models.Model):
    class Kind(models.TextChoices):
        DICOM_ECHO = "dicom_echo", "DICOM C-ECHO"
        DICOM_FIND = "dicom_find", "DICOM C-FIND"
        HL7 = "hl7", "HL7 v2 over MLLP (expects AA)"
        HTTP = "http", "HTTP(S) / FHIR GET"

    plan = models.ForeignKey(CutoverPlan, on_delete=models.CASCADE, related_name="probes")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    called_aet = models.CharField("called AE title", max_length=16, blank=True)
    calling_aet = models.CharField("calling AE title", max_length=16, default="CCPROBE")
    url = models.URLField(max_length=500, blank=True, help_text="health or FHIR /metadata URL")
    timeout_s = models.FloatField(
        "timeout (s)", default=10.0, validators=[MinValueValidator(0.5), MaxValueValidator(120)]
    )
    scheduled = models.BooleanField(default=True, help_text="run on the beat schedule")
    last_ok = models.BooleanField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    last_detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["plan", "name"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"


class ProbeResult(models.Model):
    probe = models.ForeignKey(Probe, on_delete=models.CASCADE, related_name="results")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    ok = models.BooleanField()
    detail = models.CharField(max_length=500)
    ms = models.FloatField()
    trigger = models.CharField(max_length=20, default="on demand")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.probe_id} {'ok' if self.ok else 'failed'} at {self.at:%Y-%m-%d %H:%M:%S}"


# -- viewer validation ---------------------------------------------------------------------


class CloudViewer(models.Model):
    """A cloud viewer to validate against the legacy viewers of the inventory."""

    name = models.CharField(max_length=100, unique=True)
    vendor = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=50, blank=True)
    url = models.URLField(blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


SCREENSHOT_MAX_BYTES = 5 * 1024 * 1024


def validate_screenshot(upload):
    from django.core.exceptions import ValidationError

    if upload.size > SCREENSHOT_MAX_BYTES:
        raise ValidationError("a screenshot may be at most 5 MB")
    if _decoded_format(upload) not in SCREENSHOT_FORMATS:
        raise ValidationError("a screenshot is a PNG, JPEG or WebP image")


SCREENSHOT_FORMATS = {"PNG", "JPEG", "WEBP"}


def _decoded_format(upload):
    """The image format Pillow finds by decoding the upload (never its name), or None."""
    from PIL import Image, UnidentifiedImageError

    upload.seek(0)
    try:
        with Image.open(upload) as image:
            image.verify()
            return image.format
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError):  # fmt: skip
        return None
    finally:
        upload.seek(0)


class ViewerTestCase(models.Model):
    class Result(models.TextChoices):
        UNTESTED = "untested", "Not tested"
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        GAP = "gap", "Gap (missing)"

    viewer = models.ForeignKey(CloudViewer, on_delete=models.CASCADE, related_name="cases")
    capability = models.ForeignKey(
        "inventory.ViewerCapability", on_delete=models.PROTECT, related_name="cloud_test_cases"
    )
    result = models.CharField(max_length=10, choices=Result, default=Result.UNTESTED)
    notes = models.TextField(blank=True)
    screenshot = models.FileField(
        upload_to="cutover/screenshots/%Y/%m/", blank=True, validators=[validate_screenshot]
    )
    tester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tested_at = models.DateTimeField(null=True, blank=True)
    gap_owner = models.CharField(max_length=120, blank=True)
    gap_solution = models.TextField(blank=True)
    gap_resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["viewer", "capability__name"]
        constraints = [
            models.UniqueConstraint(fields=["viewer", "capability"], name="unique_case_per_viewer")
        ]

    def __str__(self):
        return f"{self.viewer}: {self.capability}"

    @property
    def open_gap(self):
        return self.result in (self.Result.FAIL, self.Result.GAP) and not self.gap_resolved
