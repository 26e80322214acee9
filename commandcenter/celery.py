"""The Celery app: `celery -A commandcenter worker|beat` from the repository root.

It reads the same environment as the web server, through Django's settings
(every Celery setting is CELERY_-prefixed there).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commandcenter.settings")

app = Celery("commandcenter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _fail_fast_on_bad_settings(sender, **kwargs):
    from django.conf import settings

    from core.config import exit_on_config_error

    exit_on_config_error(lambda: settings.INSTALLED_APPS)
