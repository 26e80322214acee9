"""Who runs what: association slots, claims, and the stream of `migrate_next` tasks.

Each running PACS has a few "streams": a `migrate_next(source)` task takes an association
slot and, holding it, claims and runs the next studies of the PACS's running waves (by
priority) one after the other; after a minute it hands over to a successor task.
`tick()` (beat, worker start, `wave start --wait`) tops the streams up to the PACS's
current limit, quarantines what a dead worker left on its last attempt, wakes up for
retries and expired leases, and closes finished waves. Tasks only call these functions.
"""

import logging
import os
import socket
import threading
import time
import uuid

from django.db import connection

from migration import engine, finish, ledger, throttle
from migration.enqueue import enqueue_migrate_next, enqueue_tick
from migration.models import Wave, WaveState
from migration.throttle import client, key, scheduled_limit

log = logging.getLogger(__name__)
PENDING_TTL = 120.0
STREAM_SECONDS = 60.0


def owner_name():
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Pending:
    """Enqueued-but-not-started tasks per PACS, so `dispatch` never overfills the queue.

    The queue is first in, first out: when a task starts, every ticket enqueued before
    its own was either taken already or lost with a dead worker, so they all go. Tickets
    older than PENDING_TTL stop counting too."""

    def __init__(self, source_id):
        self.key = key("pending", source_id)

    def add(self):
        ticket = uuid.uuid4().hex
        client().zadd(self.key, {ticket: time.time()})
        client().expire(self.key, int(PENDING_TTL) * 2)
        return ticket

    def take(self, ticket):
        if not ticket:
            return
        enqueued = client().zscore(self.key, ticket)
        if enqueued is None:
            client().zrem(self.key, ticket)
        else:
            client().zremrangebyscore(self.key, "-inf", enqueued)

    def count(self):
        client().zremrangebyscore(self.key, "-inf", time.time() - PENDING_TTL)
        return client().zcard(self.key)


def _enqueue(source_id):
    enqueue_migrate_next(source_id, Pending(source_id).add())


def _wave_limits(source_id):
    waves = Wave.objects.filter(source_id=source_id, state=WaveState.RUNNING).order_by(
        "-priority", "pk"
    )
    return [(wave.pk, scheduled_limit(wave.schedule)) for wave in waves]


def dispatch(source):
    """Top up the PACS's streams to its current limit; returns how many were added."""
    if throttle.globally_paused():
        return 0
    waves = _wave_limits(source.pk)
    if not waves:
        return 0
    free = throttle.pacs_limit(source, [limit for _pk, limit in waves])
    free -= throttle.Slots(source.pk).in_use()
    missing = free // throttle.associations_per_study(source) - Pending(source.pk).count()
    for _ in range(max(0, missing)):
        _enqueue(source.pk)
    return max(0, missing)


def streams(source, waves):
    """How many studies may run at once on this PACS: its association limit over what
    one study holds there (two for C-MOVE: the C-MOVE and the PACS's C-STORE association
    back to us). 0 when not even one fits (a C-MOVE source limited to 1)."""
    limit = throttle.pacs_limit(source, [limit for _pk, limit in waves])
    return limit // throttle.associations_per_study(source)


def migrate_next(source, ticket=None, owner=None, stream_seconds=STREAM_SECONDS, **run_options):
    """One stream: take a slot, then claim and run studies one after the other on it,
    until there is no work, the PACS's limit drops below the slots in use, the engine is
    paused, or `stream_seconds` pass (then a successor task continues, so Celery can
    interleave other work).

    Returns what happened last: "paused", "busy", "idle", "yield" or a study's state.
    """
    Pending(source.pk).take(ticket)
    if throttle.globally_paused():
        return "paused"
    waves = _wave_limits(source.pk)
    limit = throttle.pacs_limit(source, [limit for _pk, limit in waves])
    weight = throttle.associations_per_study(source)
    slots = throttle.Slots(source.pk)
    token = slots.acquire(limit, weight) if waves and limit >= weight else None
    if token is None:
        _wake_later(source, waves)
        return "busy" if waves and limit >= weight else "paused"
    owner = owner or owner_name()
    deadline = time.monotonic() + stream_seconds
    finishing, outcome = None, "idle"
    try:
        while True:
            outcome, finishing = _claim_and_run(
                source, waves, slots, token, owner, run_options, finishing
            )
            if outcome == "idle" or not _keep_slot(source, slots, token):
                break
            if time.monotonic() > deadline:
                outcome = "yield"
                break
            waves = _wave_limits(source.pk)
    finally:
        if finishing is not None:
            last = finishing.result()
            outcome = outcome if outcome in ("idle", "yield") else last
        slots.release(token)
    if outcome == "yield":
        _enqueue(source.pk)
    return outcome


def _keep_slot(source, slots, token):
    """May this stream run another study? Not when paused, or over the (AIMD or
    scheduled) limit, or when its slot was swept."""
    if throttle.globally_paused() or not slots.renew(token):
        return False
    limit = throttle.pacs_limit(source, [limit for _pk, limit in _wave_limits(source.pk)])
    return slots.in_use() <= limit


def _claim_and_run(source, waves, slots, token, owner, run_options, finishing=None):
    """Claim the next study and run it until the PACS has sent it; it then finishes
    (its last uploads, verification and record) in its own thread while the stream goes
    on to the next study, whose retrieval so overlaps them. One study finishes at a time
    per stream: the one before is waited for first. Returns (what happened, the study
    now finishing or None)."""
    in_use = slots.in_use()
    eligible = [pk for pk, limit in waves if limit is None or in_use <= limit]
    row = ledger.claim_next(eligible, owner)
    if row is None:
        if finishing is not None:
            finishing.result()  # its wave may close only once it has ended
        finish.close_finished_waves(source.pk)
        _wake_later(source, waves)
        return "idle", None
    study = Finishing(row, owner, dict(run_options, slot=(slots, token)))
    study.start()
    study.retrieved.wait()
    return (finishing.result() if finishing is not None else "running"), study


class Finishing(threading.Thread):
    """One study run in a thread of its own; `retrieved` is set once the PACS has sent
    the study (or the run ended), `result()` waits for the end and gives its state."""

    def __init__(self, row, owner, run_options):
        super().__init__(name=f"study-{row.pk}", daemon=True)
        self.row, self.owner, self.run_options = row, owner, run_options
        self.retrieved = threading.Event()
        self.state = None

    def run(self):
        try:
            self.state = engine.migrate_study(
                self.row, self.owner, retrieved=self.retrieved, **self.run_options
            )
            finish.study_finished(self.row.pk, self.state)
        except Exception:  # the ledger already holds the outcome; events and alerts follow
            log.exception("ledger %s: running or reporting the study failed", self.row.pk)
        finally:
            self.retrieved.set()
            connection.close()

    def result(self):
        self.join()
        return self.state or "lost"


def _wake_later(source, waves):
    """Schedule a tick for when a retry, an expired lease or a dead worker's association
    slot frees work that nobody is running now."""
    if not waves:
        return
    delays = [
        ledger.next_wakeup([pk for pk, _limit in waves]),
        throttle.Slots(source.pk).next_expiry(),
    ]
    delays = [d for d in delays if d is not None]
    if delays:
        schedule_tick(min(delays) + 0.5)


def schedule_tick(delay):
    """A tick in `delay` seconds, unless one is already due sooner."""
    due = time.time() + delay
    current = client().get(key("tick-due"))
    if current is not None and time.time() < float(current) <= due + 0.2:
        return
    client().set(key("tick-due"), due, px=int((delay + 5) * 1000))
    enqueue_tick(countdown=delay)


def forget_scheduled_tick():
    """Drop the promise of a tick already scheduled. A delayed tick is held by the worker
    that received it and dies with it; a worker that starts cannot tell, so it forgets the
    promise and ticks itself (otherwise nothing wakes an abandoned study until beat)."""
    client().delete(key("tick-due"))


def tick():
    """Quarantine abandoned studies, close finished waves, top up every running PACS, and
    come back when a slot or a lease of a dead worker expires or a retry is due."""
    from inventory.models import PacsSource

    for pk in ledger.expire_abandoned():
        finish.study_finished(pk, None)
    sources = PacsSource.objects.filter(waves__state=WaveState.RUNNING).distinct()
    added = 0
    for source in sources:
        finish.close_finished_waves(source.pk)
        started = dispatch(source)
        added += started
        if not started:
            _wake_later(source, _wave_limits(source.pk))
    return added
