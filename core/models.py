"""Shared records: who saw PHI, health samples, API tokens."""

from django.conf import settings
from django.db import models


class PHIAccess(models.Model):
    """One view of protected health information: who saw what, when, from where.

    Model changes are audited by django-auditlog; this log records *reads*,
    which auditlog does not see. Rows carry ledger ids, never the PHI itself.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    what = models.CharField(max_length=100, help_text="kind of record, e.g. inventory.study")
    object_id = models.CharField(max_length=100, blank=True)
    count = models.PositiveIntegerField(default=1, help_text="records shown on the page")
    path = models.CharField(max_length=300)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["what", "object_id"])]
        verbose_name = "PHI access"
        verbose_name_plural = "PHI accesses"

    def __str__(self):
        return f"{self.user} viewed {self.what} {self.object_id} at {self.at:%Y-%m-%d %H:%M}"


class HealthSample(models.Model):
    """A periodic health check of one component, kept for the monitoring history."""

    component = models.CharField(max_length=40)
    ok = models.BooleanField()
    detail = models.CharField(max_length=300, blank=True)
    ms = models.FloatField(null=True)
    checked_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["component", "-checked_at"])]

    def __str__(self):
        return f"{self.component} {'up' if self.ok else 'down'} at {self.checked_at:%H:%M:%S}"


class ApiToken(models.Model):
    """A system's key to the REST API: scoped to access rules, revocable, stored as a digest.

    A request made with it holds only the rules that are both in `scopes` and held by
    `user` (core.access.has_rule)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def usable_at(self, now):
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Alert(models.Model):
    """The outbox of `core.alerts`: a problem (or its recovery) reported for the desk.

    The row is written in the reporter's transaction, so an alert exists exactly when the
    change that caused it does; a Celery task takes it in (`core.alerts.drain`) and marks
    it done in the transaction that records it, so a worker that dies in between leaves a
    pending row that the next drain takes, and nothing is taken twice."""

    cause = models.CharField(max_length=200, help_text="the deduplication key: one open ticket")
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(
                fields=["cause", "id"],
                condition=models.Q(done_at__isnull=True),
                name="pending_alerts",
            )
        ]

    def __str__(self):
        state = "done" if self.done_at else "pending"
        return f"alert {self.cause} ({state})"
