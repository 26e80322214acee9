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
