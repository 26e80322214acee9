from celery import shared_task

from core import actions, alerts


@shared_task(ignore_result=True, soft_time_limit=30, time_limit=40)
def publish_health():
    """Beat runs this every HEALTH_INTERVAL_SECONDS; home pages update live."""
    actions.record_health()


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def drain_alerts():
    """After each alert's commit, and on beat (a queued drain that was lost, or a worker
    that died before its intake, leaves pending rows): pending alerts become tickets."""
    return alerts.drain()


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def redrain_alerts():
    """Beat: take in what is still pending, and forget alerts taken in long ago."""
    alerts.prune()
    return alerts.drain()
