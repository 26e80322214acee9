"""Go/no-go follows the other apps' events; probes run on the beat schedule in a worker."""

import pytest

from cutover import actions
from cutover.apps import ReadinessFollower
from cutover.models import ProbeResult
from tests.cutover.mllp import MllpListener
from tests.waiting import wait_for


def test_the_follower_re_evaluates_on_other_apps_events_at_most_every_two_seconds(
    db, published, django_capture_on_commit_callbacks
):
    follower = ReadinessFollower()
    with django_capture_on_commit_callbacks(execute=True):
        follower("migration.wave.3", {"data": {}})
        follower("training.session.1", {"data": {}})  # within the interval: skipped
        follower("cutover.readiness", {"data": {}})  # its own topic: never
        follower("roadmap.1", {"data": {}})
    assert [t for t, _m in published] == ["cutover.readiness"]
    follower.last -= 5
    with django_capture_on_commit_callbacks(execute=True):
        follower("alerts.integration", {"data": {}})
    assert [t for t, _m in published] == ["cutover.readiness", "cutover.readiness"]


@pytest.mark.django_db(transaction=True)
def test_scheduled_probes_run_in_a_celery_worker(celery_worker, cast, integration):
    from cutover.tasks import run_scheduled_probes

    plan = actions.create_plan(integration, cast.pm)
    with MllpListener(["AA", "AA"]) as listener:
        plan.probes.update(port=listener.port)
        run_scheduled_probes.delay()
        wait_for(
            lambda: ProbeResult.objects.filter(probe__plan=plan).exists(),
            message=celery_worker.log_tail,
        )
    result = ProbeResult.objects.get(probe__plan=plan)
    assert result.ok and result.trigger == "schedule", result.detail
    assert len(listener.received) == 1
