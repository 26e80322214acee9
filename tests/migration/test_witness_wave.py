"""Studies C-FIND cannot reach (no date, no time, no PatientID, accession or name behind a
capped universal query): the crawl says it cannot prove completeness, a read-only scan of
Orthanc's own storage finds exactly those studies, and a wave migrates them all, verified,
by a real worker into S3."""

import io
import json

import pytest
from django.core.management import call_command

from inventory.models import Study
from migration import actions
from migration.models import StoredInstance, StudyState
from tests.inventory.conftest import hidden, register, studies, upload
from tests.migration import support
from tests.migration.test_waves import run_waves

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def command(*args):
    out = io.StringIO()
    call_command("inventory", *args, "--json", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_a_storage_scan_finds_the_60_studies_c_find_hides_and_a_wave_migrates_them_verified(
    orthanc_factory, migration_s3, bucket, migration_worker
):
    orthanc = orthanc_factory(aet="HIDE60", limit_find_results=37)
    seeded = studies(200, seed=71)
    unreachable = sorted(seeded)[::3][:60]
    for uid in unreachable:
        seeded[uid] = hidden(seeded[uid])
    upload(orthanc, seeded.values())
    assert orthanc.count_studies() == 200
    source = register("hide-60", orthanc, move_destination="CCTEST")

    crawl = command("crawl", source.name, "--no-series")

    assert crawl["complete"] is False
    assert "capped (at 37)" in crawl["unproven"] and "second witness" in crawl["unproven"]
    listed = set(Study.objects.values_list("study_uid", flat=True))
    missing = sorted(set(seeded) - listed)  # the capped universal answer lists a few by chance
    assert crawl["studies"] == len(listed) and 0 < len(missing) <= 60
    assert set(missing) <= set(unreachable) and listed <= set(seeded)

    scan = command("scan", source.name, str(orthanc.workdir / "storage"))

    assert (scan["studies"], scan["instances"]) == (200, 200)
    assert scan["files"] == 200 + len(scan["unreadable"])  # Orthanc's index lives there too
    assert {u["reason"] for u in scan["unreadable"]} <= {"not a DICOM Part-10 file"}

    compared = command("compare", source.name)

    assert compared["only_in_witness"] == missing
    assert compared["only_in_crawl"] == []
    assert (compared["crawled_studies"], compared["witness_studies"]) == (len(listed), 200)
    assert compared["agree"] is False
    joined = Study.objects.filter(study_uid__in=missing)
    assert set(joined.values_list("found_by", flat=True)) == {"scan"}
    assert joined.count() == len(missing)

    wave, info = actions.create_wave(
        name="hidden", source=source, destination=support.s3_destination(migration_s3, bucket)
    )
    assert info["studies"] == 200
    run_waves([wave])

    rows = wave.ledger.select_related("study")
    assert {row.study.study_uid: row.state for row in rows} == dict.fromkeys(
        seeded, StudyState.DONE
    )
    for row in rows.filter(study__study_uid__in=missing):
        assert row.instances_reported == row.instances_stored == 1
        stored = StoredInstance.objects.get(ledger=row)
        assert stored.sop_uid == str(seeded[row.study.study_uid].SOPInstanceUID)
