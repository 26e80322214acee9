"""A crawl never reports complete while a study it did not list exists on the PACS: for
each partition, a capped Orthanc holds a study that partition finds (it carries only the
key that partition asks for) and one that no C-FIND can reach (it carries none)."""

import pytest

from inventory import actions, engine
from inventory.models import Study
from tests.inventory.conftest import hidden, register, studies, upload

CAP = 5
ONLY = {"patient": "PatientID", "pid": "PatientID", "acc": "AccessionNumber",
        "name": "PatientName"}  # fmt: skip


@pytest.fixture(scope="module")
def orthanc_with_hidden_studies(orthanc_factory):
    """Orthanc capped at 5: 40 dated studies, one study per key that carries only that key
    (no date, no time), and one that carries none of them."""
    orthanc = orthanc_factory(aet="HIDEALL", limit_find_results=CAP)
    seeded = studies(44, seed=43)
    uids = sorted(seeded)
    special = {"PatientID": uids[0], "AccessionNumber": uids[1], "PatientName": uids[2]}
    for keyword, uid in special.items():
        ds = hidden(seeded[uid], keep=(keyword,))
        if keyword == "PatientID":
            ds.PatientID = "QZ-ONLY-ID"
        elif keyword == "AccessionNumber":
            ds.AccessionNumber = "QZ777"
        else:
            ds.PatientName = "Quokka^Only"
        seeded[uid] = ds
    nothing = uids[3]
    seeded[nothing] = hidden(seeded[nothing])
    upload(orthanc, seeded.values())
    assert orthanc.count_studies() == 44
    return orthanc, seeded, special, nothing


def crawl(orthanc, name):
    source = register(name, orthanc)
    run = actions.start_crawl(source, with_series=False, enqueue=False)
    return engine.execute_crawl(run.pk)


@pytest.mark.django_db(transaction=True)
def test_the_dated_and_timed_trees_alone_never_claim_a_capped_pacs_complete(
    orthanc_with_hidden_studies, settings
):
    orthanc, seeded, special, nothing = orthanc_with_hidden_studies
    settings.INVENTORY_PARTITIONS = []

    result = crawl(orthanc, "trees-only")

    listed = set(Study.objects.values_list("study_uid", flat=True))
    assert listed == set(seeded) - {*special.values(), nothing}
    assert result["complete"] is False
    assert "neither a date nor a time" in result["unproven"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("partition", ["patient", "pid", "acc", "name"])
def test_each_partition_finds_its_study_yet_never_claims_complete_while_one_hides(
    orthanc_with_hidden_studies, settings, partition
):
    orthanc, seeded, special, nothing = orthanc_with_hidden_studies
    settings.INVENTORY_PARTITIONS = [partition]

    result = crawl(orthanc, f"only-{partition}")

    listed = set(Study.objects.values_list("study_uid", flat=True))
    found = special[ONLY[partition]]
    assert found in listed
    assert Study.objects.get(study_uid=found).found_by == partition
    assert nothing not in listed
    assert result["studies"] == 41
    assert result["complete"] is False
    assert result["unproven"].startswith("The universal C-FIND was capped (at 5)")
