"""`manage.py validate reconcile|spotcheck WAVE --json`: the JSON contract on the last
line of stdout, progress on stderr, reproducible samples, clear usage errors."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from migration.models import Discrepancy
from tests.fixtures_processes import database_url
from tests.migration import validation_support as vs

pytestmark = pytest.mark.django_db
CONTRACT = {"study", "series", "instance", "kind", "detail"}


@pytest.fixture(scope="module")
def clean(django_db_setup, django_db_blocker, mixed_pacs, migration_s3, engine_settings):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies, ("CT", "MR", "CR", "US"))
    with vs.shared_wave(django_db_blocker, "cmd", orthanc, chosen, migration_s3) as wave:
        yield wave, chosen


def validate(*args):
    out, err = StringIO(), StringIO()
    call_command("validate", *args, stdout=out, stderr=err)
    lines = out.getvalue().strip().splitlines()
    return json.loads(lines[-1]), lines[:-1], err.getvalue()


def test_reconcile_json_has_the_totals_and_the_discrepancy_list(clean, migration_s3):
    wave, studies = clean
    result, summary, progress = validate("reconcile", wave.name, "--json")
    assert (result["studies"], result["complete"]) == (4, 4)
    assert result["missing_instances"] == result["extra_instances"] == 0
    assert result["discrepancies"] == []
    assert "4 of 4 studies complete" in summary[0]
    assert "4/4" in progress

    gone = vs.stored(wave, "MR", 0)
    body = vs.s3_object(migration_s3, wave, gone.key)
    vs.delete_object(migration_s3, wave, gone.key)
    try:
        result, _summary, _progress = validate("reconcile", wave.name, "--json")
    finally:
        vs.put_object(migration_s3, wave, gone.key, body)
    assert result["complete"] == 3 and result["missing_instances"] == 1
    (item,) = result["discrepancies"]
    assert set(item) == CONTRACT
    assert (item["instance"], item["series"], item["kind"]) == (gone.sop_uid, gone.series_uid,
                                                                 "missing")  # fmt: skip
    assert Discrepancy.objects.get(wave=wave).status == "open"


def test_spotcheck_json_samples_reproducibly_with_a_seed(clean):
    wave, _studies = clean
    first, _summary, _progress = validate("spotcheck", wave.name, "--sample", "2", "--seed",
                                          "7", "--json")  # fmt: skip
    again, _summary, _progress = validate("spotcheck", wave.name, "--sample", "2", "--seed",
                                          "7", "--json")  # fmt: skip
    assert first["studies_sampled"] == 2 and first["instances_compared"] >= 2
    assert first["discrepancies"] == [] and first["studies"] == again["studies"]
    everything, _summary, _progress = validate("spotcheck", wave.name, "--json")
    assert everything["studies_sampled"] == 4 and everything["instances_compared"] == 5


def test_an_unknown_wave_is_a_usage_error_with_a_clear_message(db):
    with pytest.raises(CommandError, match="no wave named 'nowhere'"):
        call_command("validate", "reconcile", "nowhere")
    finished = subprocess.run(
        [sys.executable, "manage.py", "validate", "spotcheck", "nowhere", "--json"],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, DATABASE_URL=database_url()),
    )  # fmt: skip
    assert finished.returncode != 0
    assert "no wave named 'nowhere'" in finished.stderr
