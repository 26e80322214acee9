"""The hybrid period: a legacy PACS kept in step with the cloud (sync mode), the studies it
synced with their lag, the manifests' versions, and the HL7 appointments whose priors go
first.

Holds PHI only in `Appointment` (patient identifiers, the raw message): shown to roles
with `view_phi`, masked in the audit log, never logged.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from inventory.models import PacsSource, Study
from migration.models import Destination, MappingProfile, WaveStudy


class SyncSource(models.Model):
    """A legacy PACS in sync mode: every `every_minutes` an incremental crawl (from the
    last crawl's high-water mark) queues what is new or changed, ahead of bulk waves."""

    source = models.OneToOneField(PacsSource, on_delete=models.CASCADE, related_name="sync")
    enabled = models.BooleanField(default=False)
    every_minutes = models.FloatField(
        default=5, validators=[MinValueValidator(0.1), MaxValueValidator(1440)]
    )
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="+")
    profile = models.ForeignKey(
        MappingProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    issuer = models.CharField(
        max_length=64, blank=True, help_text="assigning authority of the PACS's PatientIDs"
    )
    schedule = models.JSONField(
        default=list, blank=True, help_text="7×24 (Monday first): 0 = no crawl that hour"
    )
    enabled_at = models.DateTimeField(null=True, blank=True)
    high_water = models.DateTimeField(
        null=True, blank=True, help_text="when the last finished incremental crawl started"
    )
    next_crawl_at = models.DateTimeField(null=True, blank=True)
    last_crawl = models.ForeignKey(
        "inventory.CrawlRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.CharField(max_length=300, blank=True)
    alerting = models.BooleanField(default=False, help_text="a lag alert is open")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["source__name"]

    def __str__(self):
        return f"sync of {self.source}"


class SyncedStudy(models.Model):
    """One study the sync queued: from its sighting on the legacy PACS to its verified
    presence in the cloud (`lag_s`)."""

    class Kind(models.TextChoices):
        NEW = "new", "New study"
        TOPUP = "topup", "Top-up (new instances)"

    sync = models.ForeignKey(SyncSource, on_delete=models.CASCADE, related_name="studies")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=6, choices=Kind)
    sighted_at = models.DateTimeField()
    queued_at = models.DateTimeField(default=timezone.now)
    ledger = models.ForeignKey(
        WaveStudy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instances = models.PositiveIntegerField(null=True, blank=True, help_text="as C-FIND said")
    verified_at = models.DateTimeField(null=True, blank=True)
    lag_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [
            models.Index(fields=["sync", "verified_at"]),
            models.Index(fields=["sync", "study"]),
        ]
        verbose_name_plural = "synced studies"

    def __str__(self):
        return f"{self.kind} {self.study_id}"


class ManifestVersion(models.Model):
    """Each manifest a study had in a destination: a top-up writes a new one and keeps
    the earlier ones under their own keys (`manifest.v<N>.json`)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    key = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    instances = models.PositiveIntegerField(default=0)
    ledger = models.ForeignKey(
        WaveStudy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "destination", "version"], name="one_manifest_version"
            )
        ]

    def __str__(self):
        return f"manifest v{self.version} of {self.study_id}"


class Appointment(models.Model):
    """One scheduling or order message (SIU^S12/S14, ORM^O01, OMI^O23), stored before it
    is acknowledged; a Celery task then queues the patient's priors."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        QUEUED = "queued", "Priors queued"
        NO_PRIORS = "no_priors", "No priors found"
        FAILED = "failed", "Failed"

    control_id = models.CharField(max_length=64)
    message_type = models.CharField(max_length=16)
    sender = models.CharField(max_length=60, blank=True)
    patient_id = models.CharField(max_length=64)
    issuer = models.CharField(max_length=64, blank=True)
    other_ids = models.JSONField(default=list, blank=True, help_text="[[id, issuer], …]")
    placer = models.CharField(max_length=64, blank=True, help_text="order or appointment id")
    modality = models.CharField(max_length=16, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    raw = models.TextField()
    PHI_FIELDS = ("patient_id", "issuer", "other_ids", "placer", "raw")
    state = models.CharField(max_length=10, choices=State, default=State.RECEIVED)
    detail = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["scheduled_at", "pk"]
        indexes = [models.Index(fields=["scheduled_at"]), models.Index(fields=["state"])]

    def __str__(self):
        return f"{self.message_type} {self.pk}"


class AppointmentPrior(models.Model):
    """A prior study of an appointment's patient, in the order it was queued (`rank`)."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="priors")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, help_text="what expedite() did with it")

    class Meta:
        ordering = ["appointment", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["appointment", "study"], name="one_prior_per_study")
        ]

    def __str__(self):
        return f"prior {self.rank} of {self.appointment_id}"
