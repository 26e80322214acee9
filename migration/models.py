"""The cloud target and the engine's ledger: destinations, mapping profiles, waves, one
ledger row per (wave, study), the per-study manifest, conflicts and quarantined instances.

State names, allowed transitions and error classes are data (`STUDY_TRANSITIONS`,
`WAVE_TRANSITIONS`, `ERROR_CLASSES`); `migration/ledger.py` is the one place that moves a
ledger row from one state to another.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.fields import HexDigestField
from core.indexes import EqualityIndex
from inventory.models import PacsSource, Study
from migration.tally import TALLY_SHARDS  # noqa: F401 (the tally's shards, with its SQL)


class StudyState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RETRIEVING = "retrieving", "Retrieving"
    UPLOADING = "uploading", "Uploading"
    VERIFYING = "verifying", "Verifying"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (will retry)"
    QUARANTINED = "quarantined", "Quarantined"
    CANCELLED = "cancelled", "Cancelled"


# to-state: the states a row may come from. Claiming (→ retrieving) from an active state is
# a reclaim, allowed only once that state's lease has expired (see ledger.claim_next).
STUDY_TRANSITIONS = {
    StudyState.RETRIEVING: {
        StudyState.QUEUED,
        StudyState.FAILED,
        StudyState.RETRIEVING,
        StudyState.UPLOADING,
        StudyState.VERIFYING,
    },
    StudyState.UPLOADING: {StudyState.RETRIEVING},
    StudyState.VERIFYING: {StudyState.UPLOADING},
    StudyState.DONE: {StudyState.VERIFYING},
    StudyState.FAILED: {StudyState.RETRIEVING, StudyState.UPLOADING, StudyState.VERIFYING},
    StudyState.QUARANTINED: {
        StudyState.RETRIEVING,
        StudyState.UPLOADING,
        StudyState.VERIFYING,
        StudyState.FAILED,
    },
    StudyState.QUEUED: {
        StudyState.QUARANTINED,
        StudyState.CANCELLED,
        StudyState.FAILED,
        StudyState.DONE,  # re-migrate after validation found a discrepancy
    },
    StudyState.CANCELLED: {StudyState.QUEUED, StudyState.FAILED},
}
ACTIVE_STATES = (StudyState.RETRIEVING, StudyState.UPLOADING, StudyState.VERIFYING)
TERMINAL_STATES = (StudyState.DONE, StudyState.QUARANTINED, StudyState.CANCELLED)

# Error classes: label for people, whether another attempt may help, ticket category.
ERROR_CLASSES = {
    "pacs_refused": ("PACS refused", True, "performance"),
    "association_limit": ("Association limit", True, "performance"),
    "timeout": ("Timeout", True, "performance"),
    "pacs_connection": ("PACS connection lost", True, "performance"),
    "not_found": ("Not found on PACS", True, "missing/incorrect images"),
    "destination_error": ("Destination error", True, "performance"),
    "verification_mismatch": ("Verification mismatch", True, "missing/incorrect images"),
    "bad_data": ("Bad data", False, "missing/incorrect images"),
    "worker_lost": ("Worker lost", True, "performance"),
    "configuration": ("Configuration", False, "performance"),
    "internal": ("Internal error", True, "performance"),
}
ERROR_CHOICES = [(code, label) for code, (label, _retry, _category) in ERROR_CLASSES.items()]


class WaveState(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


WAVE_TRANSITIONS = {
    "start": ({WaveState.DRAFT, WaveState.DONE}, WaveState.RUNNING),
    "pause": ({WaveState.RUNNING}, WaveState.PAUSED),
    "resume": ({WaveState.PAUSED}, WaveState.RUNNING),
    "cancel": ({WaveState.DRAFT, WaveState.RUNNING, WaveState.PAUSED}, WaveState.CANCELLED),
    "finish": ({WaveState.RUNNING}, WaveState.DONE),
}


class Destination(models.Model):
    """Where studies go. Credentials are never stored: S3 names environment variables (or
    uses boto3's default chain), DICOMweb names the variable holding its auth header."""

    class Kind(models.TextChoices):
        S3 = "s3", "S3"
        DICOMWEB = "dicomweb", "DICOMweb (STOW-RS)"
        FILESYSTEM = "filesystem", "Filesystem folder"

    class Encryption(models.TextChoices):
        NONE = "", "None"
        AES256 = "AES256", "SSE-S3 (AES256)"
        KMS = "aws:kms", "SSE-KMS"

    name = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=10, choices=Kind)
    bucket = models.CharField(max_length=63, blank=True)
    prefix = models.CharField(max_length=200, blank=True, help_text="key prefix, no leading /")
    region = models.CharField(max_length=40, blank=True)
    endpoint_url = models.URLField(blank=True, help_text="for S3-compatible stores")
    sse = models.CharField("server-side encryption", max_length=8, choices=Encryption, blank=True)
    kms_key_id = models.CharField(max_length=200, blank=True)
    storage_class = models.CharField(max_length=40, blank=True)
    access_key_env = models.CharField(
        max_length=100, blank=True, help_text="name of the variable holding the access key id"
    )
    secret_key_env = models.CharField(
        max_length=100, blank=True, help_text="name of the variable holding the secret key"
    )
    url = models.URLField("DICOMweb base URL", blank=True)
    auth_header_env = models.CharField(
        max_length=100, blank=True, help_text="variable holding the Authorization header value"
    )
    path = models.CharField("folder", max_length=500, blank=True)
    max_object_mb = models.PositiveIntegerField(
        null=True, blank=True, help_text="largest instance the destination takes (lint)"
    )
    coerce = models.JSONField(
        default=list, blank=True, help_text="lint coercion rules to apply (see migration/lint.py)"
    )
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_detail = models.CharField(max_length=300, blank=True)
    last_check_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    REQUIRED = {"s3": ("bucket",), "dicomweb": ("url",), "filesystem": ("path",)}

    def clean(self):
        from django.core.exceptions import ValidationError

        missing = {
            name: f"required for a {self.get_kind_display()} destination"
            for name in self.REQUIRED.get(self.kind, ())
            if not getattr(self, name)
        }
        if self.kind == "filesystem" and self.path and not self.path.startswith("/"):
            missing["path"] = "must be an absolute path"
        if self.sse == "aws:kms" and self.kind != "s3":
            missing["sse"] = "only S3 destinations encrypt server-side"
        if ".." in self.prefix.split("/"):
            missing["prefix"] = "a prefix cannot climb out of its root (no '..')"
        missing.update(self._egress_problems())
        if missing:
            raise ValidationError(missing)

    def _egress_problems(self):
        """Credential variable names and URLs the egress policy refuses (see
        core/egress.py)."""
        from core import egress

        policy = egress.current_policy()
        problems = {
            field: egress.secret_name_problem(getattr(self, field), policy)
            for field in ("access_key_env", "secret_key_env", "auth_header_env")
        }
        problems.update(
            {
                field: egress.url_problem(getattr(self, field), policy)
                for field in ("url", "endpoint_url")
                if getattr(self, field)
            }
        )
        return {field: problem for field, problem in problems.items() if problem}

    @property
    def summary(self):
        """Where it points, without secrets."""
        from core.egress import mask_url

        if self.kind == "s3":
            where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
            return f"{where} ({mask_url(self.endpoint_url)})" if self.endpoint_url else where
        return mask_url(self.url) if self.kind == "dicomweb" else self.path


class LookupTable(models.Model):
    """A two-column mapping, e.g. legacy PatientID → enterprise MRN (holds PHI)."""

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=200, blank=True)
    entries = models.JSONField(default=dict)

    PHI_FIELDS = ("entries",)  # masked in the audit log (core/audit.py)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class MappingProfile(models.Model):
    """Ordered tag rules turning legacy objects into the cloud schema (migration/mapping.py)."""

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=200, blank=True)
    rules = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Wave(models.Model):
    """A named selection of inventory studies moved to one destination on a schedule."""

    name = models.SlugField(max_length=60, unique=True)
    source = models.ForeignKey(PacsSource, on_delete=models.PROTECT, related_name="waves")
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="waves")
    profile = models.ForeignKey(
        MappingProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="waves"
    )
    priority = models.IntegerField(default=0, help_text="higher runs first")
    state = models.CharField(max_length=10, choices=WaveState, default=WaveState.DRAFT)
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    modalities = models.JSONField(default=list, blank=True)
    accession_numbers = models.JSONField(default=list, blank=True)
    patient_ids = models.JSONField(default=list, blank=True)
    PHI_FIELDS = ("accession_numbers", "patient_ids")  # masked in the audit log
    schedule = models.JSONField(
        default=list,
        blank=True,
        help_text="7×24 max associations (Monday first); null = PACS limit",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self):
        return self.name

    def clean(self):
        if self.source_id and (problem := self.source.move_limit_problem(self.schedule)):
            raise ValidationError({"schedule": problem})


class WaveStudy(models.Model):
    """The migration ledger: one row per (wave, study), a guarded state machine."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="ledger")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="migrations")
    state = models.CharField(max_length=12, choices=StudyState, default=StudyState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True, help_text="next retry")
    lease_owner = models.CharField(max_length=120, blank=True)
    host = models.CharField(max_length=80, blank=True, help_text="worker host of the last attempt")
    lease_expires = models.DateTimeField(null=True, blank=True)
    error_class = models.CharField(max_length=24, choices=ERROR_CHOICES, blank=True)
    last_error = models.TextField(blank=True)
    instances_reported = models.PositiveIntegerField(null=True, blank=True)
    instances_received = models.PositiveIntegerField(default=0)
    instances_stored = models.PositiveIntegerField(default=0)
    instances_quarantined = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    bytes_stored = models.BigIntegerField(default=0)
    pacs_latency_ms = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    manifest_key = models.CharField(max_length=400, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    key_format = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",  # rows inserted by code that predates it (a rolling upgrade)
        help_text="where the study's instances sit in the destination: their key with "
        "{series} and {sop} for the UIDs ('': each instance row holds its own key)",
    )
    updated_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wave", "study"], name="one_ledger_row_per_wave_study")
        ]
        indexes = [
            models.Index(fields=["wave", "state"]),
            models.Index(fields=["state", "not_before"]),
            # a page of a wave's ledger (all, or of one state) in ledger order, by keyset
            models.Index(fields=["wave", "id"], name="ledger_wave_order"),
            models.Index(fields=["wave", "state", "id"], name="ledger_wave_state_order"),
            # the wave page's slowest studies without sorting every done row of the wave
            models.Index(fields=["wave", "state", "-duration_s"], name="ledger_slowest"),
        ]
        verbose_name = "ledger row"

    def __str__(self):
        return f"ledger {self.pk} ({self.state})"

    @property
    def error_label(self):
        return ERROR_CLASSES.get(self.error_class, (self.error_class,))[0]

    def instance_key(self, series_uid, sop_uid):
        """Where the study's key format places an instance ("" without a format)."""
        if not self.key_format:
            return ""
        return self.key_format.replace("{series}", series_uid).replace("{sop}", sop_uid)


class LedgerTally(models.Model):
    """Per wave and state, how many ledger rows and their instance and byte sums: kept
    exact by database triggers on the ledger (in the transaction of each change, see
    migration/tally.py), so pages read a few rows instead of counting a wave of millions.
    Each (wave, state) is spread over TALLY_SHARDS rows (ledger id modulo) so that workers
    finishing studies at once seldom wait for the same row."""

    wave_pk = models.BigIntegerField(db_column="wave_id")
    state = models.CharField(max_length=12)
    shard = models.SmallIntegerField()
    studies = models.BigIntegerField(default=0)
    instances_reported = models.BigIntegerField(default=0)
    instances_stored = models.BigIntegerField(default=0)
    bytes_stored = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["wave_pk", "state", "shard"], name="one_tally_per_wave_state_shard"
            )
        ]

    def __str__(self):
        return f"wave {self.wave_pk} {self.state} #{self.shard}: {self.studies}"


class StoredInstance(models.Model):
    """The manifest in the database: one row per object the study put in the destination.

    Validation reads these: `key` locates the object, `sha256` is of the stored bytes.
    An object where its study's key format places it keeps no key of its own (`own_key`
    empty): a billion rows spared 190 bytes each; a conflict copy, or an object written
    before the formats were kept, holds its whole key.
    """

    class Role(models.TextChoices):
        STORED = "stored", "Stored"
        CONFLICT = "conflict", "Conflicting copy"

    ledger = models.ForeignKey(
        WaveStudy, on_delete=models.CASCADE, related_name="instances", db_index=False
    )  # the (ledger, sop_uid) index serves it
    sop_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64)
    sop_class = models.CharField(max_length=64)
    transfer_syntax = models.CharField(max_length=64)
    size = models.BigIntegerField()
    sha256 = HexDigestField()
    own_key = models.CharField(max_length=500, blank=True, db_column="key")
    role = models.CharField(max_length=8, choices=Role, default=Role.STORED)
    reported_syntax = models.CharField(
        max_length=64, blank=True, help_text="the syntax the PACS reported storing it in"
    )

    class Meta:
        # Two indexes only, at a billion rows each byte counts: a study's instances (the
        # ledger id alone: PostgreSQL's B-tree keeps one entry per study's run of rows,
        # 9 B a row where (ledger, sop_uid) took 68) and a UID stored elsewhere (equality
        # only: a hash, 28 B a row where a B-tree took 59), as bench/scale.py measured.
        indexes = [
            models.Index(fields=["ledger"], name="stored_ledger"),
            EqualityIndex(fields=["sop_uid"], name="stored_sop_uid_eq"),
            models.Index(  # the few the PACS sent in another syntax (wave page, validation)
                fields=["id"],
                name="stored_transcoded",
                condition=models.Q(role="stored")
                & ~models.Q(reported_syntax="")
                & ~models.Q(reported_syntax=models.F("transfer_syntax")),
            ),
        ]

    def __str__(self):
        return f"{self.role} {self.sop_uid}"

    @property
    def key(self):
        """Where the object is in the destination."""
        return self.own_key or self.ledger.instance_key(self.series_uid, self.sop_uid)

    @key.setter
    def key(self, value):
        placed = self.ledger.instance_key(self.series_uid, self.sop_uid)
        self.own_key = "" if value == placed else value


class QuarantinedInstance(models.Model):
    """An instance the engine would not store as is, with the reason; its bytes are kept
    aside (`key`), never dropped."""

    ledger = models.ForeignKey(WaveStudy, on_delete=models.CASCADE, related_name="quarantined")
    sop_uid = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=500)
    key = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"quarantined {self.sop_uid or self.sha256[:12]}"


class KeptAside(models.Model):
    """An instance a host's Storage SCP received but no study run asked for (another
    study, a run that ended or died mid-C-MOVE, a PACS moving on its own), kept in its
    MIGRATION_STORAGE_SCP_ASIDE folder with the reason: never dropped, shown on the wave
    page it belongs to. UIDs, AE titles and the reason only, no PHI."""

    host = models.CharField(max_length=80)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField(default=0)
    path = models.CharField(max_length=500, help_text="the file on that host")
    study_uid = models.CharField(max_length=64, blank=True, db_index=True)
    sop_uid = models.CharField(max_length=64, blank=True)
    sop_class = models.CharField(max_length=64, blank=True)
    move_originator = models.CharField(max_length=16, blank=True)
    calling_ae_title = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=500)
    received_at = models.DateTimeField()
    source = models.ForeignKey(
        PacsSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="kept_aside"
    )
    wave = models.ForeignKey(
        "Wave", null=True, blank=True, on_delete=models.SET_NULL, related_name="kept_aside"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "sha256"], name="kept_aside_once_per_host")
        ]
        indexes = [models.Index(fields=["wave", "-received_at"], name="kept_aside_wave_recent")]
        verbose_name = "instance kept aside"
        verbose_name_plural = "instances kept aside"

    def __str__(self):
        return f"kept aside {self.sop_uid or self.sha256[:12]} on {self.host}"


class Conflict(models.Model):
    """One SOP Instance UID seen with two different contents. The first copy stays where
    it is; the other is kept under a conflict key until a person decides."""

    class Decision(models.TextChoices):
        OPEN = "", "Open"
        KEEP_FIRST = "keep_first", "Keep the first copy"
        KEEP_BOTH = "keep_both", "Keep both"
        USE_SECOND = "use_second", "Use the second copy"

    ledger = models.ForeignKey(WaveStudy, on_delete=models.CASCADE, related_name="conflict_set")
    sop_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64)
    kept_key = models.CharField(max_length=500)
    kept_sha256 = models.CharField(max_length=64)
    other_key = models.CharField(max_length=500)
    other_sha256 = models.CharField(max_length=64)
    other_size = models.BigIntegerField(default=0)
    detected_at = models.DateTimeField(auto_now_add=True)
    decision = models.CharField(max_length=12, choices=Decision, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["ledger", "sop_uid", "other_sha256"], name="one_conflict_per_copy"
            )
        ]

    def __str__(self):
        return f"conflict on {self.sop_uid}"


class EngineControl(models.Model):
    """The engine's global switches (one row): the command center's pause button and the
    PACS latency bound of the closed-loop throttle."""

    paused = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_at = models.DateTimeField(null=True, blank=True)
    latency_bound_ms = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="empty: the setting"
    )

    def __str__(self):
        return "engine paused" if self.paused else "engine running"

    @classmethod
    def get(cls):
        return cls.objects.get_or_create(pk=1)[0]


class ValidationRun(models.Model):
    """One reconciliation, spot-check or availability check, run as a Celery task; its
    progress is published live and its result (the `validate … --json` object without the
    discrepancy list) is kept in `totals`."""

    class Kind(models.TextChoices):
        RECONCILE = "reconcile", "Reconciliation"
        SPOTCHECK = "spotcheck", "Spot-check"
        AVAILABILITY = "availability", "Availability check"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    wave = models.ForeignKey(
        Wave, null=True, blank=True, on_delete=models.CASCADE, related_name="validation_runs"
    )
    kind = models.CharField(max_length=12, choices=Kind)
    state = models.CharField(max_length=8, choices=State, default=State.QUEUED)
    sample_size = models.PositiveIntegerField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["wave", "kind", "state"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.pk} ({self.state})"


class ReconciliationRow(models.Model):
    """One study's line of a finished reconciliation. Rows rather than a list in the run's
    `totals`: a wave may hold millions of studies, and the report pages through them by
    ledger id (filtered by verdict) on an index instead of parsing one document."""

    FIELDS = ("ledger_id", "study_uid", "state", "reported_at_inventory", "on_pacs_now",
              "in_destination", "verdict", "missing", "extra", "transcoded")  # fmt: skip

    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="report_rows")
    ledger_id = models.BigIntegerField()
    study_uid = models.CharField(max_length=64)
    state = models.CharField(max_length=16)
    reported_at_inventory = models.IntegerField(null=True)
    on_pacs_now = models.IntegerField(null=True)
    in_destination = models.IntegerField(default=0)
    verdict = models.CharField(max_length=60)
    missing = models.IntegerField(default=0)
    extra = models.IntegerField(default=0)
    transcoded = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "ledger_id"], name="one_report_row_per_study")
        ]
        indexes = [models.Index(fields=["run", "verdict", "ledger_id"], name="report_row_verdict")]

    def __str__(self):
        return f"reconciliation {self.run_id} · ledger {self.ledger_id}: {self.verdict}"


class Discrepancy(models.Model):
    """One difference between the source and the cloud copy, found by validation. A wave
    is validated only when its reconciliation is complete and none of these is open.

    `detail` names tags, frames and counts, never PHI values."""

    class Kind(models.TextChoices):
        MISSING = "missing", "Missing instance"
        EXTRA = "extra", "Extra instance"
        TAG = "tag", "Tag difference"
        PIXEL = "pixel", "Pixel difference"
        CHECKSUM = "checksum", "Checksum mismatch"
        RENDER = "render", "Render problem"
        CONFLICT = "conflict", "Conflict"
        QUARANTINED = "quarantined", "Quarantined"
        UNAVAILABLE = "unavailable", "Unavailable"
        TRANSCODED = "transcoded", "Transcoded by the PACS"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REMIGRATING = "remigrating", "Re-migrating"
        FIXED = "fixed", "Fixed"
        ACCEPTED = "accepted", "Accepted"

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="discrepancies")
    ledger = models.ForeignKey(
        WaveStudy, null=True, blank=True, on_delete=models.CASCADE, related_name="discrepancies"
    )
    run = models.ForeignKey(
        ValidationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="found"
    )
    study_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64, blank=True)
    sop_uid = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=12, choices=Kind)
    subject = models.CharField(
        max_length=80, blank=True, help_text="what inside the instance: a tag keyword, a frame"
    )
    detail = models.CharField(max_length=1000)
    status = models.CharField(max_length=12, choices=Status, default=Status.OPEN)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_discrepancies",
    )
    reason = models.CharField(max_length=500, blank=True, help_text="why it was accepted")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resolved_discrepancies",
    )

    OPEN_STATES = (Status.OPEN, Status.REMIGRATING)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["wave", "status"])]
        verbose_name_plural = "discrepancies"

    def __str__(self):
        return f"{self.kind} discrepancy {self.pk} ({self.status})"


class RenderReview(models.Model):
    """A reviewer's signed verdict on the side-by-side thumbnails of one instance."""

    class Verdict(models.TextChoices):
        OK = "ok", "Renders correctly"
        PROBLEM = "problem", "Problem"

    ledger = models.ForeignKey(WaveStudy, on_delete=models.CASCADE, related_name="reviews")
    sop_uid = models.CharField(max_length=64)
    verdict = models.CharField(max_length=8, choices=Verdict)
    note = models.CharField(max_length=500, blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    signed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-signed_at"]

    def __str__(self):
        return f"{self.get_verdict_display()} by {self.reviewer} on {self.sop_uid}"


# --- the cloud side's design, its conformance, and the forecast's editable data ----------


class DestinationDesign(models.Model):
    """What a destination must be, as data (migration/conformance.py checks the store
    against it). S3 requirements apply to S3 destinations, the DicomWeb ones to DICOMweb."""

    class Encryption(models.TextChoices):
        ANY = "", "Not required"
        AES256 = "AES256", "SSE-S3 (AES256)"
        KMS = "aws:kms", "SSE-KMS (named key)"

    class Auth(models.TextChoices):
        NONE = "", "Not required"
        BASIC = "basic", "HTTP Basic"
        BEARER = "bearer", "Bearer token (OAuth 2 / OIDC)"

    destination = models.OneToOneField(Destination, on_delete=models.CASCADE, related_name="design")
    encryption = models.CharField(max_length=8, choices=Encryption, blank=True)
    kms_key_id = models.CharField(max_length=200, blank=True, help_text="the key SSE-KMS must use")
    versioning = models.BooleanField(default=False)
    object_lock = models.BooleanField(default=False)
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="object lock default retention (days)"
    )
    retention_mode = models.CharField(
        max_length=10,
        blank=True,
        choices=[("GOVERNANCE", "Governance"), ("COMPLIANCE", "Compliance")],
    )
    block_public_access = models.BooleanField("public access fully blocked", default=False)
    tls_only_policy = models.BooleanField("bucket policy refuses non-TLS", default=False)
    transition_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="lifecycle: move objects after this many days"
    )
    transition_class = models.CharField(max_length=20, blank=True, default="STANDARD_IA")
    region = models.CharField(max_length=40, blank=True)
    required_tags = models.JSONField(default=dict, blank=True, help_text='{"key": "value"}')
    dicomweb_tls = models.BooleanField("DICOMweb over TLS", default=False)
    dicomweb_auth = models.CharField(max_length=8, choices=Auth, blank=True)
    notes = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self):
        return f"design of {self.destination}"


class ConformanceRun(models.Model):
    """One check of a destination against its design: each requirement with what the
    store answered (`requirements`: [{name, required, actual, ok, evidence}])."""

    destination = models.ForeignKey(
        Destination, on_delete=models.CASCADE, related_name="conformance_runs"
    )
    trigger = models.CharField(max_length=20, default="on demand")
    conforms = models.BooleanField(default=False)
    requirements = models.JSONField(default=list)
    error = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField(auto_now_add=True)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-checked_at", "-pk"]

    def __str__(self):
        return f"conformance of {self.destination_id}: {'ok' if self.conforms else 'not ok'}"


class ConformanceWaiver(models.Model):
    """A lead's decision that one wave may start although its destination does not
    conform to its design, with the reason."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="conformance_waivers")
    reason = models.CharField(max_length=500)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-granted_at"]

    def __str__(self):
        return f"waiver for wave {self.wave_id}"


class PriceList(models.Model):
    """Cloud list prices the forecast costs with; editable data with the date taken (never
    looked up on the network). See migration/forecast.py PRICE_KEYS for the keys."""

    name = models.SlugField(max_length=60, unique=True)
    region = models.CharField(max_length=40)
    currency = models.CharField(max_length=3, default="USD")
    taken_on = models.DateField(help_text="when these prices were read")
    source = models.CharField(max_length=300, blank=True)
    prices = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-taken_on", "name"]

    def __str__(self):
        return f"{self.name} ({self.region}, {self.taken_on})"


def between(low, high):
    return [MinValueValidator(low), MaxValueValidator(high)]


def validate_link_by_hour(shares):
    """24 shares of the link free per hour, midnight first, or none."""
    valid = isinstance(shares, list) and len(shares) in (0, 24)
    if not valid or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in shares
    ):
        raise ValidationError("24 shares between 0 and 1 (midnight first), or []")


class ForecastAssumptions(models.Model):
    """The forecast's editable assumptions (one row): the link, hosts, viewer reads,
    shipping devices, the target date."""

    link_mbps = models.FloatField(default=1000.0, validators=between(0.001, 1_000_000))
    link_by_hour = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_link_by_hour],
        help_text="24 shares of the link free per hour (empty: all)",
    )
    hosts = models.PositiveIntegerField(default=1, validators=between(1, 1000))
    hours_per_day = models.FloatField(
        null=True,
        blank=True,
        validators=between(0, 24),
        help_text="empty: the waves' schedules decide",
    )
    target_date = models.DateField(null=True, blank=True)
    reads_per_month = models.FloatField(
        default=0.02,
        validators=between(0, 100),
        help_text="share of the archive the viewers read each month",
    )
    egress_share = models.FloatField(
        default=1.0,
        validators=between(0, 1),
        help_text="share of viewer reads leaving the cloud (billed as egress)",
    )
    device_tb = models.FloatField(
        "shipping device capacity (TB)", default=80.0, validators=between(0.001, 10_000)
    )
    device_turnaround_days = models.FloatField(default=10.0, validators=between(0, 365))
    months_after = models.PositiveIntegerField(default=12, validators=between(0, 600))
    price_list = models.ForeignKey(PriceList, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "forecast assumptions"

    def __str__(self):
        return "forecast assumptions"

    @classmethod
    def get(cls):
        return cls.objects.get_or_create(pk=1)[0]
