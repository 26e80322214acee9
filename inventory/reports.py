"""What the inventory adds up to: totals, volumes, growth, formats and problems.

Plain functions over the ledger returning plain data. The study-level figures add up
the rollup the database keeps (StudyRollup, inventory/rollup.py), never the studies
themselves, so they cost the same at ten million studies as at ten.
"""

from collections import Counter, defaultdict
from datetime import date

from django.db.models import Avg, Count, F, Q, Sum
from pydicom.uid import UID

from inventory.models import CrawlProblem, CrawlRun, Series, Study, StudyRollup

# Typical bytes per instance by modality, used until the instance sample has measured some.
TYPICAL_BYTES = {
    "CT": 530_000,
    "MR": 270_000,
    "CR": 10_000_000,
    "DX": 12_000_000,
    "MG": 40_000_000,
    "US": 1_200_000,
    "XA": 8_000_000,
    "NM": 300_000,
    "PT": 350_000,
    "OT": 1_000_000,
}
DEFAULT_BYTES = 1_000_000
UNDATED = "undated"


def studies(source=None):
    rows = Study.objects.filter(vanished=False)
    return rows.filter(source=source) if source is not None else rows


def series(source=None):
    rows = Series.objects.filter(study__vanished=False)
    return rows.filter(study__source=source) if source is not None else rows


def rollup(source=None, vanished=False):
    rows = StudyRollup.objects.filter(vanished=vanished)
    return rows.filter(source_pk=source.pk) if source is not None else rows


def totals(source=None):
    agg = rollup(source).aggregate(
        studies=Sum("studies"), series=Sum("series"), instances=Sum("instances"),
        problems=Sum("problems"),
    )  # fmt: skip
    bytes_, basis = estimated_bytes(source)
    return {
        "studies": agg["studies"] or 0,
        "series": agg["series"] or 0,
        "instances": agg["instances"] or 0,
        "problems": agg["problems"] or 0,
        "vanished": rollup(source, vanished=True).aggregate(n=Sum("studies"))["n"] or 0,
        "estimated_bytes": bytes_,
        "bytes_basis": basis,
    }


def estimated_bytes(source=None):
    """(bytes, basis): instances per modality × the sampled (or typical) instance size."""
    sampled = dict(
        series(source)
        .filter(sample_bytes__isnull=False)
        .values_list("modality")
        .annotate(avg=Avg("sample_bytes"))
    )
    total = 0
    for row in rollup(source).values("modalities").annotate(instances=Sum("instances")):
        first = (row["modalities"] or "").split("\\")[0]
        size = sampled.get(first) or TYPICAL_BYTES.get(first, DEFAULT_BYTES)
        total += (row["instances"] or 0) * size
    return int(total), "sampled" if sampled else "typical sizes"


def by_modality(source=None):
    """[{"modality", "studies", "instances"}] largest first; a study counts for each of
    its modalities."""
    counts, instances = Counter(), Counter()
    rows = rollup(source).values("modalities").annotate(n=Sum("studies"), i=Sum("instances"))
    for row in rows:
        for modality in (row["modalities"] or "?").split("\\"):
            counts[modality or "?"] += row["n"]
            instances[modality or "?"] += row["i"] or 0
    return [
        {"modality": m, "studies": n, "instances": instances[m]} for m, n in counts.most_common()
    ]


def by_year(source=None):
    """(years, {modality: [count per year]}): studies per StudyDate year and modality."""
    rows = (
        rollup(source)
        .annotate(year=F("month") / 100)
        .values("year", "modalities")
        .annotate(n=Sum("studies"))
    )
    table = defaultdict(Counter)
    for row in rows:
        year = row["year"] or UNDATED
        first = (row["modalities"] or "?").split("\\")[0] or "?"
        table[first][year] += row["n"]
    years = sorted({y for c in table.values() for y in c if y != UNDATED})
    if any(UNDATED in c for c in table.values()):
        years.append(UNDATED)
    ordered = sorted(table, key=lambda m: -sum(table[m].values()))
    return years, {m: [table[m].get(y, 0) for y in years] for m in ordered}


def monthly_volume(source=None, months=60):
    """[(first day of month, studies)] for the last `months` months that have studies
    (up to this month)."""
    today = date.today()
    rows = (
        rollup(source)
        .filter(month__gt=0, month__lte=today.year * 100 + today.month)
        .values("month")
        .annotate(n=Sum("studies"))
        .order_by("-month")[:months]
    )
    return sorted((_month(row["month"]), row["n"]) for row in rows)


def _month(yyyymm):
    return date(yyyymm // 100, yyyymm % 100, 1)


def growth(source=None, horizon=12, window=24):
    """The archive's growth by StudyDate and its linear projection `horizon` months on.

    Returns {"actual": [(month, cumulative)], "projection": [(month, cumulative)],
    "per_month": fitted studies per month now, "projected_new": studies added over the
    horizon}. The fit is least squares over the last `window` months.
    """
    monthly = monthly_volume(source, months=10_000)
    if not monthly:
        return {"actual": [], "projection": [], "per_month": 0, "projected_new": 0}
    first = monthly[0][0]
    earlier = rollup(source).filter(month__gt=0, month__lt=first.year * 100 + first.month)
    base = earlier.aggregate(n=Sum("studies"))["n"] or 0
    actual, running = [], base
    for month, n in monthly:
        running += n
        actual.append((month, running))
    recent = monthly[-window:]
    slope, intercept = _fit([_index(m, recent[0][0]) for m, _ in recent], [n for _, n in recent])
    last_month, cumulative = actual[-1]
    projection = [(last_month, cumulative)]
    start = _index(last_month, recent[0][0])
    for step in range(1, horizon + 1):
        cumulative += max(0.0, slope * (start + step) + intercept)
        projection.append((_add_months(last_month, step), round(cumulative)))
    per_month = max(0.0, slope * start + intercept)
    return {
        "actual": actual,
        "projection": projection,
        "per_month": round(per_month, 1),
        "projected_new": projection[-1][1] - actual[-1][1],
    }


def _index(month, origin):
    return (month.year - origin.year) * 12 + month.month - origin.month


def _add_months(month, n):
    total = month.year * 12 + month.month - 1 + n
    return date(total // 12, total % 12 + 1, 1)


def _fit(xs, ys):
    if len(xs) < 2:
        return 0.0, float(ys[0]) if ys else 0.0
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
    return slope, mean_y - slope * mean_x


def formats(source=None):
    """SOP classes, transfer syntaxes (sampled) and character sets, with counts."""
    rows = series(source)
    sop = (
        rows.exclude(sop_class="")
        .values("sop_class")
        .annotate(series=Count("id"), instances=Sum("num_instances"))
    )
    syntaxes = rows.exclude(transfer_syntax="").values("transfer_syntax").annotate(n=Count("id"))
    charsets = rollup(source).values("charset").annotate(n=Sum("studies")).order_by("-n")
    return {
        "sop_classes": sorted(
            (
                {
                    "uid": r["sop_class"],
                    "name": _uid_name(r["sop_class"]),
                    "series": r["series"],
                    "instances": r["instances"] or 0,
                }
                for r in sop
            ),
            key=lambda r: -r["series"],
        ),
        "transfer_syntaxes": sorted((_syntax_row(r) for r in syntaxes), key=lambda r: -r["series"]),
        "charsets": [{"charset": r["charset"] or "(default)", "studies": r["n"]} for r in charsets],
        "sampled_charsets": list(
            rows.exclude(transfer_syntax="")
            .values("charset")
            .annotate(series=Count("id"))
            .order_by("-series")
        ),
        "sampled_series": rows.exclude(transfer_syntax="").count(),
    }


def _syntax_row(row):
    uid = row["transfer_syntax"]
    return {"uid": uid, "name": _uid_name(uid), "series": row["n"]}


def _uid_name(uid):
    name = UID(uid).name
    return name if name != uid else "unknown"


def largest(source=None, limit=10):
    return list(
        studies(source)
        .filter(num_instances__isnull=False)
        .select_related("source")
        .order_by("-num_instances", "-id")[:limit]
    )


def problem_studies(source=None, limit=20):
    rows = studies(source).filter(has_problems=True).select_related("source")
    return list(rows.order_by("-id")[:limit])


def problem_counts(source=None):
    """{code: studies} over the ledger, plus the responses no study could hold."""
    counts = Counter()
    for problems in studies(source).filter(has_problems=True).values_list("problems", flat=True):
        for code in {p.get("code", "?") for p in problems or []}:
            counts[code] += 1
    latest = latest_runs(source)
    for row in CrawlProblem.objects.filter(run__in=latest).values("code").annotate(n=Count("id")):
        counts[row["code"]] += row["n"]
    return dict(counts.most_common())


def crawl_problems(source=None, limit=20):
    return list(CrawlProblem.objects.filter(run__in=latest_runs(source))[:limit])


def latest_runs(source=None):
    """The latest finished crawl of each source (or of `source`)."""
    runs = CrawlRun.objects.filter(status=CrawlRun.Status.DONE)
    if source is not None:
        runs = runs.filter(source=source)
    latest = {}
    for run_id, source_id in runs.order_by("-id").values_list("id", "source_id"):
        latest.setdefault(source_id, run_id)
    return list(latest.values())


# -- the study list and the crawl proof -------------------------------------------------

PAGE_SIZE = 50


def filter_studies(rows, filters):
    """Apply the study-list filters (a StudyFilterForm's cleaned_data)."""
    if filters.get("source"):
        rows = rows.filter(source=filters["source"])
    modality = filters.get("modality")
    if modality:
        rows = rows.filter(
            Q(modalities=modality)
            | Q(modalities__startswith=f"{modality}\\")
            | Q(modalities__endswith=f"\\{modality}")
            | Q(modalities__contains=f"\\{modality}\\")
        )
    if filters.get("date_from"):
        rows = rows.filter(study_date__gte=filters["date_from"])
    if filters.get("date_to"):
        rows = rows.filter(study_date__lte=filters["date_to"])
    if filters.get("undated"):
        rows = rows.filter(study_date__isnull=True)
    if filters.get("problems"):
        rows = rows.filter(has_problems=True)
    rows = rows.filter(vanished=bool(filters.get("vanished")))
    for key, field in (("uid", "study_uid"), ("accession", "accession_number")):
        if filters.get(key):
            rows = rows.filter(**{field: filters[key]})
    if filters.get("patient_id"):
        rows = rows.filter(patient_id=filters["patient_id"])
    return rows


def study_page(filters, before=None, size=PAGE_SIZE):
    """One page of the study list, newest first, by keyset (no OFFSET, no COUNT).

    Returns (studies, the `before` id of the next page or None).
    """
    rows = filter_studies(Study.objects.select_related("source"), filters).order_by("-id")
    if before:
        rows = rows.filter(id__lt=before)
    page = list(rows[: size + 1])
    more = len(page) > size
    page = page[:size]
    return page, (page[-1].pk if more else None)


def crawl_proof(run):
    """How the crawl covered the range: nodes by tree, level and status, and the sums."""
    rows = (
        run.ranges.values("kind", "level", "status")
        .annotate(nodes=Count("id"), responses=Sum("count"), distinct=Sum("unique_count"))
        .order_by("kind", "level", "status")
    )
    table = [dict(row) for row in rows]
    leaves = [r for r in table if r["status"] == "leaf"]
    dated_leaves = [r for r in leaves if r["kind"] == "dated" and r["level"] != "modality"]
    counts = run.proof or study_counts(run)
    return {
        "table": table,
        "leaves": sum(r["nodes"] for r in leaves),
        "leaf_responses": sum(r["responses"] or 0 for r in leaves),
        "leaf_distinct": sum(r["distinct"] or 0 for r in leaves),
        "dated_leaf_distinct": sum(r["distinct"] or 0 for r in dated_leaves),
        "dated_studies": counts["dated"],
        "undated_studies": counts["undated"],
        "studies": counts["studies"],
        "open": sum(r["nodes"] for r in table if r["status"] not in ("leaf", "split")),
        "cap": run.source.find_cap or run.detected_cap,
        "cap_known": bool(run.source.find_cap),
    }


def study_counts(run):
    """Studies the crawl saw: all, with a StudyDate in its dated span, without a usable one.
    Stored on the run when it finishes (a later crawl stamps the same studies)."""
    seen = Study.objects.filter(seen_run=run)
    dated_root = run.ranges.filter(kind="dated", level="span").first()
    dated = seen.filter(study_date__isnull=False)
    if dated_root is not None:
        dated = dated.filter(study_date__range=(dated_root.date_from, dated_root.date_to))
    return {
        "studies": seen.count(),
        "dated": dated.count() if dated_root is not None else None,
        "undated": seen.filter(study_date__isnull=True).count(),
        "found_by": dict(seen.values_list("found_by").annotate(n=Count("id")).order_by()),
    }


def found_by(run):
    """[(partition label, studies it listed first, [study ids and UIDs] when few)] of a
    finished crawl: which tree or partition found which studies."""
    from inventory.crawler import PARTITIONS
    from inventory.models import CrawlRange

    names = dict(CrawlRange.Kind.choices)
    counts = (run.proof or {}).get("found_by") or {}
    rows = []
    for kind, n in sorted(counts.items(), key=lambda item: list(names).index(item[0])
                          if item[0] in names else 99):  # fmt: skip
        listed = []
        if kind in PARTITIONS:
            listed = list(
                Study.objects.filter(seen_run=run, found_by=kind).values_list("pk", "study_uid")[
                    :200
                ]
            )
        rows.append({"kind": kind, "label": names.get(kind, kind), "studies": n, "listed": listed})
    return rows


def unreadable_reasons(witness):
    """{reason: files}: what a page may show of the unreadable files (their paths may
    name patients on some PACS)."""
    return dict(Counter(u["reason"] for u in (witness.unreadable if witness else [])))


def witness_joined(source):
    """Studies in the inventory only because a witness found them, by witness kind."""
    rows = Study.objects.filter(source=source, vanished=False, found_by__in=("scan", "listing"))
    return dict(rows.values_list("found_by").annotate(n=Count("id")).order_by())


def comparison(source):
    """What the compare page shows: the last witness, its comparison, and where the studies
    only the witness holds now stand in the inventory."""
    witness = source.witnesses.first()
    result = (witness.comparison if witness else None) or {}
    only = result.get("only_in_witness", [])
    kinds = dict(
        Study.objects.filter(source=source, study_uid__in=only).values_list("study_uid", "found_by")
    )
    run = CrawlRun.objects.filter(pk=result.get("crawl")).first() if result else None
    return {
        "unreadable": unreadable_reasons(witness),
        "source": source,
        "witness": witness,
        "result": result,
        "run": run,
        "only_in_witness": only,
        "only_in_crawl": result.get("only_in_crawl", []),
        "kinds": kinds,
        "ids": dict(
            Study.objects.filter(source=source, study_uid__in=only).values_list("study_uid", "pk")
        ),
    }
