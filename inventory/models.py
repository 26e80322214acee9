from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

AE_TITLE = RegexValidator(r"^[ -~]{1,16}$", "An AE title is 1 to 16 printable ASCII characters.")


class PacsSource(models.Model):
    """A legacy PACS we inventory and migrate from."""

    class Retrieve(models.TextChoices):
        GET = "get", "C-GET"
        MOVE = "move", "C-MOVE"

    name = models.SlugField(max_length=60, unique=True)
    ae_title = models.CharField("called AE title", max_length=16, validators=[AE_TITLE])
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    calling_ae_title = models.CharField(max_length=16, default="MIGRATOR", validators=[AE_TITLE])
    retrieve_method = models.CharField(max_length=4, choices=Retrieve, default=Retrieve.GET)
    move_destination = models.CharField(
        max_length=16,
        blank=True,
        validators=[AE_TITLE],
        help_text="AE title of the worker's Storage SCP, for C-MOVE",
    )
    max_associations = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text="never more concurrent associations than this, across all workers",
    )
    find_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="known C-FIND result cap; detected when unset"
    )
    tls = models.BooleanField("DICOM TLS", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Study(models.Model):
    """One study of the legacy PACS, as its C-FIND reported it: the inventory ledger.

    Holds PHI (patient name and ID): show it only to roles with `view_phi`, and record
    each view with `commandcenter.audit.record_phi_access`.
    """

    source = models.ForeignKey(PacsSource, on_delete=models.PROTECT, related_name="studies")
    study_uid = models.CharField("Study Instance UID", max_length=64)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=324, blank=True)
    accession_number = models.CharField(max_length=16, blank=True)
    study_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=64, blank=True)
    modalities = models.CharField(max_length=64, blank=True, help_text="backslash-separated")
    num_series = models.PositiveIntegerField(null=True, blank=True)
    num_instances = models.PositiveIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    vanished = models.BooleanField(default=False, help_text="no longer reported by the PACS")
    problems = models.JSONField(default=list, blank=True, help_text="what was odd in C-FIND")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "study_uid"], name="unique_study_per_source")
        ]
        indexes = [
            models.Index(fields=["source", "study_date"]),
            models.Index(fields=["source", "modalities"]),
            models.Index(fields=["accession_number"]),
            models.Index(fields=["patient_id"]),
        ]
        verbose_name_plural = "studies"

    def __str__(self):
        return f"study {self.pk} ({self.study_uid})"
