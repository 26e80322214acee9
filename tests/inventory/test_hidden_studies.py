"""Studies a capped universal C-FIND hides (no StudyDate, no StudyTime) are found by the
partitions that follow the dated and timed trees, and the crawl never calls a proof what is
only a search."""

import io
import json

import pytest
from django.core.management import call_command

from inventory.models import CrawlRange, Study
from tests.inventory.conftest import hidden, register, studies, upload

CAP = 37


@pytest.fixture(scope="module")
def orthanc_hiding_27(orthanc_factory):
    """Orthanc capped at 37 with 600 studies, 27 of them without date and time but with
    their PatientID, AccessionNumber and PatientName."""
    orthanc = orthanc_factory(aet="HIDE27", limit_find_results=CAP)
    seeded = studies(600, seed=41)
    undated = sorted(seeded)[::22][:27]
    for uid in undated:
        seeded[uid] = hidden(seeded[uid], keep=("PatientID", "AccessionNumber", "PatientName"))
    upload(orthanc, seeded.values())
    assert orthanc.count_studies() == 600
    return orthanc, seeded, undated


@pytest.mark.django_db(transaction=True)
def test_a_capped_crawl_finds_all_600_studies_even_the_27_without_date_or_time(
    orthanc_hiding_27,
):
    orthanc, seeded, undated = orthanc_hiding_27
    source = register("hide-27", orthanc)
    out = io.StringIO()

    call_command("inventory", "crawl", source.name, "--no-series", "--json", stdout=out,
                 stderr=io.StringIO())  # fmt: skip

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["studies"] == 600
    assert set(Study.objects.values_list("study_uid", flat=True)) == set(seeded)
    found = Study.objects.filter(study_uid__in=undated)
    by_chance = found.filter(found_by="all").count()  # in the capped universal answer
    assert set(found.values_list("found_by", flat=True)) <= {"all", "patient"}
    assert summary["found_by"]["patient"] == 27 - by_chance > 0
    assert summary["complete"] is False
    assert "capped (at 37)" in summary["unproven"] and "second witness" in summary["unproven"]
    leaves = CrawlRange.objects.filter(status="leaf", count__isnull=False)
    assert max(leaves.values_list("count", flat=True)) <= CAP  # Orthanc says Cancel above it
    assert not leaves.filter(note__startswith="the PACS stopped early").exists()
