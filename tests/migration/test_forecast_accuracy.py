"""The forecast against the real engine: a wave of 60 studies (2 series of 20 small
instances each) runs through a real Celery worker (Orthanc → SeaweedFS, 2 associations);
after its first third, the forecast of the remaining time is compared with what the rest
then takes. Measured here: 0.71–1.41 over eleven runs, eight within ±25% (the rest takes
about six seconds, so a load rise on the shared 2-core machine during it moves the ratio
and is not foreseeable); the test asserts ±50%, a forecast off by more is a bug."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Max
from django.utils import timezone

from migration import actions, planning
from migration.models import StudyState, Wave, WaveState
from tests.fixtures_services import seed_orthanc, seed_studies
from tests.migration import support
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STUDIES, SHAPE = 60, {"series": 2, "instances": 20, "rows": 64, "cols": 64}


@pytest.fixture(scope="module")
def sixty_studies(orthanc_factory):
    orthanc = orthanc_factory(aet="FCPACS")
    studies = seed_studies(seed=919, studies=STUDIES, **SHAPE)
    seed_orthanc(orthanc, studies)
    return orthanc, studies


def test_the_forecast_after_a_third_of_a_wave_is_within_a_quarter_of_the_real_rest(
    sixty_studies, migration_s3, bucket, migration_worker
):
    orthanc, studies = sixty_studies
    source = support.make_source(orthanc, name="forecast-pacs", max_associations=2)
    support.make_inventory(source, studies)
    destination = support.s3_destination(migration_s3, bucket)
    wave, _info = actions.create_wave(name="forecast", source=source, destination=destination)
    done = wave.ledger.filter(state=StudyState.DONE)

    actions.change_wave(wave, "start")
    wait_for(lambda: done.count() >= STUDIES // 3, timeout=600, interval=0.05,
                     message="the first third of the wave")  # fmt: skip
    now = timezone.now()
    result = planning.plan(now)
    forecast = result["waves"][0]["remaining_seconds"]
    wait_for(
        lambda: Wave.objects.get(pk=wave.pk).state == WaveState.DONE, timeout=900,
        message="the wave to finish",
    )  # fmt: skip

    actual = (done.aggregate(last=Max("finished_at"))["last"] - now).total_seconds()
    assert done.count() == STUDIES
    assert result["throughput"]["studies"] >= STUDIES // 3
    print(f"forecast {forecast:.1f} s, actual {actual:.1f} s, ratio {forecast / actual:.3f}")
    assert abs(forecast - actual) <= 0.5 * actual, (forecast, actual, result["throughput"])

    out = StringIO()
    call_command("plan", "--json", stdout=out)
    printed = json.loads(out.getvalue())
    keys = {"finish_date", "finish_p10", "finish_p90", "required_mbps", "hosts_needed"}
    assert keys | {"monthly_cost"} <= set(printed)
    assert printed["monthly_cost"][0]["storage_standard"] >= 0
