from django.apps import AppConfig


class CommandCenterConfig(AppConfig):
    name = "commandcenter"
    verbose_name = "Command center"

    def ready(self):
        """Alerts and health checks become tickets; every worker counts its tasks."""
        from commandcenter import audit, events, intake, monitoring, sessions

        audit.mask_phi_in_audit_log()
        events.subscribe_local(intake.on_event)
        monitoring.connect_task_signals()
        sessions.connect_signals()
