"""Studies that reach the cloud first, sent to the legacy PACS that still needs them.

`scan(bridge)` asks the cloud store (QIDO-RS) for the studies of the last days and opens a
forward-ledger row for each one the legacy PACS does not hold (not in its inventory) and
that was not forwarded before; `run(row_id, owner)` claims a row, reads its instances back
(WADO-RS), sends them by C-STORE, and verifies by C-FIND that the PACS lists every one.
Failures retry with backoff up to HYBRID_FORWARD_MAX_ATTEMPTS, then quarantine.
"""

import logging
import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from core.scrub import scrub_text
from hybrid import cstore, routing
from hybrid.models import FORWARD_ACTIVE, FORWARD_TRANSITIONS, Forward, ForwardState
from migration.dicom import Pacs, RetrieveError, query_study
from migration.storage import DestinationError, open_store

log = logging.getLogger(__name__)
QIDO_PAGE = 500
BATCH = 32  # instances per association and in memory at once
STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"


class ForwardError(RuntimeError):
    pass


def owner_name():
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _value(item, tag):
    return ((item.get(tag) or {}).get("Value") or [""])[0]


# --- the guarded state machine ----------------------------------------------------------


def transition(row_id, to_state, *, owner=None, where=None, **fields):
    """Move one row to `to_state` if it is in an allowed state (and owned by `owner`, and
    matches `where`); True when it moved."""
    rows = Forward.objects.filter(pk=row_id, state__in=FORWARD_TRANSITIONS[to_state])
    if owner is not None:
        rows = rows.filter(lease_owner=owner)
    if where is not None:
        rows = rows.filter(where)
    return rows.update(state=to_state, updated_at=timezone.now(), **fields) == 1


def claimable(now=None):
    now = now or timezone.now()
    waiting = Q(state__in=[ForwardState.PENDING, ForwardState.FAILED]) & (
        Q(not_before__lte=now) | Q(not_before__isnull=True)
    )
    return waiting | Q(state__in=FORWARD_ACTIVE, lease_expires__lt=now)


def claim(row_id, owner):
    now = timezone.now()
    lease = timedelta(seconds=float(settings.HYBRID_FORWARD_LEASE_SECONDS))
    return transition(
        row_id,
        ForwardState.SENDING,
        where=claimable(now),
        lease_owner=owner,
        lease_expires=now + lease,
        attempts=F("attempts") + 1,
    )


def retry_delay(attempts):
    base = float(settings.HYBRID_FORWARD_RETRY_SECONDS)
    return min(base * 2 ** max(0, attempts - 1), 3600.0)


def fail(row, owner, message):
    """Back to failed with a retry time, or quarantined once the attempts are used up."""
    final = row.attempts >= settings.HYBRID_FORWARD_MAX_ATTEMPTS
    to_state = ForwardState.QUARANTINED if final else ForwardState.FAILED
    delay = None if final else timezone.now() + timedelta(seconds=retry_delay(row.attempts))
    transition(
        row.pk,
        to_state,
        owner=owner,
        last_error=scrub_text(message)[:500],
        not_before=delay,
        lease_owner="",
        lease_expires=None,
    )
    return to_state


# --- finding what reached the cloud first -------------------------------------------------


def recent_cloud_studies(bridge, store=None):
    """Study UIDs the cloud store lists with a StudyDate in the bridge's look-back."""
    store = store or open_store(bridge.destination)
    today = timezone.localdate()
    since = today - timedelta(days=bridge.lookback_days)
    dates = f"{since:%Y%m%d}-{today + timedelta(days=1):%Y%m%d}"
    found, offset = [], 0
    while True:
        page = store._get(
            f"studies?StudyDate={dates}&includefield={STUDY_UID}&limit={QIDO_PAGE}&offset={offset}"
        )
        found += [_value(item, STUDY_UID) for item in page if isinstance(item, dict)]
        if len(page) < QIDO_PAGE:
            return [uid for uid in found if uid]
        offset += QIDO_PAGE


def new_arrivals(bridge, uids):
    """The UIDs to forward: not held by the legacy PACS, not forwarded before."""
    known = routing.came_from_legacy(bridge.source, uids)
    known |= set(
        Forward.objects.filter(bridge=bridge, study_uid__in=list(uids)).values_list(
            "study_uid", flat=True
        )
    )
    return [uid for uid in dict.fromkeys(uids) if uid not in known]


# --- forwarding one study -----------------------------------------------------------------


def _cloud_instances(store, study_uid):
    items = store._get(f"studies/{study_uid}/instances?includefield={SERIES_UID}")
    return [
        (_value(item, SERIES_UID), _value(item, SOP_UID))
        for item in items
        if isinstance(item, dict) and _value(item, SOP_UID)
    ]


def send(row, store):
    """C-STORE the study's instances, BATCH at a time; returns the SOP UIDs sent."""
    instances = _cloud_instances(store, row.study_uid)
    if not instances:
        raise ForwardError("the cloud store lists no instance of this study")
    Forward.objects.filter(pk=row.pk).update(instances_cloud=len(instances))
    sent = []
    for start in range(0, len(instances), BATCH):
        batch = instances[start : start + BATCH]
        data = [store.read(store.instance_key(row.study_uid, se, sop)) for se, sop in batch]
        cstore.store(row.bridge.source, data)
        sent += [sop for _series, sop in batch]
        Forward.objects.filter(pk=row.pk).update(instances_sent=len(sent))
    return sent


def verify(row, sent):
    """C-FIND (IMAGE level) on the legacy PACS: every instance sent must be listed."""
    expected = query_study(Pacs.from_source(row.bridge.source), row.study_uid, listed=True)
    missing = set(sent) - set(expected.instances)
    Forward.objects.filter(pk=row.pk).update(instances_found=len(expected.instances))
    if missing:
        raise ForwardError(f"the legacy PACS lists {len(sent) - len(missing)} of {len(sent)}")


def run(row_id, owner=None):
    """Forward one study if it is claimable; returns its state afterwards (None: not
    claimed, another worker has it or it is not due)."""
    owner = owner or owner_name()
    if not claim(row_id, owner):
        return None
    row = Forward.objects.select_related("bridge__source", "bridge__destination").get(pk=row_id)
    try:
        sent = send(row, open_store(row.bridge.destination))
        if not transition(row.pk, ForwardState.VERIFYING, owner=owner):
            return None
        verify(row, sent)
    except (ForwardError, RetrieveError, DestinationError, OSError) as exc:
        log.warning("forward %s: attempt %s failed: %s", row.pk, row.attempts, scrub_text(exc))
        return fail(row, owner, str(exc))
    now = timezone.now()
    transition(
        row.pk,
        ForwardState.DONE,
        owner=owner,
        verified_at=now,
        lag_s=(now - row.first_seen).total_seconds(),
        last_error="",
        lease_owner="",
        lease_expires=None,
        not_before=None,
    )
    return ForwardState.DONE
