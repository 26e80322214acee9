"""Sync mode end to end, with a real Orthanc legacy PACS, SeaweedFS and a real Celery
worker running beat's task: studies stored after a bulk wave finished are found by the
incremental crawl and verified in the cloud within the lag objective, their lag
measured; a study that gains a series is topped up, uploading only the new instances,
and its manifest is versioned."""

import json
from datetime import date

import pytest
from django.conf import settings
from django.core.management import call_command

from inventory import actions as inventory_actions
from inventory import engine as inventory_engine
from migration import actions as migration_actions
from migration.models import StoredInstance, StudyState, Wave, WaveState
from sync import actions, lag, tasks
from sync.models import ManifestVersion, SyncedStudy, SyncSource
from tests.migration import support as mig
from tests.sync import support
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def objects(client, bucket):
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = (item["LastModified"], item["ETag"], item["Size"])
    return found


def instance_keys(studies):
    return {
        f"studies/{uid}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}.dcm"
        for uid, datasets in studies.items()
        for ds in datasets
    }


def beat_tick(sync):
    """What beat does every SYNC_TICK_SECONDS, with this PACS's turn due now."""
    SyncSource.objects.filter(pk=sync.pk).update(next_crawl_at=sync.enabled_at)
    tasks.tick.apply_async(queue=settings.MIGRATION_QUEUE)


def settled(sync, kind, count):
    done = SyncedStudy.objects.filter(sync=sync, kind=kind, verified_at__isnull=False)
    return done.count() == count


def test_new_studies_are_synced_within_the_objective_and_a_new_series_is_topped_up(
    orthanc_factory, migration_s3, bucket, migration_worker
):
    orthanc = orthanc_factory(aet="SYNCPACS")
    old = support.tiny_studies(3, seed=1801, date_from=date(2015, 1, 1), date_to=date(2016, 1, 1))
    support.upload(orthanc, old)
    source = mig.make_source(orthanc, name="sync-legacy", max_associations=2)
    run = inventory_actions.start_crawl(source, with_series=False, enqueue=False)
    inventory_engine.execute_crawl(run.pk)
    destination = mig.s3_destination(migration_s3, bucket)
    bulk, _info = migration_actions.create_wave(name="bulk", source=source, destination=destination)
    migration_actions.change_wave(bulk, "start")
    wait_for(lambda: Wave.objects.get(pk=bulk.pk).state == WaveState.DONE, message="bulk")
    client = migration_s3.client()
    assert instance_keys(old) <= set(objects(client, bucket))

    call_command("pacs", "sync", source.name, "--on", "--every", "1")
    sync = SyncSource.objects.get(source=source)
    new = support.tiny_studies(3, seed=1802)  # dated today, stored after the wave finished
    support.upload(orthanc, new)
    beat_tick(sync)
    wait_for(lambda: settled(sync, "new", 3), timeout=240, message="3 new studies synced")

    synced = SyncedStudy.objects.filter(sync=sync).select_related("study", "ledger")
    assert {s.study.study_uid for s in synced} == set(new)  # the old ones are not touched
    objective = settings.SYNC_LAG_OBJECTIVE_SECONDS
    assert all(0 < s.lag_s < objective and s.ledger.state == StudyState.DONE for s in synced)
    assert all(s.ledger.wave.priority > bulk.priority for s in synced)
    before = objects(client, bucket)
    assert instance_keys(new) <= set(before)
    figures = lag.figures(sync)
    assert figures["pending"] == 0 and figures["oldest_unsynced_s"] is None
    assert 0 < figures["lag_p50_s"] <= figures["lag_p95_s"] < objective
    status = json.loads(_status_json(source.name))
    assert set(status) >= {"enabled", "lag_p50_s", "lag_p95_s", "oldest_unsynced_s", "pending"}
    assert status["enabled"] is True and status["lag_p95_s"] == figures["lag_p95_s"]

    grown_uid = next(iter(new))
    series = support.extra_series(new[grown_uid], seed=1803, instances=2)
    support.upload(orthanc, {grown_uid: series})
    beat_tick(sync)
    wait_for(lambda: settled(sync, "topup", 1), timeout=240, message="the top-up")

    after = objects(client, bucket)
    added = instance_keys({grown_uid: series})
    assert set(after) - set(before) >= added
    unchanged = {key: before[key] for key in instance_keys(old) | instance_keys(new)}
    assert {key: after[key] for key in unchanged} == unchanged  # nothing uploaded again
    topup = SyncedStudy.objects.get(sync=sync, kind="topup")
    assert topup.study.study_uid == grown_uid and topup.lag_s < objective
    assert topup.ledger.instances_reported == topup.ledger.instances_stored == 3
    assert StoredInstance.objects.filter(ledger=topup.ledger).count() == 3
    versions = list(ManifestVersion.objects.filter(study=topup.study).order_by("version"))
    assert [(v.version, v.instances) for v in versions] == [(1, 1), (2, 3)]
    for version in versions:
        kept = json.loads(client.get_object(Bucket=bucket, Key=version.key)["Body"].read())
        assert len(kept["instances"]) == version.instances
    latest = json.loads(
        client.get_object(Bucket=bucket, Key=f"studies/{grown_uid}/manifest.json")["Body"].read()
    )
    assert len(latest["instances"]) == 3


def _status_json(name):
    from io import StringIO

    out = StringIO()
    call_command("pacs", "sync", name, "--status", "--json", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_a_lag_above_the_objective_raises_an_alert_once_and_clears_it(settings):
    """The objective's alert is the existing raise_alert path (a ticket on the board)."""
    from core import events
    from desk.models import Ticket
    from inventory.models import PacsSource, Study
    from migration.models import Destination

    source = PacsSource.objects.create(name="slow", ae_title="SLOW", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="d", kind="filesystem", path="/tmp/x")
    sync = actions.configure(source, enabled=True, destination=destination)
    study = Study.objects.create(source=source, study_uid="1.2.3.4", num_instances=1)
    heard = []
    listener = events.subscribe_local(lambda topic, message: heard.append((topic, message)))
    try:
        settings.SYNC_LAG_OBJECTIVE_SECONDS = 60
        from datetime import timedelta

        from django.utils import timezone

        SyncedStudy.objects.create(
            sync=sync, study=study, kind="new", sighted_at=timezone.now() - timedelta(minutes=5)
        )
        actions.check_objective(sync)
        actions.check_objective(sync)  # still above: no second alert
        SyncedStudy.objects.all().delete()
        actions.check_objective(sync)
    finally:
        events._listeners.remove(listener)
    alerts = [m["data"] for topic, m in heard if topic == "alerts.migration"]
    assert len(alerts) == 2
    assert (
        alerts[0]["cause"] == f"sync.lag.source-{source.pk}" and "objective" in alerts[0]["title"]
    )
    assert alerts[1].get("recovered") is True
    ticket = Ticket.objects.get(cause=f"sync.lag.source-{source.pk}")
    assert ticket.status == "resolved" and ticket.priority  # opened by the alert, then resolved
