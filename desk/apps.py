from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The 24/7 go-live desk: tickets, SLA, escalation, roster, monitoring, reports."""

    name = "desk"
    verbose_name = "Go-live desk"

    def ready(self):
        """Alerts and health checks become tickets; every worker counts its tasks."""
        from core import alerts, events
        from desk import intake, monitoring

        alerts.take_in_with(intake.take_alert)
        events.subscribe_local(intake.on_health)
        monitoring.connect_task_signals()
