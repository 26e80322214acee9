"""Malformed C-FIND responses (missing UIDs, odd dates, wrong character sets) become
problems on the dashboard, never crashes."""

import pytest
from pydicom.dataelem import DataElement

from devstack import synthetic
from inventory import actions
from inventory.models import CrawlProblem, Study
from tests.inventory.conftest import register, studies, upload


def one(seed, **changes):
    ds = next(iter(studies(1, seed=seed, modalities=("CT",)).values()))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return ds


def latin1_bytes_declared_utf8(seed):
    ds = one(seed, SpecificCharacterSet="ISO_IR 192")
    ds["PatientName"] = DataElement(0x00100010, "PN", "Müller^Jörg".encode("latin-1"))
    return ds


def codes(study_uid):
    return {p["code"] for p in Study.objects.get(study_uid=study_uid).problems}


@pytest.mark.django_db(transaction=True)
def test_dcmqrscp_responses_without_uid_with_odd_dates_or_charsets_become_problems(
    dcmqrscp_factory, client_for, cast
):
    archive = dcmqrscp_factory(aet="INVBAD")
    good = studies(12, seed=51)
    odd_date, iso_date = one(52, StudyDate="20231345"), one(53, StudyDate="2023-01-05")
    unknown_charset = one(54, SpecificCharacterSet="ISO_IR 999")
    bad_bytes = latin1_bytes_declared_utf8(55)
    no_patient = synthetic.without_tags(one(56), "PatientID")
    no_uid = synthetic.without_tags(one(57), "StudyInstanceUID")
    archive.store_datasets(
        [*good.values(), odd_date, iso_date, unknown_charset, bad_bytes, no_patient, no_uid]
    )
    source = register("dcmqrscp-bad", archive, find_cap=10)

    result = actions.execute_crawl(actions.start_crawl(source, enqueue=False).pk)

    assert result["status"] == "done"
    assert result["complete"] is False and result["unproven"]
    assert Study.objects.count() == 12 + 5
    assert codes(str(odd_date.StudyInstanceUID)) == {"odd_date"}
    assert codes(str(iso_date.StudyInstanceUID)) == {"odd_date"}
    assert Study.objects.get(study_uid=str(odd_date.StudyInstanceUID)).study_date is None
    assert codes(str(unknown_charset.StudyInstanceUID)) == {"charset"}
    assert codes(str(bad_bytes.StudyInstanceUID)) == {"charset"}
    assert codes(str(no_patient.StudyInstanceUID)) == {"missing_patient_id"}
    assert list(CrawlProblem.objects.values_list("code", flat=True)) == ["missing_uid"]
    assert not Study.objects.filter(study_uid__in=good, has_problems=True).exists()

    page = client_for(cast.pm).get("/inventory/").content.decode()
    for code in ("odd_date", "charset", "missing_patient_id", "missing_uid"):
        assert f'data-problem="{code}"' in page
    assert "Müller" not in page and "SYN" not in page  # problems carry no PHI


@pytest.mark.django_db(transaction=True)
def test_orthanc_matches_odd_dates_as_text_and_the_crawl_still_records_them(orthanc_factory):
    orthanc = orthanc_factory(aet="ODDDATES", limit_find_results=8)
    good = studies(20, seed=61, undated=2)
    odd = [one(62, StudyDate="20231345"), one(63, StudyDate="2023-01-05"), one(64, StudyDate="1")]
    upload(orthanc, [*good.values(), *odd, synthetic.without_tags(one(65), "PatientID")])
    source = register("orthanc-odd", orthanc)

    result = actions.execute_crawl(actions.start_crawl(source, with_series=False, enqueue=False).pk)

    assert result["complete"] is False and result["unproven"]
    assert result["studies"] == orthanc.count_studies() == 24
    for ds in odd:
        assert codes(str(ds.StudyInstanceUID)) == {"odd_date"}
    assert Study.objects.filter(has_problems=True).count() == 4
