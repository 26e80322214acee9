"""Go/no-go follows the other apps: their events queue one debounced evaluation task."""

import logging

import redis
from celery import signature
from django.conf import settings

log = logging.getLogger(__name__)

# Topics of other apps whose events can change a go/no-go criterion.
READINESS_SOURCES = ("migration", "validation", "training", "board", "alerts", "feedback")
MIN_INTERVAL_S = 2.0
DUE_KEY = "cutover:readiness-due"
DUE_TTL_S = 30  # a queued evaluation that got lost blocks the next one this long at most
_clients = {}


class ReadinessFollower:
    """Asks for a go/no-go re-evaluation when another app publishes a change. The
    evaluation runs in a Celery task (`cutover.tasks.publish_readiness`), MIN_INTERVAL_S
    after the first change of a burst, once for the whole burst, never in the process
    that published; beat's `cutover.tasks.refresh_live` catches up whatever is missed."""

    def __call__(self, topic, message):
        if topic.split(".", 1)[0] in READINESS_SOURCES:
            request_readiness()


def request_readiness():
    """Queue one evaluation unless one is queued already (the Redis key DUE_KEY)."""
    try:
        if _redis().set(DUE_KEY, 1, nx=True, ex=DUE_TTL_S):
            evaluate = signature("cutover.tasks.publish_readiness")
            evaluate.apply_async(countdown=MIN_INTERVAL_S, queue=settings.CUTOVER_QUEUE)
    except Exception as exc:  # Redis or the broker is down: beat's refresh catches up
        log.warning("cutover: could not queue a go/no-go evaluation: %s", exc)


def readiness_taken():
    """The queued evaluation starts: changes from now on queue another one."""
    _redis().delete(DUE_KEY)


def _redis():
    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=5)
    return _clients[url]
