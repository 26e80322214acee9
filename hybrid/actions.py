"""State changes of the hybrid period, each followed by its live event (after commit).

Topics: `migration.hybrid.<bridge id>` (a bridge's page: forwards and round trips),
`migration.hybrid` (the bridges list). Views, the API, tasks and the `locate` command
call these; the forward flow itself is `hybrid/forward.py`.
"""

import logging
import time
from datetime import date, timedelta
from io import BytesIO

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from pydicom import dcmread

from core.alerts import clear_alert, raise_alert
from core.events import publish
from cutover import actions as cutover_actions
from hybrid import cstore, enqueue, forward, roundtrip, routing
from hybrid.models import Bridge, Forward, ForwardState, RoundTrip
from inventory.models import Study
from migration import actions as migration_actions
from migration.dicom import RetrieveError
from migration.expedite import expedite
from migration.models import StudyState, Wave, WaveState, WaveStudy
from migration.storage import DestinationError, open_store, sha256_hex

log = logging.getLogger(__name__)
NOTHING = date(9999, 12, 31)  # a date_from no study has: a wave whose criteria select none
EVIDENCE_HOURS = 24  # a round trip older than this is no evidence for a stage


class HybridError(ValueError):
    """A request that cannot be carried out; the message says why, for people."""


def _bridge_event(bridge, text):
    publish(f"migration.hybrid.{bridge.pk}", {"bridge": bridge.pk, "text": text})
    publish("migration.hybrid", {"bridge": bridge.pk, "text": text})


# --- the locator's Migrate now ------------------------------------------------------------


OUTCOME_WORDS = {  # expedite()'s outcome → what the locator says
    "moved": "moved to the head of wave {wave}",
    "added": "moved to the head of wave {wave}",
    "queued": "already at the head of wave {wave}",
    "in_flight": "already being migrated",
    "done": "already in the cloud, verified",
    "quarantined": "quarantined: see its discrepancies",
    "no_destination": "no destination: the PACS has no wave or sync destination yet",
    "unknown": "not in the inventory",
}


def migrate_now(study, user, reason="Migrate now (locator)"):
    """Put one inventory study at the head of the engine's queue; returns what was done."""
    placed = expedite(study.source, [study.study_uid], reason=reason, actor=user)
    outcome = placed.outcomes.get(study.study_uid, "unknown")
    wave = placed.wave.name if placed.wave is not None else ""
    what = OUTCOME_WORDS.get(outcome, outcome).format(wave=wave)
    publish(
        f"migration.study.{study.pk}",
        {"study": study.pk, "expedited": what, "by": getattr(user, "pk", None)},
    )
    return what


# --- bridges and the forward ledger -------------------------------------------------------


def create_bridge(*, name, destination, source, user=None, **fields):
    bridge = Bridge(name=name, destination=destination, source=source, **fields)
    try:
        bridge.full_clean()
    except ValidationError as exc:
        problems = (f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise HybridError("; ".join(problems)) from None
    if destination.kind != "dicomweb":
        raise HybridError("a bridge watches a DICOMweb destination (QIDO-RS)")
    bridge.save()
    _bridge_event(bridge, f"bridge {bridge.name} created")
    return bridge


def scan(bridge):
    """Open forward rows for what reached the cloud first, when the routing rules say the
    legacy PACS still needs it; returns {"forward", "why", "new"}."""
    decision = routing.route(bridge)
    new = []
    if decision["forward"]:
        try:
            new = forward.new_arrivals(bridge, forward.recent_cloud_studies(bridge))
        except DestinationError as exc:
            decision = {"forward": False, "why": f"the cloud store did not answer: {exc}"}
    with transaction.atomic():
        rows = [Forward.objects.get_or_create(bridge=bridge, study_uid=uid)[0] for uid in new]
        detail = f"{len(rows)} new" if decision["forward"] else decision["why"]
        Bridge.objects.filter(pk=bridge.pk).update(
            last_scan_at=timezone.now(), last_scan_detail=detail[:300]
        )
        for row in rows:
            _enqueue_forward(row.pk)
        if rows:
            _bridge_event(bridge, f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'} to forward")
    return {**decision, "new": [r.study_uid for r in rows]}


def _enqueue_forward(row_id, countdown=None):

    transaction.on_commit(lambda: enqueue.enqueue_forward(row_id, countdown))


def run_forward(row_id):
    """Forward one study (a task calls this); publishes its outcome, alerts when it is
    quarantined and schedules the retry of a failure."""
    state = forward.run(row_id)
    if state is None:
        return None
    row = Forward.objects.select_related("bridge").get(pk=row_id)
    cause = f"hybrid.forward.{row.bridge_id}"
    if state == ForwardState.QUARANTINED:
        raise_alert(
            "migration",
            cause,
            f"Bridge {row.bridge.name}: a study could not be forwarded to the legacy PACS",
            category="integration",
            impact="high",
            urgency="high",
            detail=f"forward {row.pk}, study {row.study_uid}: {row.last_error}",
            links={"bridge": row.bridge_id},
        )
    elif state == ForwardState.FAILED:
        delay = max(0.0, (row.not_before - timezone.now()).total_seconds()) if row.not_before else 0
        _enqueue_forward(row.pk, countdown=delay + 0.2)
    elif state == ForwardState.DONE:
        clear_alert("migration", cause, f"forward {row.pk} verified")
    _bridge_event(row.bridge, f"study {row.study_uid}: {row.get_state_display().lower()}")
    return state


def retry_forward(row):
    """A person looked at a quarantined forward: queue it again with fresh attempts."""
    if not forward.transition(row.pk, ForwardState.PENDING, attempts=0, not_before=None):
        raise HybridError(f"forward {row.pk} is {row.get_state_display().lower()}, not quarantined")
    _enqueue_forward(row.pk)
    _bridge_event(row.bridge, f"study {row.study_uid}: queued again")


def enqueue_due():
    """Beat: forwards that are due (a retry time passed, a worker died) get a task."""
    due = Forward.objects.filter(forward.claimable()).values_list("pk", flat=True)[:500]
    for pk in due:
        _enqueue_forward(pk)


# --- the round-trip probe -----------------------------------------------------------------


def start_round_trip(bridge, user=None, trigger="on demand"):
    trip = RoundTrip.objects.create(
        bridge=bridge, objective_s=bridge.lag_objective_s, started_by=user, trigger=trigger
    )

    transaction.on_commit(lambda: enqueue.enqueue_round_trip(trip.pk, trip.objective_s))
    _bridge_event(bridge, f"round-trip probe {trip.pk} started")
    return trip


def run_round_trip(trip):
    """Both legs, one after the other, each timed against the objective; the verdict
    passes only when both passed. Keeps the result and alerts on failure; a probe that
    breaks is failed with the reason, never left running."""
    try:
        return _run_round_trip(trip)
    except Exception as exc:
        log.exception("round trip %s stopped", trip.pk)
        RoundTrip.objects.filter(pk=trip.pk, state=RoundTrip.State.RUNNING).update(
            state=RoundTrip.State.FAILED,
            finished_at=timezone.now(),
            to_legacy_detail=f"the probe stopped: {type(exc).__name__}: {exc}"[:500],
        )
        raise


def _run_round_trip(trip):
    bridge = trip.bridge
    salt = int(time.time() * 1000) % 10**9
    to_cloud = _leg_to_cloud(trip, bridge, salt)
    RoundTrip.objects.filter(pk=trip.pk).update(
        to_cloud_ok=to_cloud.ok, to_cloud_s=to_cloud.seconds, to_cloud_detail=to_cloud.detail[:500]
    )
    to_legacy = _leg_to_legacy(trip, bridge, salt + 1)
    passed = to_cloud.ok and to_legacy.ok
    RoundTrip.objects.filter(pk=trip.pk).update(
        to_legacy_ok=to_legacy.ok,
        to_legacy_s=to_legacy.seconds,
        to_legacy_detail=to_legacy.detail[:500],
        state=RoundTrip.State.PASSED if passed else RoundTrip.State.FAILED,
        finished_at=timezone.now(),
    )
    trip.refresh_from_db()
    cause = f"hybrid.round_trip.{bridge.pk}"
    if passed:
        clear_alert("migration", cause, f"round trip {trip.pk} passed")
    else:
        raise_alert(
            "migration",
            cause,
            f"Bridge {bridge.name}: round-trip probe failed",
            category="integration",
            impact="high",
            urgency="medium",
            detail=f"to the cloud: {trip.to_cloud_detail}; to the legacy PACS: "
            f"{trip.to_legacy_detail}",
            links={"bridge": bridge.pk},
        )
    _bridge_event(bridge, f"round-trip probe {trip.pk} {trip.state}")
    return trip


def _leg_to_cloud(trip, bridge, salt):
    """A test study C-STOREd into the legacy PACS must be verified in the cloud within the
    objective. Without a sync mode on this PACS, the probe records it in the inventory and
    migrates it itself, through the engine (a wave of its own, above the others)."""
    uid, data = roundtrip.test_study(salt)
    RoundTrip.objects.filter(pk=trip.pk).update(to_cloud_study=uid)
    started = time.monotonic()
    try:
        cstore.store(bridge.source, data)
    except RetrieveError as exc:
        return roundtrip.Leg(False, None, f"the legacy PACS did not take the test study: {exc}")
    row = _migrate_test_study(bridge, uid, len(data))
    transaction.on_commit(lambda: migration_actions._dispatch_source(bridge.source_id))

    def check():
        state, error = WaveStudy.objects.filter(pk=row.pk).values_list("state", "last_error")[0]
        if state == StudyState.DONE:
            return True, True, "verified in the cloud"
        if state == StudyState.QUARANTINED:
            return True, False, f"quarantined by the engine: {error}"
        return False, False, f"still {state}" + (f" ({error})" if error else "")

    ok, detail, waited = roundtrip.wait(
        check, bridge.lag_objective_s - (time.monotonic() - started)
    )
    seconds = round(time.monotonic() - started, 3) if waited is not None else None
    if ok:
        return roundtrip.Leg(True, seconds, f"legacy → cloud in {seconds:.1f} s: {detail}")
    if waited is None:
        detail = f"not verified in the cloud within {bridge.lag_objective_s:.0f} s ({detail})"
    return roundtrip.Leg(False, seconds, detail)


@transaction.atomic
def _migrate_test_study(bridge, uid, instances):
    study, _new = Study.objects.get_or_create(
        source=bridge.source,
        study_uid=uid,
        defaults={
            "patient_name": roundtrip.TEST_PATIENT[0],
            "patient_id": roundtrip.TEST_PATIENT[1],
            "study_date": timezone.localdate(),
            "modalities": "OT",
            "num_instances": instances,
            "found_by": "probe",
        },
    )
    wave = _probe_wave(bridge)
    return WaveStudy.objects.create(wave=wave, study=study)


def _probe_wave(bridge):
    """The bridge's probe wave: runs above every wave of the PACS; its criteria select no
    study (the probe adds its test studies one by one)."""
    wave, _new = Wave.objects.get_or_create(
        name=f"roundtrip-{bridge.name}"[:60],
        defaults={"source": bridge.source, "destination": bridge.destination, "date_from": NOTHING},
    )
    others = Wave.objects.filter(source=bridge.source).exclude(pk=wave.pk)
    top = max(others.values_list("priority", flat=True), default=0)
    Wave.objects.filter(pk=wave.pk).update(
        priority=max(wave.priority, top + 1),
        state=WaveState.RUNNING,
        started_at=wave.started_at or timezone.now(),
        finished_at=None,
    )
    return wave


def _leg_to_legacy(trip, bridge, salt):
    """A test study STOWed into the cloud must be forwarded and verified on the legacy
    PACS within the objective, through the bridge's own scan and forward ledger."""
    uid, data = roundtrip.test_study(salt)
    RoundTrip.objects.filter(pk=trip.pk).update(to_legacy_study=uid)
    started = time.monotonic()
    try:
        store = open_store(bridge.destination)
        for part in data:
            ds = dcmread(BytesIO(part), stop_before_pixels=True)
            key = store.instance_key(uid, ds.SeriesInstanceUID, ds.SOPInstanceUID)
            store.write(key, part, sha256_hex(part))
    except DestinationError as exc:
        return roundtrip.Leg(False, None, f"the cloud store did not take the test study: {exc}")
    decision = scan(bridge)
    if not decision["forward"]:
        return roundtrip.Leg(False, None, f"the bridge does not forward now: {decision['why']}")
    Forward.objects.filter(bridge=bridge, study_uid=uid).update(probe=True)

    def check():
        row = Forward.objects.filter(bridge=bridge, study_uid=uid).first()
        if row is None:
            return False, False, "the scan did not see it yet"
        if row.state in (ForwardState.PENDING, ForwardState.FAILED):
            run_forward(row.pk)
            row.refresh_from_db()
        if row.state == ForwardState.DONE:
            return True, True, "verified on the legacy PACS by C-FIND"
        if row.state == ForwardState.QUARANTINED:
            return True, False, f"forward quarantined: {row.last_error}"
        return (
            False,
            False,
            f"forward {row.state}" + (f": {row.last_error}" if row.last_error else ""),
        )

    ok, detail, waited = roundtrip.wait(
        check, bridge.lag_objective_s - (time.monotonic() - started)
    )
    seconds = round(time.monotonic() - started, 3) if waited is not None else None
    if ok:
        return roundtrip.Leg(True, seconds, f"cloud → legacy in {seconds:.1f} s: {detail}")
    if waited is None:
        detail = f"not verified on the legacy PACS within {bridge.lag_objective_s:.0f} s ({detail})"
    return roundtrip.Leg(False, seconds, detail)


# --- signing "Verify bidirectional flow" from evidence ------------------------------------

FLOW_ITEMS = 2  # the stage's first two items: cloud → system, system → cloud


def sign_from_round_trip(stage, trip, user):
    """Sign the flow items of a plan's "Verify bidirectional flow" stage with a passed
    round trip of a bridge to the integration's PACS as their evidence."""
    if stage.kind != "verify":
        raise HybridError("only the Verify bidirectional flow stage is signed from a round trip")
    if not trip.passed:
        raise HybridError(f"round trip {trip.pk} did not pass: it is no evidence")
    if trip.bridge.source_id != stage.plan.integration.source_id:
        raise HybridError("that round trip probed another PACS than this integration's")
    if trip.finished_at < timezone.now() - timedelta(hours=EVIDENCE_HOURS):
        raise HybridError(f"that round trip is older than {EVIDENCE_HOURS} hours: run it again")
    note = (
        f"Round-trip probe {trip.pk} of bridge {trip.bridge.name} passed at "
        f"{trip.finished_at:%Y-%m-%d %H:%M:%S %Z}: legacy → cloud {trip.to_cloud_s:.1f} s, "
        f"cloud → legacy {trip.to_legacy_s:.1f} s (objective {trip.objective_s:.0f} s)."
    )
    signed = []
    for item in stage.items.order_by("order", "pk")[:FLOW_ITEMS]:
        if item.signed:
            continue
        cutover_actions.save_evidence(item, user, note=note)
        signed.append(cutover_actions.sign_item(item, user))
    return signed
