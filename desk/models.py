import uuid
from pathlib import Path

from django.conf import settings
from django.db import models

from desk import catalog, workflow
from desk.priority import PRIORITIES

# --- The 24/7 command center: configuration tables (data, editable in the admin) ------------


class PriorityRule(models.Model):
    """One cell of the impact × urgency matrix."""

    impact = models.CharField(max_length=10, choices=catalog.LEVELS)
    urgency = models.CharField(max_length=10, choices=catalog.LEVELS)
    priority = models.CharField(max_length=2, choices=PRIORITIES)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["impact", "urgency"], name="one_priority_per_cell")
        ]

    def __str__(self):
        return f"{self.impact} impact × {self.urgency} urgency → {self.priority}"


class Transition(models.Model):
    """An allowed status change, and the access rule it needs."""

    source = models.CharField(max_length=20, choices=workflow.STATUSES)
    target = models.CharField(max_length=20, choices=workflow.STATUSES)
    rule = models.CharField(max_length=40, default=workflow.DEFAULT_RULE)
    allowed = models.BooleanField(default=True, help_text="untick to forbid a default move")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="one_transition_per_pair")
        ]

    def __str__(self):
        return f"{self.source} → {self.target} ({self.rule})"


class SlaTarget(models.Model):
    priority = models.CharField(max_length=2, choices=PRIORITIES, unique=True)
    acknowledge_minutes = models.PositiveIntegerField()
    resolve_minutes = models.PositiveIntegerField()

    def __str__(self):
        return (
            f"{self.priority}: ack {self.acknowledge_minutes} min, resolve {self.resolve_minutes}"
        )


# --- Tickets ---------------------------------------------------------------------------------


class Ticket(models.Model):
    """A go-live problem. State changes go through `desk.tickets` (history, events)."""

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=20, choices=catalog.CATEGORIES, default="other")
    team = models.CharField(max_length=20, choices=catalog.TEAMS, default="service_desk")
    department = models.CharField("department or location", max_length=100, blank=True)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reported_tickets",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    impact = models.CharField(max_length=10, choices=catalog.LEVELS, default="medium")
    urgency = models.CharField(max_length=10, choices=catalog.LEVELS, default="medium")
    priority = models.CharField(max_length=2, choices=PRIORITIES)
    status = models.CharField(max_length=20, choices=workflow.STATUSES, default="new")
    source = models.CharField(max_length=20, choices=catalog.SOURCES, default="staff")
    cause = models.CharField(
        max_length=200, blank=True, help_text="dedup key of automatic tickets", db_index=True
    )
    occurrences = models.PositiveIntegerField(default=1)
    last_seen = models.DateTimeField(null=True, blank=True)
    links = models.JSONField(default=dict, blank=True, help_text="study, wave, integration, …")
    opened_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    ack_due = models.DateTimeField()
    resolve_due = models.DateTimeField()
    paused_since = models.DateTimeField(null=True, blank=True)
    paused_seconds = models.FloatField(default=0)
    escalations = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["status", "priority", "opened_at"]),
            models.Index(fields=["status", "updated_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["cause"],
                condition=models.Q(status__in=workflow.OPEN_STATUSES) & ~models.Q(cause=""),
                name="one_open_ticket_per_cause",
            )
        ]

    def __str__(self):
        return f"#{self.pk} {self.title}"

    @property
    def is_open(self):
        return self.status in workflow.OPEN_STATUSES


class TicketEvent(models.Model):
    """One line of a ticket's history: who changed what, when, before → after."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    kind = models.CharField(max_length=20)
    field = models.CharField(max_length=40, blank=True)
    before = models.CharField(max_length=300, blank=True)
    after = models.CharField(max_length=300, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{self.ticket_id} {self.kind} {self.field} at {self.at:%Y-%m-%d %H:%M}"


class Comment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"comment on #{self.ticket_id} by {self.author}"


def _attachment_path(instance, filename):
    return f"tickets/{instance.ticket_id}/{uuid.uuid4().hex}{Path(filename).suffix.lower()}"


class Attachment(models.Model):
    """A screenshot, type-checked by its content (not its name) and size-checked."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["uploaded_at", "pk"]

    def __str__(self):
        return self.name


# --- Escalation and notifications -----------------------------------------------------------


class EscalationPolicy(models.Model):
    """Ordered steps for tickets of one priority; the whole policy repeats up to
    `repeat_times` times, every `repeat_after_minutes`, while its condition holds."""

    name = models.CharField(max_length=100)
    priority = models.CharField(max_length=2, choices=PRIORITIES, unique=True)
    active = models.BooleanField(default=True)
    repeat_times = models.PositiveSmallIntegerField(default=0)
    repeat_after_minutes = models.PositiveIntegerField(default=30)

    class Meta:
        ordering = ["priority"]
        verbose_name_plural = "escalation policies"

    def __str__(self):
        return f"{self.name} ({self.priority})"


class EscalationStep(models.Model):
    class Condition(models.TextChoices):
        UNACKNOWLEDGED = "unacknowledged", "still unacknowledged"
        UNRESOLVED = "unresolved", "still unresolved"

    class Target(models.TextChoices):
        PERSON = "person", "a person"
        ON_CALL = "on_call", "the on-call of a rotation"
        LEAD = "lead", "the lead on call"

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(default=1)
    after_minutes = models.PositiveIntegerField()
    condition = models.CharField(max_length=20, choices=Condition, default=Condition.UNACKNOWLEDGED)
    target = models.CharField(max_length=10, choices=Target, default=Target.ON_CALL)
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    rotation = models.ForeignKey(
        "Rotation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["policy", "order", "after_minutes"]

    def __str__(self):
        return f"step {self.order}: after {self.after_minutes} min {self.condition} → {self.target}"


class Escalation(models.Model):
    """One firing of a step (in one repetition) for one ticket."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalation_log")
    step = models.ForeignKey(EscalationStep, null=True, on_delete=models.SET_NULL)
    cycle = models.PositiveSmallIntegerField(default=0)
    at = models.DateTimeField()
    notified = models.JSONField(default=list)
    summary = models.CharField(max_length=300)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "step", "cycle"], name="one_firing_per_step_cycle"
            )
        ]

    def __str__(self):
        return self.summary


class Notification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cc_notifications"
    )
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.CASCADE)
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self):
        return self.text


# --- Shift roster ----------------------------------------------------------------------------


class Rotation(models.Model):
    """A 24/7 rotation: members take turns in shifts of `shift_hours`, handing off at
    `starts_at` + k × shift_hours (e.g. 07:00 and 19:00 for 12-hour shifts)."""

    name = models.CharField(max_length=100, unique=True)
    role_label = models.CharField(max_length=60, help_text="e.g. 'Primary on call'")
    starts_at = models.DateTimeField(help_text="the first handoff; later ones follow from it")
    shift_hours = models.PositiveSmallIntegerField(default=12)
    is_lead = models.BooleanField(default=False, help_text="the lead on call, for escalations")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-is_lead", "name"]

    def __str__(self):
        return self.name


class RotationMember(models.Model):
    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField()
    contact = models.CharField(max_length=100, blank=True, help_text="phone or pager")

    class Meta:
        ordering = ["rotation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rotation", "position"], name="one_member_per_slot")
        ]

    def __str__(self):
        return f"{self.user} #{self.position} in {self.rotation}"


class Override(models.Model):
    """Someone covers a rotation for a while (swap, sickness)."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self):
        return f"{self.user} covers {self.rotation} {self.starts_at:%Y-%m-%d %H:%M}"


class HandoffNote(models.Model):
    """The outgoing shift's note; the next shift acknowledges it."""

    rotation = models.ForeignKey(Rotation, on_delete=models.CASCADE, related_name="handoffs")
    shift_start = models.DateTimeField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    written_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-shift_start"]
        constraints = [
            models.UniqueConstraint(fields=["rotation", "shift_start"], name="one_note_per_shift")
        ]

    def __str__(self):
        return f"handoff of {self.rotation} shift {self.shift_start:%Y-%m-%d %H:%M}"


# --- System monitoring -----------------------------------------------------------------------


class Monitor(models.Model):
    """A threshold on a monitored metric; crossing it opens (or updates) a ticket."""

    class Metric(models.TextChoices):
        WORKERS_ONLINE = "workers_online", "workers online"
        QUEUE_DEPTH = "queue_depth", "queue depth (per queue)"
        TASKS_PER_MINUTE = "tasks_per_minute", "tasks per minute"
        FAILURES_PER_MINUTE = "failures_per_minute", "task failures per minute"
        PACS_RESPONSE_MS = "pacs_response_ms", "PACS C-ECHO response time, ms (per PACS)"
        PACS_DOWN = "pacs_down", "PACS not answering C-ECHO (per PACS, 1 = down)"
        PACS_ASSOCIATIONS = "pacs_associations", "PACS associations in use (per PACS)"
        DESTINATION_ERRORS = "destination_errors", "destination errors (per destination)"
        DESTINATION_LATENCY_MS = (
            "destination_latency_ms",
            "destination latency, ms (per destination)",
        )

    class Comparison(models.TextChoices):
        ABOVE = "above", "above"
        BELOW = "below", "below"

    name = models.CharField(max_length=100, unique=True)
    metric = models.CharField(max_length=30, choices=Metric)
    comparison = models.CharField(max_length=5, choices=Comparison, default=Comparison.ABOVE)
    threshold = models.FloatField()
    impact = models.CharField(max_length=10, choices=catalog.LEVELS, default="high")
    urgency = models.CharField(max_length=10, choices=catalog.LEVELS, default="medium")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name}: {self.metric} {self.comparison} {self.threshold:g}"


class MetricSample(models.Model):
    """What the monitoring board shows, sampled by beat once a minute."""

    at = models.DateTimeField(db_index=True)
    workers = models.JSONField(default=list)
    queues = models.JSONField(default=dict)
    tasks_per_minute = models.FloatField(null=True)
    failures_per_minute = models.FloatField(null=True)
    pacs = models.JSONField(default=list)
    destinations = models.JSONField(null=True)
    migration = models.JSONField(null=True)
    transfer = models.JSONField(null=True, help_text="cumulative instances and bytes")
    instances_per_s = models.FloatField(null=True)
    mb_per_s = models.FloatField(null=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"sample at {self.at:%Y-%m-%d %H:%M}"
