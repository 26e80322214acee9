import threading
import time

from django.apps import AppConfig

# Topics of other apps whose events can change a go/no-go criterion.
READINESS_SOURCES = ("migration", "validation", "training", "board", "alerts", "feedback")
MIN_INTERVAL_S = 2.0


class CutoverConfig(AppConfig):
    name = "cutover"
    verbose_name = "Roadmap & cutover"

    def ready(self):
        from core.events import subscribe_local

        subscribe_local(ReadinessFollower())


class ReadinessFollower:
    """Re-evaluates go/no-go when another app publishes a change, at most every
    MIN_INTERVAL_S per process; beat's `cutover.tasks.refresh_live` catches up the rest."""

    def __init__(self):
        self.last = 0.0
        self.lock = threading.Lock()

    def __call__(self, topic, message):
        if topic.split(".", 1)[0] not in READINESS_SOURCES:
            return
        with self.lock:
            now = time.monotonic()
            if now - self.last < MIN_INTERVAL_S:
                return
            self.last = now
        from cutover.actions import publish_readiness

        publish_readiness()
