from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared plumbing every app imports: events, access rules, audit, alerts, health."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        from core import audit, sessions

        audit.mask_phi_in_audit_log()
        sessions.connect_signals()
