"""The crawl against dcmtk's dcmqrscp: no result cap of its own, so a known cap forces the
splitting; it reports neither ModalitiesInStudy nor instance counts, so the series crawl
counts instances at instance level."""

import io
import json
from datetime import date

import pytest
from django.core.management import call_command

from devstack import synthetic
from inventory import actions
from inventory.models import CrawlRange, Series, Study
from tests.inventory.conftest import register, studies

CAP = 25


def multi_series_studies(count, seed):
    found = {}
    for datasets in synthetic.iter_studies(
        studies=count, series=2, instances=3, rows=16, cols=16, modality="MR", seed=seed
    ):
        found[str(datasets[0].StudyInstanceUID)] = datasets
    return found


@pytest.mark.django_db(transaction=True)
def test_a_capped_crawl_of_dcmqrscp_lists_every_study_counts_instances_and_claims_no_proof(
    dcmqrscp_factory,
):
    archive = dcmqrscp_factory(aet="INVQR")
    single = studies(110, seed=41, undated=8)
    multi = multi_series_studies(10, seed=42)
    archive.store_datasets([*single.values(), *(ds for group in multi.values() for ds in group)])
    source = register("dcmqrscp", archive, find_cap=CAP)

    result = actions.execute_crawl(actions.start_crawl(source, enqueue=False).pk)

    assert result["complete"] is False  # capped: studies without date and time could hide
    assert "capped (at 25)" in result["unproven"]
    assert result["studies"] == 120
    assert set(Study.objects.values_list("study_uid", flat=True)) == set(single) | set(multi)
    leaves = CrawlRange.objects.filter(run_id=result["crawl"], status="leaf")
    assert max(leaves.values_list("count", flat=True)) < CAP
    assert CrawlRange.objects.filter(run_id=result["crawl"], status="split").count() >= 2
    assert Study.objects.filter(study_date__isnull=True).count() == 8
    a_multi = Study.objects.get(study_uid=next(iter(multi)))
    assert (a_multi.num_series, a_multi.num_instances, a_multi.modalities) == (2, 6, "MR")
    assert Series.objects.filter(study=a_multi, num_instances=3).count() == 2
    assert result["instances"] == 110 + 60
    sampled = Series.objects.exclude(transfer_syntax="")
    assert sampled.exists()
    assert set(sampled.values_list("transfer_syntax", flat=True)) == {"1.2.840.10008.1.2.1"}

    archive.store_datasets(studies(20, seed=43).values())
    again = actions.execute_crawl(actions.start_crawl(source, with_series=False, enqueue=False).pk)

    assert (again["studies"], again["new"], again["complete"]) == (140, 20, False)
    assert Study.objects.count() == 140
    assert Study.objects.get(pk=a_multi.pk).num_instances == 6  # kept from the series crawl

    out = io.StringIO()
    call_command(
        "inventory", "crawl", source.name, "--since", "2020-01-01", "--json", "--no-series",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    recent = json.loads(out.getvalue().splitlines()[-1])
    expected = Study.objects.filter(study_date__gte=date(2020, 1, 1)).count()
    # a --since crawl asks only for dated studies: its dated leaves prove what it asked
    assert (recent["studies"], recent["complete"], recent["vanished"]) == (expected, True, 0)
    assert recent["unproven"] == "" and "dated from 2020-01-01" in recent["complete_reason"]
    assert 0 < expected < 140
