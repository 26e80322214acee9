"""A PACS that answers C-FIND in its own character set drops what it cannot hold (Orthanc
answers in Latin-1: a Cyrillic name comes back as "^"). The crawl notices it on the
sampled instance, keeps the stored value and lists the study as a lossy answer."""

import pytest

from devstack import synthetic
from inventory import actions
from inventory.models import CrawlProblem, Study
from tests.inventory.conftest import register, upload


@pytest.fixture(scope="module")
def orthanc_with_utf8_names(orthanc_factory):
    orthanc = orthanc_factory(aet="LATIN1")
    seeded = {}
    for datasets in synthetic.iter_studies(studies=8, rows=16, cols=16, charset="ISO_IR 192",
                                           seed=47):  # fmt: skip
        seeded[str(datasets[0].StudyInstanceUID)] = datasets[0]
    upload(orthanc, seeded.values())
    return orthanc, seeded


@pytest.mark.django_db(transaction=True)
def test_a_name_the_pacs_answers_lossily_is_kept_as_stored_and_listed_as_a_lossy_answer(
    orthanc_with_utf8_names,
):
    orthanc, seeded = orthanc_with_utf8_names
    source = register("latin1", orthanc)

    run = actions.start_crawl(source, enqueue=False)
    result = actions.execute_crawl(run.pk)

    assert result["studies"] == 8
    lossy = {uid for uid, ds in seeded.items() if not str(ds.PatientName).isascii()}
    assert lossy
    for study in Study.objects.filter(study_uid__in=lossy):
        assert study.patient_name == str(seeded[study.study_uid].PatientName)
        assert [p["code"] for p in study.problems if p["code"] == "lossy answer"]
        assert "PatientName" in study.problems[-1]["detail"]
        assert str(seeded[study.study_uid].PatientName) not in study.problems[-1]["detail"]
    assert CrawlProblem.objects.filter(run=run, code="lossy answer").count() == len(lossy)
    ascii_names = Study.objects.exclude(study_uid__in=lossy)
    assert not any(p["code"] == "lossy answer" for s in ascii_names for p in s.problems)
