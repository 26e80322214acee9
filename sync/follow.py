"""The sync app listens to the engine's progress events (`events.subscribe_local`): when a
wave that holds synced studies moves, their lag is settled at once (beat's tick catches
up whatever a lost event missed); when an urgent wave moves, the appointments page
hears that priors' readiness may have changed."""

import logging
import re

log = logging.getLogger(__name__)
WAVE_TOPIC = re.compile(r"^migration\.wave\.(\d+)$")


def follow_engine(topic, message):
    match = WAVE_TOPIC.match(topic)
    if match is None:
        return
    from core.events import publish
    from migration.models import Wave
    from sync import actions
    from sync.models import SyncedStudy

    wave_id = int(match.group(1))
    if SyncedStudy.objects.filter(ledger__wave_id=wave_id, verified_at__isnull=True).exists():
        actions.settle(wave_id)
    if Wave.objects.filter(pk=wave_id, name__startswith="urgent-").exists():
        publish("migration.appointments", {"wave": wave_id})  # priors' readiness moved
