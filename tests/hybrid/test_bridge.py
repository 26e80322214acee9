"""Bidirectional flow while integrations are mixed, against a real legacy Orthanc, the
DICOMweb Orthanc as the cloud and a real Celery worker: a study STOWed to the cloud during
parallel run reaches the legacy PACS once, verified by C-FIND, and never loops back; the
routing rules per cutover stage; bounded retries; and the round-trip probe, which passes,
signs the Verify bidirectional flow stage from its evidence, and fails clearly when the
legacy PACS is down."""

from datetime import date

import pytest
from django.utils import timezone

from cutover import actions as cutover_actions
from devstack import synthetic
from dicomnet.association import Peer
from dicomnet.scu import find_study_uids
from hybrid import actions, forward, routing
from hybrid.models import Forward, ForwardState, RoundTrip
from inventory.models import Integration
from migration import actions as migration_actions
from migration.models import Destination, StudyState
from migration.storage import open_store, sha256_hex
from tests.migration import support
from tests.migration import validation_support as vs
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def legacy(orthanc_factory):
    """A legacy PACS of the test's own (its counts are the test's alone)."""
    return orthanc_factory(aet="BRIDGEPACS")


def cloud_destination(dicomweb_store, name="cloud-web"):
    return Destination.objects.create(name=name, kind="dicomweb", url=dicomweb_store.dicomweb_url)


def plan_at(source, stage, user, name="Modality worklist"):
    """An integration of the PACS whose cutover plan stands at `stage` (every gate before
    it open)."""
    integration = Integration.objects.create(
        name=name, kind="ris", protocol="dicom", direction="both", owner="Interfaces",
        source=source,
    )  # fmt: skip
    plan = cutover_actions.create_plan(integration)
    for current in plan.stages.order_by("order"):
        if current.kind == stage:
            break
        for item in current.items.all():
            cutover_actions.sign_item(item, user)
        cutover_actions.open_gate(current, user)
    assert routing.current_stage(plan) == stage
    return plan


def new_study(seed, instances=2):
    """A study acquired today by a new modality (synthetic, test patient)."""
    today = timezone.localdate()
    (datasets,) = synthetic.iter_studies(
        seed=seed, instances=instances, rows=8, cols=8, modality="CR", date_from=today,
        date_to=today,
    )  # fmt: skip
    return str(datasets[0].StudyInstanceUID), [synthetic.dataset_bytes(ds) for ds in datasets]


def stow(destination, uid, parts):
    """STOW-RS into the cloud store, as a new modality would."""
    from io import BytesIO

    from pydicom import dcmread

    store = open_store(destination)
    for part in parts:
        ds = dcmread(BytesIO(part), stop_before_pixels=True)
        store.write(store.instance_key(uid, ds.SeriesInstanceUID, ds.SOPInstanceUID), part,
                    sha256_hex(part))  # fmt: skip


def legacy_instances(legacy, uid):
    """How many instances of the study the legacy Orthanc holds (REST, not our code)."""
    query = {"Level": "Instance", "Query": {"StudyInstanceUID": uid}}
    found = legacy._call("POST", "/tools/find", json=query)
    return len(found)


def finished(trip):
    """The round trip, once the worker that runs it has finished it."""
    return wait_for(
        lambda: RoundTrip.objects.exclude(state=RoundTrip.State.RUNNING).filter(pk=trip.pk).first(),
        timeout=300, message="the round-trip probe",
    )  # fmt: skip


def test_a_study_stowed_to_the_cloud_during_parallel_run_reaches_legacy_once_and_never_loops_back(
    cast, legacy, dicomweb_store, migration_s3, migration_worker
):
    source = support.make_source(legacy, name="bridged")
    cloud = cloud_destination(dicomweb_store)
    bridge = actions.create_bridge(name="web-to-legacy", destination=cloud, source=source)
    migrated = support.mixed_studies(seed=700, mix=(("CT", "explicit", "ISO_IR 100", 1, 2, 16),))
    support.upload(legacy, migrated)
    support.make_inventory(source, migrated)
    wave, _info = migration_actions.create_wave(name="to-web", source=source, destination=cloud)
    vs.migrate_in_process(wave)
    (from_legacy,) = migrated
    assert wave.ledger.get().state == StudyState.DONE  # in the cloud, from the legacy PACS
    uid, parts = new_study(seed=701)
    stow(cloud, uid, parts)

    plan = plan_at(source, "prepare", cast.pm)
    assert actions.scan(bridge) == {**routing.route(bridge), "new": []}
    assert not Forward.objects.exists()  # prepare: nobody reads from the cloud yet

    cutover_actions.sign_item(plan.stages.get(kind="prepare").items.first(), cast.pm)
    for item in plan.stages.get(kind="prepare").items.filter(signed_at__isnull=True):
        cutover_actions.sign_item(item, cast.pm)
    cutover_actions.open_gate(plan.stages.get(kind="prepare"), cast.pm)
    assert routing.current_stage(plan) == "parallel_run"
    scanned = actions.scan(bridge)
    assert scanned["forward"] and scanned["new"] == [uid]  # not the one from legacy
    row = wait_for(
        lambda: Forward.objects.filter(study_uid=uid, state=ForwardState.DONE).first(),
        timeout=120, message="the forward to be verified",
    )  # fmt: skip
    assert (row.instances_cloud, row.instances_sent, row.instances_found) == (2, 2, 2)
    assert row.attempts == 1 and row.lag_s is not None and row.verified_at
    assert uid in find_study_uids(Peer("127.0.0.1", legacy.dicom_port, legacy.aet, "CCTEST"))
    assert legacy_instances(legacy, uid) == 2

    again = actions.scan(bridge)
    assert again["forward"] and uid not in again["new"] and from_legacy not in again["new"]
    assert Forward.objects.filter(study_uid=uid).count() == 1
    assert not Forward.objects.filter(study_uid=from_legacy).exists()
    assert legacy_instances(legacy, from_legacy) == 2  # never sent back to where it came from
    assert routing.came_from_cloud(uid) and not routing.came_from_cloud(from_legacy)
    assert forward.run(row.pk) is None  # a done forward is never claimed again
    assert legacy_instances(legacy, uid) == 2


def test_a_forward_retries_with_backoff_and_is_quarantined_after_its_attempts(
    cast, orthanc_factory, dicomweb_store, settings, migration_worker
):
    settings.HYBRID_FORWARD_MAX_ATTEMPTS = 2  # this process's; the worker's retry is due soon
    settings.HYBRID_FORWARD_RETRY_SECONDS = 0.2
    down = orthanc_factory(aet="DOWNPACS")
    source = support.make_source(down, name="down")
    down.stop()
    bridge = actions.create_bridge(
        name="to-down", destination=cloud_destination(dicomweb_store, "cloud-down"), source=source
    )
    plan_at(source, "switch", cast.pm)
    uid, parts = new_study(seed=702, instances=1)
    stow(bridge.destination, uid, parts)
    row = Forward.objects.create(bridge=bridge, study_uid=uid)
    assert actions.run_forward(row.pk) == ForwardState.FAILED  # the retry goes to the worker
    row = wait_for(
        lambda: Forward.objects.filter(pk=row.pk, attempts__gte=2).exclude(state="sending").first(),
        timeout=120, message="the worker's retry",
    )  # fmt: skip
    assert "connection refused" in row.last_error and row.instances_sent == 0
    Forward.objects.filter(pk=row.pk).update(not_before=timezone.now())  # due now, here
    assert actions.run_forward(row.pk) in (ForwardState.QUARANTINED, None)
    row = wait_for(
        lambda: Forward.objects.filter(pk=row.pk, state=ForwardState.QUARANTINED).first(),
        timeout=120, message="the quarantine",
    )  # fmt: skip
    attempts = row.attempts
    assert actions.run_forward(row.pk) is None  # bounded: a quarantined forward is not claimed
    assert Forward.objects.get(pk=row.pk).attempts == attempts


def test_the_round_trip_probe_passes_and_signs_verify_bidirectional_flow(
    cast, client_for, legacy, dicomweb_store, migration_s3, migration_worker
):
    source = support.make_source(legacy, name="probed")
    bridge = actions.create_bridge(
        name="probed", destination=cloud_destination(dicomweb_store, "cloud-probed"),
        source=source, lag_objective_s=120,
    )  # fmt: skip
    plan = plan_at(source, "verify", cast.pm)

    trip = finished(actions.start_round_trip(bridge, cast.engineer))

    assert trip.state == RoundTrip.State.PASSED, (trip.to_cloud_detail, trip.to_legacy_detail)
    assert trip.to_cloud_ok and 0 < trip.to_cloud_s < 120
    assert trip.to_legacy_ok and 0 < trip.to_legacy_s < 120
    assert legacy_instances(legacy, trip.to_legacy_study) == 1
    assert legacy_instances(legacy, trip.to_cloud_study) == 1  # not sent back from the cloud
    assert Forward.objects.get(study_uid=trip.to_legacy_study).probe
    assert not Forward.objects.filter(study_uid=trip.to_cloud_study).exists()

    history = client_for(cast.pm).get(f"/hybrid/api/bridges/{bridge.pk}/round-trips/").json()
    assert [t["id"] for t in history] == [trip.pk] and history[0]["state"] == "passed"
    verify = plan.stages.get(kind="verify")
    answer = client_for(cast.pm).post(
        f"/hybrid/api/round-trips/{trip.pk}/sign/", {"stage": verify.pk},
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 200 and len(answer.json()["signed"]) == 2
    items = list(verify.items.order_by("order"))
    assert [i.signed for i in items] == [True, True, False]
    assert f"Round-trip probe {trip.pk}" in items[0].evidence_note
    page = client_for(cast.engineer).get(f"/hybrid/bridges/{bridge.name}/")
    assert page.status_code == 200 and b"Passed" in page.content


def test_the_round_trip_probe_fails_clearly_when_the_legacy_pacs_is_down(
    cast, client_for, orthanc_factory, dicomweb_store, migration_s3, migration_worker
):
    down = orthanc_factory(aet="GONEPACS")
    source = support.make_source(down, name="gone")
    bridge = actions.create_bridge(
        name="gone", destination=cloud_destination(dicomweb_store, "cloud-gone"), source=source,
        lag_objective_s=15,
    )  # fmt: skip
    plan = plan_at(source, "verify", cast.pm)
    down.stop()

    trip = finished(actions.start_round_trip(bridge, cast.engineer))

    assert trip.state == RoundTrip.State.FAILED and not trip.to_cloud_ok and not trip.to_legacy_ok
    assert trip.to_cloud_detail.startswith("the legacy PACS did not take the test study")
    assert "connection refused" in trip.to_cloud_detail
    assert trip.to_legacy_detail.startswith("not verified on the legacy PACS within 15 s")
    assert "connection refused" in trip.to_legacy_detail
    answer = client_for(cast.pm).post(
        f"/hybrid/api/round-trips/{trip.pk}/sign/",
        {"stage": plan.stages.get(kind="verify").pk}, content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 409 and "did not pass" in answer.json()["detail"]
    assert not plan.stages.get(kind="verify").items.filter(signed_at__isnull=False).exists()
    assert date.today()  # the probe's studies are dated today (see roundtrip.test_study)
