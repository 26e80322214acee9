from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The 24/7 go-live desk: tickets, SLA, escalation, roster, monitoring, reports."""

    name = "desk"
    verbose_name = "Go-live desk"

    def ready(self):
        """Alerts and health checks become tickets; every worker counts its tasks."""
        from core import events
        from desk import intake, monitoring

        events.subscribe_local(intake.on_event)
        monitoring.connect_task_signals()
