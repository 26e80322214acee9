from celery import shared_task

from core import actions


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=40)
def publish_health():
    """Beat runs this every HEALTH_INTERVAL_SECONDS; home pages update live."""
    actions.record_health()
