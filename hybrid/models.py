"""The hybrid period: bridges from the cloud back to a legacy PACS, the forward ledger
(one row per study sent back, a guarded state machine) and the round-trip probes.

State names and allowed transitions are data (`FORWARD_TRANSITIONS`); `hybrid/actions.py`
is the one place that moves a forward row from one state to another.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from inventory.models import PacsSource
from migration.models import Destination


class Bridge(models.Model):
    """A cloud DICOM store watched for studies that arrive there first (STOW-RS from new
    modalities) and the legacy PACS they are forwarded to while integrations of that PACS
    are mid-cutover (`hybrid/routing.py`)."""

    name = models.SlugField(max_length=60, unique=True)
    destination = models.ForeignKey(
        Destination, on_delete=models.PROTECT, related_name="bridges", help_text="the cloud store"
    )
    source = models.ForeignKey(
        PacsSource, on_delete=models.PROTECT, related_name="bridges", help_text="the legacy PACS"
    )
    lookback_days = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
        help_text="studies dated this many days back are looked at in each scan",
    )
    lag_objective_s = models.FloatField(
        "lag objective (s)", default=900.0, validators=[MinValueValidator(1)]
    )
    enabled = models.BooleanField(default=True)
    last_scan_at = models.DateTimeField(null=True, blank=True)
    last_scan_detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ForwardState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending (C-STORE)"
    VERIFYING = "verifying", "Verifying (C-FIND)"
    DONE = "done", "Done (verified on legacy)"
    FAILED = "failed", "Failed (will retry)"
    QUARANTINED = "quarantined", "Quarantined"


# to-state: the states a row may come from. Claiming (→ sending) from an active state is a
# reclaim, allowed only once that state's lease has expired.
FORWARD_TRANSITIONS = {
    ForwardState.SENDING: {
        ForwardState.PENDING,
        ForwardState.FAILED,
        ForwardState.SENDING,
        ForwardState.VERIFYING,
    },
    ForwardState.VERIFYING: {ForwardState.SENDING},
    ForwardState.DONE: {ForwardState.VERIFYING},
    ForwardState.FAILED: {ForwardState.SENDING, ForwardState.VERIFYING},
    ForwardState.QUARANTINED: {ForwardState.SENDING, ForwardState.VERIFYING},
    ForwardState.PENDING: {ForwardState.QUARANTINED},  # a person retries it
}
FORWARD_ACTIVE = (ForwardState.SENDING, ForwardState.VERIFYING)


class Forward(models.Model):
    """The forward ledger: one study that reached the cloud first, sent to the legacy PACS
    once (unique per bridge and study) and verified there by C-FIND."""

    bridge = models.ForeignKey(Bridge, on_delete=models.CASCADE, related_name="forwards")
    study_uid = models.CharField("Study Instance UID", max_length=64)
    state = models.CharField(max_length=12, choices=ForwardState, default=ForwardState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True, help_text="next retry")
    lease_owner = models.CharField(max_length=120, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    instances_cloud = models.PositiveIntegerField(null=True, blank=True)
    instances_sent = models.PositiveIntegerField(default=0)
    instances_found = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    probe = models.BooleanField(default=False, help_text="a round-trip probe's test study")
    first_seen = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    lag_s = models.FloatField(null=True, blank=True, help_text="first seen → verified on legacy")

    class Meta:
        ordering = ["-first_seen", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["bridge", "study_uid"], name="forward_once_per_bridge")
        ]
        indexes = [
            models.Index(fields=["study_uid"], name="forward_study_uid"),
            models.Index(fields=["state", "not_before"], name="forward_claimable"),
        ]

    def __str__(self):
        return f"forward {self.pk} ({self.state})"


class RoundTrip(models.Model):
    """One round-trip probe of a bridge: a synthetic test study into the legacy PACS and
    seen verified in the cloud, one into the cloud and seen verified on the legacy PACS;
    each leg timed against the bridge's lag objective. The history is the evidence a
    "Verify bidirectional flow" stage is signed from."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    bridge = models.ForeignKey(Bridge, on_delete=models.CASCADE, related_name="round_trips")
    state = models.CharField(max_length=8, choices=State, default=State.RUNNING)
    objective_s = models.FloatField()
    to_cloud_ok = models.BooleanField(null=True, blank=True)
    to_cloud_s = models.FloatField(null=True, blank=True)
    to_cloud_detail = models.CharField(max_length=500, blank=True)
    to_cloud_study = models.CharField(max_length=64, blank=True)
    to_legacy_ok = models.BooleanField(null=True, blank=True)
    to_legacy_s = models.FloatField(null=True, blank=True)
    to_legacy_detail = models.CharField(max_length=500, blank=True)
    to_legacy_study = models.CharField(max_length=64, blank=True)
    trigger = models.CharField(max_length=20, default="on demand")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"round trip {self.pk} of {self.bridge_id} ({self.state})"

    @property
    def passed(self):
        return self.state == self.State.PASSED
