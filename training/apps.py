from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"

    def ready(self):
        """Keep accession numbers out of the audit log: auditlog (registered for every model
        by settings) records field values, so feedback is re-registered with that field
        masked."""
        from auditlog.registry import auditlog

        from training.models import Feedback

        auditlog.unregister(Feedback)
        auditlog.register(
            Feedback,
            mask_fields=["accession_number"],
            mask_callable="training.auditing.redact",
            m2m_fields=["themes"],
        )
