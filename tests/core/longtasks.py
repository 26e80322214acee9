"""A task for the delivery tests, imported by their worker with `-I`: it records each
delivery in Redis, then runs for as long as it is asked."""

import time

import redis
from celery import shared_task
from django.conf import settings


@shared_task(bind=True, acks_late=True)
def record_and_run(self, key, seconds):
    redis.Redis.from_url(settings.REDIS_URL).rpush(key, self.request.id)
    time.sleep(seconds)
