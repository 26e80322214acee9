from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

AE_TITLE = RegexValidator(r"^[ -~]{1,16}$", "An AE title is 1 to 16 printable ASCII characters.")


class PacsSource(models.Model):
    """A legacy PACS we inventory and migrate from."""

    # What an engineer sets (forms, API, `pacs add`); the rest is recorded by the product.
    SETTINGS = (
        "name",
        "ae_title",
        "host",
        "port",
        "calling_ae_title",
        "retrieve_method",
        "move_destination",
        "max_associations",
        "find_cap",
        "tls",
        "tls_ca_file",
        "tls_cert_file",
        "tls_key_file",
        "find_pause_ms",
    )

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
        help_text="AE title C-MOVEs are sent to; blank: each worker host's own Storage SCP "
        "(its MIGRATION_STORAGE_SCP_AET, registered on the PACS per host)",
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
    tls_ca_file = models.CharField(
        "TLS CA file", max_length=500, blank=True,
        help_text="PEM path of the CA that signs the PACS's certificate (blank: the system's)",
    )  # fmt: skip
    tls_cert_file = models.CharField(
        "TLS client certificate", max_length=500, blank=True,
        help_text="PEM path of our certificate, when the PACS asks for one",
    )  # fmt: skip
    tls_key_file = models.CharField(
        "TLS client key", max_length=500, blank=True, help_text="PEM path of its private key"
    )
    find_pause_ms = models.PositiveIntegerField(
        "pause between C-FINDs (ms)",
        default=0,
        validators=[MaxValueValidator(60000)],
        help_text="spares a busy clinical PACS during a crawl",
    )
    last_echo_at = models.DateTimeField(null=True, blank=True)
    last_echo_ok = models.BooleanField(null=True, blank=True)
    last_echo_ms = models.FloatField(null=True, blank=True)
    last_echo_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "PACS source"

    def __str__(self):
        return self.name

    MOVE_NEEDS = ("each C-MOVE holds 2 associations at the PACS (the C-MOVE and the PACS's "
                  "C-STORE back to our Storage SCP)")  # fmt: skip

    def move_limit_problem(self, schedule=None):
        """Why C-MOVE cannot run within this PACS's limit, or within an hour of a wave's
        `schedule` (7×24 limits) at 1 (None when it can): the PACS's C-STORE association
        back to us would be the second one."""
        if self.retrieve_method != self.Retrieve.MOVE:
            return None
        if self.max_associations < 2:
            return (f"a limit of {self.max_associations} association cannot run C-MOVE: "
                    f"{self.MOVE_NEEDS}; allow at least 2, or retrieve by C-GET (1)")  # fmt: skip
        ones = sum(1 for day in schedule or [] for limit in day if limit == 1)
        if ones:
            return (f"{ones} scheduled hour(s) allow 1 association, which cannot run C-MOVE: "
                    f"{self.MOVE_NEEDS}; write 0 to pause those hours, or at least 2")  # fmt: skip
        return None

    def clean(self):
        if problem := self.move_limit_problem():
            raise ValidationError({"max_associations": problem})
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValidationError(
                {"tls_key_file": "A TLS client certificate needs its key (or neither)."}
            )


class StudyRollup(models.Model):
    """Per source, vanished or not, modality combination, StudyDate month (yyyymm, 0 when
    undated) and character set: how many studies, problem studies, series and instances.
    Kept exact by database triggers on the study table (inventory/rollup.py) in the
    transaction of each change; spread over a few shards (study id modulo) so that crawl
    writers seldom wait for the same row."""

    source_pk = models.BigIntegerField(db_column="source_id")
    vanished = models.BooleanField()
    modalities = models.CharField(max_length=64)
    month = models.IntegerField()
    charset = models.CharField(max_length=64)
    shard = models.SmallIntegerField()
    studies = models.BigIntegerField(default=0)
    problems = models.BigIntegerField(default=0)
    series = models.BigIntegerField(default=0)
    instances = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source_pk", "vanished", "modalities", "month", "charset", "shard"],
                name="one_rollup_per_key_shard",
            )
        ]

    def __str__(self):
        return f"source {self.source_pk} {self.modalities or '?'} {self.month}: {self.studies}"


class Study(models.Model):
    """One study of the legacy PACS, as its C-FIND reported it: the inventory ledger.

    Holds PHI (patient name and ID): show it only to roles with `view_phi`, and record
    each view with `core.audit.record_phi_access`.
    """

    source = models.ForeignKey(PacsSource, on_delete=models.PROTECT, related_name="studies")
    study_uid = models.CharField("Study Instance UID", max_length=64)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=324, blank=True)
    accession_number = models.CharField(max_length=16, blank=True)
    PHI_FIELDS = ("patient_id", "patient_name", "accession_number")  # masked in audit entries
    study_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=64, blank=True)
    modalities = models.CharField(max_length=64, blank=True, help_text="backslash-separated")
    num_series = models.PositiveIntegerField(null=True, blank=True)
    num_instances = models.PositiveIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    vanished = models.BooleanField(default=False, help_text="no longer reported by the PACS")
    problems = models.JSONField(default=list, blank=True, help_text="what was odd in C-FIND")
    study_time = models.CharField(max_length=16, blank=True)
    charset = models.CharField("specific character set", max_length=64, blank=True)
    has_problems = models.BooleanField(default=False)
    series_synced = models.BooleanField(
        default=False, help_text="its series were queried since its counts last changed"
    )
    seen_run = models.ForeignKey(
        "CrawlRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    found_by = models.CharField(
        max_length=10,
        blank=True,
        help_text="the crawl tree or partition that first listed it in its last crawl, or the "
        "witness (scan, listing) that found it when C-FIND did not",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "study_uid"], name="unique_study_per_source")
        ]
        indexes = [
            models.Index(fields=["source", "study_date"]),
            models.Index(fields=["source", "modalities"]),
            models.Index(fields=["accession_number"]),
            models.Index(fields=["patient_id"]),
            models.Index(fields=["study_uid"], name="study_uid_lookup"),  # the locator
            models.Index(fields=["source", "-id"], name="study_source_recent"),
            models.Index(fields=["source", "series_synced"], name="study_series_todo"),
            models.Index(
                fields=["-id"], condition=models.Q(has_problems=True), name="study_with_problems"
            ),
            models.Index(fields=["source", "-num_instances"], name="study_largest"),
            models.Index(fields=["-num_instances", "-id"], name="study_largest_all"),
        ]
        verbose_name_plural = "studies"

    def __str__(self):
        return f"study {self.pk} ({self.study_uid})"


class Series(models.Model):
    """One series of a study, from the series-level C-FIND and the instance sample."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_uid = models.CharField("Series Instance UID", max_length=64)
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=64, blank=True)
    num_instances = models.PositiveIntegerField(null=True, blank=True)
    sop_class = models.CharField("SOP Class UID", max_length=64, blank=True)
    transfer_syntax = models.CharField(max_length=64, blank=True, help_text="of the sample")
    charset = models.CharField(max_length=64, blank=True, help_text="of the sample")
    sample_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="size of one sampled instance"
    )
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "series_uid"], name="unique_series_per_study")
        ]
        verbose_name_plural = "series"

    def __str__(self):
        return f"series {self.pk} ({self.series_uid})"


class CrawlRun(models.Model):
    """One inventory crawl of a PACS source. Its ranges are the proof of completeness."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    class Phase(models.TextChoices):
        STUDIES = "studies", "study-level C-FIND"
        SERIES = "series", "series-level C-FIND"
        SAMPLE = "sample", "instance sample"
        FINISHED = "finished", "finished"

    source = models.ForeignKey(PacsSource, on_delete=models.PROTECT, related_name="crawls")
    status = models.CharField(max_length=10, choices=Status, default=Status.QUEUED)
    phase = models.CharField(max_length=10, choices=Phase, default=Phase.STUDIES)
    since = models.DateField(null=True, blank=True, help_text="only studies dated from then on")
    with_series = models.BooleanField(default=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    queue = models.CharField(max_length=100, blank=True, help_text="Celery queue, blank: default")
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    phase_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    detected_cap = models.PositiveIntegerField(null=True, blank=True)
    queries = models.PositiveIntegerField(default=0)
    responses = models.PositiveIntegerField(default=0)
    studies_found = models.PositiveIntegerField(default=0)
    studies_new = models.PositiveIntegerField(default=0)
    studies_changed = models.PositiveIntegerField(default=0)
    studies_vanished = models.PositiveIntegerField(default=0)
    series_found = models.PositiveIntegerField(default=0)
    instances_found = models.PositiveIntegerField(default=0)
    series_todo = models.PositiveIntegerField(default=0)
    series_done = models.PositiveIntegerField(default=0)
    problems = models.PositiveIntegerField(default=0)
    complete = models.BooleanField(null=True, blank=True)
    unproven = models.TextField(blank=True, help_text="what could still hide, and why")
    complete_reason = models.CharField(max_length=300, blank=True)
    proof = models.JSONField(default=dict, blank=True, help_text="studies by tree, at the end")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self):
        return f"crawl {self.pk} of {self.source}"

    @property
    def is_active(self):
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class CrawlRange(models.Model):
    """A node of the crawl's query tree: a leaf holds its response count, a split node its
    children. Pending nodes are what a resumed crawl still has to ask."""

    class Kind(models.TextChoices):
        ALL = "all", "every study"
        DATED = "dated", "by StudyDate"
        TIMED = "timed", "by StudyTime (finds studies without a usable StudyDate)"
        PATIENT = "patient", "patients by PatientID (Patient Root walk)"
        PID = "pid", "by PatientID prefix"
        ACC = "acc", "by AccessionNumber prefix"
        NAME = "name", "by PatientName prefix"

    class Status(models.TextChoices):
        PENDING = "pending", "to do"
        LEAF = "leaf", "leaf (under the cap)"
        SPLIT = "split", "split"
        UNRESOLVED = "unresolved", "still capped, cannot split further"
        PRUNED = "pruned", "capped, nothing new: not split"
        FAILED = "failed", "failed"

    run = models.ForeignKey(CrawlRun, on_delete=models.CASCADE, related_name="ranges")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    kind = models.CharField(max_length=10, choices=Kind)
    level = models.CharField(max_length=10)
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    time_from = models.CharField(max_length=16, blank=True)
    time_to = models.CharField(max_length=16, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    prefix = models.CharField(max_length=64, blank=True, help_text="PHI: never shown")
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    count = models.PositiveIntegerField(null=True, blank=True, help_text="C-FIND responses")
    unique_count = models.PositiveIntegerField(null=True, blank=True)
    capped = models.BooleanField(default=False)
    note = models.CharField(max_length=300, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "status", "id"])]

    def __str__(self):
        return f"{self.kind}/{self.level} {self.label}"

    @property
    def label(self):
        from inventory.crawler import Range

        return Range.from_model(self).label


class CrawlProblem(models.Model):
    """A C-FIND response the crawl could not take as it was (no PHI in `detail`)."""

    run = models.ForeignKey(CrawlRun, on_delete=models.CASCADE, related_name="problem_set")
    range = models.ForeignKey(CrawlRange, null=True, blank=True, on_delete=models.SET_NULL)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.CASCADE)
    code = models.CharField(max_length=40)
    detail = models.CharField(max_length=300)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.code}: {self.detail}"


class GrowthSnapshot(models.Model):
    """Totals of a source after each complete crawl: the archive's recorded growth."""

    source = models.ForeignKey(PacsSource, on_delete=models.CASCADE, related_name="snapshots")
    run = models.OneToOneField(CrawlRun, null=True, blank=True, on_delete=models.SET_NULL)
    taken_at = models.DateTimeField()
    studies = models.PositiveIntegerField()
    series = models.PositiveIntegerField()
    instances = models.PositiveBigIntegerField()
    new_studies = models.PositiveIntegerField(default=0)
    vanished_studies = models.PositiveIntegerField(default=0)
    estimated_bytes = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["taken_at"]

    def __str__(self):
        return f"{self.source} at {self.taken_at:%Y-%m-%d}: {self.studies} studies"


# -- the environment catalogue ---------------------------------------------------------


class Integration(models.Model):
    """A system the PACS exchanges data with (EMR, RIS, billing, batch/file interfaces)."""

    class Kind(models.TextChoices):
        EMR = "emr", "EMR"
        RIS = "ris", "RIS"
        BILLING = "billing", "Billing"
        BATCH = "batch", "Batch / file interface"
        OTHER = "other", "Other"

    class Protocol(models.TextChoices):
        HL7V2 = "hl7v2", "HL7 v2"
        DICOM = "dicom", "DICOM"
        FHIR = "fhir", "FHIR"
        FILE = "file", "File"
        OTHER = "other", "Other"

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound (to the PACS)"
        OUTBOUND = "outbound", "Outbound (from the PACS)"
        BOTH = "both", "Both ways"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PLANNED = "planned", "Planned"
        CUTTING_OVER = "cutting_over", "Cutting over"
        CUT_OVER = "cut_over", "Cut over"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind)
    protocol = models.CharField(max_length=10, choices=Protocol)
    direction = models.CharField(max_length=10, choices=Direction)
    owner = models.CharField(max_length=100, help_text="who answers for it")
    endpoint = models.CharField(
        max_length=255, blank=True, help_text="host:port, AE title, URL or path"
    )
    state = models.CharField(max_length=12, choices=State, default=State.ACTIVE)
    source = models.ForeignKey(
        PacsSource,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="integrations",
        help_text="the PACS it talks to",
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class SharingWorkflow(models.Model):
    """An internal image-sharing workflow (e.g. tumour board, outside reads, CD import)."""

    class Mechanism(models.TextChoices):
        DICOM_PUSH = "dicom_push", "DICOM push (C-STORE)"
        QUERY_RETRIEVE = "qr", "Query/retrieve"
        PORTAL = "portal", "Web portal"
        MEDIA = "media", "CD/DVD/USB media"
        EMAIL = "email", "E-mail / secure messaging"
        OTHER = "other", "Other"

    name = models.CharField(max_length=100, unique=True)
    mechanism = models.CharField(max_length=12, choices=Mechanism)
    from_party = models.CharField("from", max_length=100)
    to_party = models.CharField("to", max_length=100)
    monthly_volume = models.PositiveIntegerField(null=True, blank=True, help_text="studies")
    owner = models.CharField(max_length=100)
    integrations = models.ManyToManyField(Integration, blank=True, related_name="workflows")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ViewerCapability(models.Model):
    """A diagnostic capability of a viewer: the standard checklist plus free entries."""

    STANDARD = (
        ("window_level", "Window/level"),
        ("zoom_pan", "Zoom/pan"),
        ("measurements", "Measurements"),
        ("mpr", "MPR"),
        ("hanging_protocols", "Hanging protocols"),
        ("prior_comparison", "Prior comparison"),
        ("key_images", "Key images"),
        ("annotations", "Annotations"),
        ("cine", "Cine"),
        ("fusion", "Fusion"),
    )

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=100, unique=True)
    standard = models.BooleanField(default=False)

    class Meta:
        ordering = ["-standard", "name"]
        verbose_name_plural = "viewer capabilities"

    def __str__(self):
        return self.name


class Viewer(models.Model):
    """A viewer in use today, and the capabilities clinicians rely on."""

    class Kind(models.TextChoices):
        DIAGNOSTIC = "diagnostic", "Diagnostic workstation"
        CLINICAL = "clinical", "Clinical / web viewer"
        MOBILE = "mobile", "Mobile"
        SPECIALTY = "specialty", "Specialty (e.g. cardiology, 3D)"

    name = models.CharField(max_length=100, unique=True)
    vendor = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=50, blank=True)
    kind = models.CharField(max_length=12, choices=Kind)
    users = models.PositiveIntegerField(null=True, blank=True, help_text="how many use it")
    capabilities = models.ManyToManyField(ViewerCapability, blank=True, related_name="viewers")
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class AccessRole(models.Model):
    """A role of the legacy environment's access control, with how many users hold it."""

    system = models.CharField(max_length=100, help_text="e.g. PACS, RIS, a viewer")
    name = models.CharField("role", max_length=100)
    user_count = models.PositiveIntegerField(default=0)
    permissions = models.CharField(max_length=300, blank=True)
    source = models.ForeignKey(
        PacsSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="access_roles"
    )
    viewer = models.ForeignKey(
        Viewer, null=True, blank=True, on_delete=models.SET_NULL, related_name="access_roles"
    )

    class Meta:
        ordering = ["system", "name"]
        constraints = [
            models.UniqueConstraint(fields=["system", "name"], name="unique_role_per_system")
        ]

    def __str__(self):
        return f"{self.system}: {self.name}"


class AuditLogLocation(models.Model):
    """Where a legacy system keeps its audit log (needed to answer access requests later)."""

    system = models.CharField(max_length=100, unique=True)
    location = models.CharField(max_length=255, help_text="path, database, syslog host or URL")
    log_format = models.CharField("format", max_length=100, blank=True)
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    owner = models.CharField(max_length=100, blank=True)
    source = models.ForeignKey(
        PacsSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_logs"
    )
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_logs"
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["system"]

    def __str__(self):
        return self.system


class Witness(models.Model):
    """A second witness of what the PACS holds: its storage folder read file by file, or a
    listing exported from its database. Compared with the crawl by `inventory compare`."""

    class Kind(models.TextChoices):
        SCAN = "scan", "storage scan"
        LISTING = "listing", "database listing"

    source = models.ForeignKey(PacsSource, on_delete=models.CASCADE, related_name="witnesses")
    kind = models.CharField(max_length=10, choices=Kind)
    location = models.CharField(max_length=500, help_text="the folder or file read")
    created_at = models.DateTimeField(auto_now_add=True)
    files = models.PositiveIntegerField(default=0)
    studies = models.PositiveIntegerField(default=0)
    instances = models.PositiveIntegerField(default=0)
    unreadable = models.JSONField(default=list, blank=True, help_text="[{path, reason}]")
    compared_run = models.ForeignKey(
        CrawlRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comparison = models.JSONField(default=dict, blank=True, help_text="the last compare")

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.pk} of {self.source}"


class WitnessInstance(models.Model):
    """One object (or, from a listing, one study) as the witness saw it."""

    witness = models.ForeignKey(Witness, on_delete=models.CASCADE, related_name="entries")
    study_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64, blank=True)
    sop_uid = models.CharField(max_length=64, blank=True)
    transfer_syntax = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["witness", "study_uid"])]

    def __str__(self):
        return f"{self.study_uid} ({self.witness})"
