from celery import shared_task

from desk import escalation, intake, monitoring, roster, tickets


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def run_escalations():
    """Beat, every minute: notify whoever a due escalation step names; refresh the counts
    of breaches on every board."""
    fired = len(escalation.run())
    tickets.publish_counts()
    return fired


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def sample_monitoring():
    """Beat, every minute: sample the system, check monitors, refresh the screens."""
    monitoring.run()
    roster.publish_on_call()


@shared_task(soft_time_limit=120, time_limit=130)
def check_migration_source(source_id, wave_id=None):
    """Check that a legacy PACS answers before a wave runs; a failure opens a ticket."""
    from inventory.models import PacsSource

    return intake.check_migration_source(PacsSource.objects.get(pk=source_id), wave_id)
