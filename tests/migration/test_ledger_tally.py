"""The ledger's tallies are exact: the database's triggers follow every insert, state
change, count change and delete of a ledger row, so the wave page and the progress
measures read the same numbers a count over the ledger gives, without counting it."""

import pytest
from django.db.models import Count, Sum

from inventory.models import PacsSource, Study
from migration import actions, measures
from migration.models import Destination, LedgerTally, StudyState, WaveStudy

pytestmark = pytest.mark.django_db


@pytest.fixture
def waves(tmp_path):
    source = PacsSource.objects.create(name="legacy", ae_title="PACS", host="127.0.0.1", port=104)
    Study.objects.bulk_create(
        Study(source=source, study_uid=f"1.2.3.{n}", modalities="CT") for n in range(40)
    )
    destination = Destination.objects.create(name="cloud", kind="filesystem", path=str(tmp_path))
    return [
        actions.create_wave(name=name, source=source, destination=destination)[0]
        for name in ("first", "second")
    ]


def counted(wave):
    """What counting the ledger gives: {state: (studies, stored, reported, bytes)}."""
    rows = wave.ledger.values("state").annotate(
        n=Count("pk"), stored=Sum("instances_stored"), reported=Sum("instances_reported"),
        size=Sum("bytes_stored"),
    )  # fmt: skip
    return {r["state"]: (r["n"], r["stored"], r["reported"] or 0, r["size"]) for r in rows}


def tallied(wave):
    return {
        state: (s["studies"], s["instances_stored"], s["instances_reported"], s["bytes_stored"])
        for state, s in measures.tallies([wave.pk]).items()
        if s["studies"]
    }


def test_tallies_follow_inserts_state_changes_counts_and_deletes(waves):
    first, second = waves
    assert tallied(first) == counted(first) == {StudyState.QUEUED: (40, 0, 0, 0)}

    ids = list(first.ledger.order_by("pk").values_list("pk", flat=True))
    WaveStudy.objects.filter(pk__in=ids[:25]).update(
        state=StudyState.DONE, instances_reported=3, instances_stored=3, bytes_stored=3000
    )
    WaveStudy.objects.filter(pk__in=ids[25:30]).update(state=StudyState.FAILED)
    WaveStudy.objects.filter(pk=ids[0]).update(instances_stored=2)
    WaveStudy.objects.filter(pk__in=ids[30:33]).delete()
    WaveStudy.objects.filter(pk__in=ids[:5]).update(lease_owner="a worker")  # counts unchanged

    assert tallied(first) == counted(first)
    assert tallied(first)[StudyState.DONE] == (25, 74, 75, 75000)
    assert tallied(second) == counted(second) == {StudyState.QUEUED: (40, 0, 0, 0)}


def test_the_wave_status_and_progress_read_the_tallies(waves):
    first, _second = waves
    WaveStudy.objects.filter(wave=first, pk__in=first.ledger.values("pk")[:10]).update(
        state=StudyState.QUARANTINED
    )
    LedgerTally.objects.filter(wave_pk=first.pk, state=StudyState.QUARANTINED).update(studies=0)

    status = measures.wave_status(first)

    assert status["counts"][StudyState.QUARANTINED] == 0  # what the tallies say, not a count
    assert measures.wave_progress()["total"] == 70


def test_the_wave_ledger_page_goes_on_by_keyset_with_the_total_from_the_tallies(
    waves, cast, client_for, monkeypatch
):
    from django.urls import reverse

    from migration import views

    monkeypatch.setattr(views, "WAVE_PAGE_ROWS", 15)
    first, _second = waves
    ids = list(first.ledger.order_by("pk").values_list("pk", flat=True))
    url = reverse("migration:wave_studies", args=[first.name])

    page_one = client_for(cast.engineer).get(url).context
    page_three = client_for(cast.engineer).get(url, {"after": ids[29]}).context

    assert [row.pk for row in page_one["page"]] == ids[:15] and page_one["total"] == 40
    assert page_one["next_after"] == ids[14]
    assert [row.pk for row in page_three["page"]] == ids[30:] and page_three["next_after"] is None
