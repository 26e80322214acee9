"""The crawl against a capped Orthanc: every study found, every leaf under the cap, and a
second crawl that adds the new studies and flags the vanished ones."""

import functools
import io
import json

import pytest
from django.core.management import call_command

from inventory import actions, crawler, dicom, engine
from inventory.models import CrawlRange, GrowthSnapshot, Study
from tests.inventory.conftest import delete_study, register, studies, upload

CAP = 50


@pytest.fixture(scope="module")
def capped_orthanc(orthanc_factory):
    """An Orthanc capped at 50 C-FIND results, seeded with 1,000 studies over 20 years,
    50 of them without a StudyDate."""
    orthanc = orthanc_factory(aet="CAPPED50", limit_find_results=CAP)
    seeded = studies(1000, seed=31, undated=50)
    upload(orthanc, seeded.values())
    assert orthanc.count_studies() == 1000
    return orthanc, seeded


@pytest.mark.django_db(transaction=True)
def test_a_crawl_of_a_capped_orthanc_finds_every_study_and_a_second_one_adds_the_growth(
    capped_orthanc,
):
    orthanc, seeded = capped_orthanc
    source = register("capped-orthanc", orthanc)

    run = actions.start_crawl(source, with_series=False, enqueue=False)
    result = engine.execute_crawl(run.pk)

    assert result["complete"] is False  # capped: a study with no date and no time could hide
    assert "second witness" in result["unproven"]
    assert result["studies"] == orthanc.count_studies() == 1000
    assert set(Study.objects.values_list("study_uid", flat=True)) == set(seeded)
    assert Study.objects.filter(study_date__isnull=True).count() == 50
    assert result["detected_cap"] == CAP
    leaves = CrawlRange.objects.filter(run=run, status="leaf")
    assert leaves.count() == result["leaf_ranges"] > 20
    assert max(leaves.values_list("count", flat=True)) <= CAP  # Orthanc says Cancel above it
    assert not leaves.filter(note__startswith="the PACS stopped early").exists()
    settled = ["leaf", "split", "pruned"]
    assert not CrawlRange.objects.filter(run=run).exclude(status__in=settled).exists()
    assert CrawlRange.objects.filter(run=run, status="split", capped=True).exists()
    dated = leaves.filter(kind="dated").exclude(level="modality")
    assert sum(dated.values_list("unique_count", flat=True)) == 950

    added = studies(100, seed=32, undated=5)
    upload(orthanc, added.values())
    gone = sorted(seeded)[:5]
    for uid in gone:
        delete_study(orthanc, uid)
    out, err = io.StringIO(), io.StringIO()
    call_command("inventory", "crawl", source.name, "--no-series", "--json", stdout=out, stderr=err)

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["studies"] == orthanc.count_studies() == 1095
    assert summary["complete"] is False
    assert (summary["new"], summary["vanished"]) == (100, 5)
    assert set(Study.objects.filter(vanished=True).values_list("study_uid", flat=True)) == set(gone)
    assert Study.objects.count() == 1100
    assert "ranges" in err.getvalue()  # the progress bar went to stderr
    growth = GrowthSnapshot.objects.filter(source=source).order_by("taken_at")
    assert [(g.studies, g.new_studies, g.vanished_studies) for g in growth] == [
        (1000, 1000, 0),
        (1095, 100, 5),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_question_asked_ahead_reaches_the_pacs_once_however_small_the_batches(
    capped_orthanc, monkeypatch
):
    """The crawl asks C-FINDs ahead on its four associations and reads the answers still in
    flight in the next batch. With one answer per batch, nearly every answer is one asked
    ahead, and each question still reaches the PACS once."""
    orthanc, _seeded = capped_orthanc  # and what the test above added and deleted
    source = register("ahead-orthanc", orthanc, max_associations=4)
    asked = []
    find = dicom.FindSession.find

    def counted(session, query, model=dicom.FIND_MODEL):
        asked.append(query)
        return find(session, query, model)

    monkeypatch.setattr(dicom.FindSession, "find", counted)
    monkeypatch.setattr(crawler, "walk", functools.partial(crawler.walk, batch_seconds=0))

    run = actions.start_crawl(source, with_series=False, enqueue=False)
    result = engine.execute_crawl(run.pk)

    assert result["studies"] == Study.objects.count() == orthanc.count_studies() >= 1000
    asked_nodes = CrawlRange.objects.filter(run=run, count__isnull=False).count()
    assert len(asked) == result["queries"] == asked_nodes > 100
