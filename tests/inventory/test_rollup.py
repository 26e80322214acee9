"""The inventory's rollup is exact: the database's triggers follow every insert, change
and delete of a study (bulk creates, queryset updates, deletes), so the dashboard's
figures, added up from a few rollup rows, equal what counting the studies gives."""

from datetime import date

import pytest
from django.db.models import Count, Q, Sum

from inventory import reports
from inventory.models import PacsSource, Study, StudyRollup

pytestmark = pytest.mark.django_db


@pytest.fixture
def archive():
    """Two PACS; the first holds 60 studies over three modalities, two years, undated
    ones and two character sets."""
    first, second = (
        PacsSource.objects.create(name=name, ae_title=name.upper(), host="127.0.0.1", port=104)
        for name in ("legacy", "other")
    )
    Study.objects.bulk_create(
        Study(
            source=first,
            study_uid=f"1.2.3.{n}",
            modalities=("CT", "MR", "CT\\SR")[n % 3],
            study_date=None if n % 7 == 0 else date(2019 + n % 2, 1 + n % 12, 1 + n % 28),
            num_series=1 + n % 3,
            num_instances=10 * n,
            charset=("", "ISO_IR 192")[n % 2],
            has_problems=n % 11 == 0,
        )  # fmt: skip
        for n in range(60)
    )
    Study.objects.create(source=second, study_uid="9.9", modalities="US", num_instances=5)
    return first, second


def counted(source):
    """What counting the studies gives."""
    live = Study.objects.filter(source=source, vanished=False)
    agg = live.aggregate(
        studies=Count("id"), series=Sum("num_series"), instances=Sum("num_instances"),
        problems=Count("id", filter=Q(has_problems=True)),
    )  # fmt: skip
    by_modality = dict(live.values_list("modalities").annotate(n=Count("id")))
    return agg, Study.objects.filter(source=source, vanished=True).count(), by_modality


def rolled_up(source):
    totals = reports.totals(source)
    agg = {k: totals[k] for k in ("studies", "series", "instances", "problems")}
    rows = reports.rollup(source).values_list("modalities").annotate(n=Sum("studies"))
    return agg, totals["vanished"], {m: n for m, n in rows if n}


def test_the_rollup_follows_inserts_updates_and_deletes(archive):
    first, second = archive
    assert rolled_up(first) == counted(first)
    assert rolled_up(first)[0]["studies"] == 60

    ids = list(Study.objects.filter(source=first).order_by("pk").values_list("pk", flat=True))
    Study.objects.filter(pk__in=ids[:10]).update(vanished=True)
    Study.objects.filter(pk__in=ids[10:20]).update(modalities="PT", num_instances=3)
    Study.objects.filter(pk__in=ids[20:25]).update(study_date=None, has_problems=True)
    Study.objects.filter(pk__in=ids[25:28]).delete()
    Study.objects.filter(pk__in=ids[28:30]).update(description="seen again")  # nothing counted

    assert rolled_up(first) == counted(first)
    assert rolled_up(first)[1] == 10
    other = rolled_up(second)
    assert (other[0]["studies"], other[0]["instances"], other[2]) == (1, 5, {"US": 1})


def test_volumes_by_year_and_month_read_the_rollup_as_counting_would(archive):
    first, _ = archive
    years, stacks = reports.by_year(first)
    assert years == [2019, 2020, "undated"]
    live = Study.objects.filter(source=first)
    for year in (2019, 2020):
        assert (
            sum(v[years.index(year)] for v in stacks.values())
            == live.filter(study_date__year=year).count()
        )
    assert sum(v[-1] for v in stacks.values()) == live.filter(study_date__isnull=True).count()
    monthly = reports.monthly_volume(first)
    assert sum(n for _, n in monthly) == live.filter(study_date__isnull=False).count()
    assert all(month.day == 1 for month, _ in monthly)


def test_a_few_rows_hold_thousands_of_studies(archive):
    first, _ = archive
    Study.objects.bulk_create(
        Study(source=first, study_uid=f"5.{n}", modalities="CT", study_date=date(2021, 3, 4))
        for n in range(3000)
    )
    rows = StudyRollup.objects.filter(source_pk=first.pk, modalities="CT", month=202103)
    assert rows.count() <= 4 and rows.aggregate(n=Sum("studies"))["n"] == 3000
