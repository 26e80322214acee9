"""The product's Celery app, as the test workers run it: `celery -A tests.celery_app worker`.

The one difference is for the tests' sake: a transactional test flushes the database and
Django recreates the content types with new ids, while a long-lived worker would keep the
old ids cached and write audit-log entries (django-auditlog) that point nowhere. So each
task starts with the content-type cache cleared, as a fresh process would.
"""

from celery.signals import task_prerun

from commandcenter.celery import app

__all__ = ["app"]


@task_prerun.connect
def fresh_content_types(**_kwargs):
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
