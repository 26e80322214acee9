"""Inventory pages: thin views over `inventory.actions` (changes) and `inventory.reports`."""

from datetime import date

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core import charts
from core.access import has_rule, require
from core.audit import record_phi_access
from core.scrub import csv_download
from inventory import actions, reports
from inventory.catalogue import KINDS, CsvImportError, entries, export_csv, import_csv
from inventory.forms import CrawlForm, CsvImportForm, PacsSourceForm, StudyFilterForm
from inventory.models import CrawlRun, PacsSource, Study

PHI_COLUMNS = ("patient_id", "patient_name", "accession_number")


# -- dashboard -----------------------------------------------------------------------------


@require("view_inventory")
def index(request):
    source = _chosen_source(request)
    horizon = _int(request.GET.get("horizon"), 12, 1, 120)
    return render(request, "inventory/index.html", _dashboard(source, horizon))


def _chosen_source(request):
    pk = request.GET.get("source")
    return PacsSource.objects.filter(pk=pk).first() if pk and pk.isdigit() else None


def _int(value, default, low, high):
    try:
        return min(high, max(low, int(value)))
    except (TypeError, ValueError):
        return default


def _dashboard(source, horizon):
    modality_rows = reports.by_modality(source)
    years, stacks = reports.by_year(source)
    growth = reports.growth(source, horizon=horizon)
    return {
        "source": source,
        "sources": PacsSource.objects.all(),
        "horizon": horizon,
        "totals": reports.totals(source),
        "modality_rows": modality_rows,
        "modality_chart": charts.hbars(
            [(r["modality"], {"studies": r["studies"]}) for r in modality_rows[:12]],
            [("studies", "studies", None)],
            title="Studies by modality",
            label_width=90,
        ),
        "year_chart": charts.stacked_bars(
            [str(y) for y in years],
            stacks,
            title="Studies by year and modality",
            width=560,
            height=240,
            legend_below=True,
            kind="columns",
        ),
        "growth": growth,
        "growth_chart": charts.growth_line(
            growth["actual"][-120:],
            growth["projection"],
            title=f"Archive growth and {horizon}-month projection",
        ),
        "formats": reports.formats(source),
        "largest": reports.largest(source),
        "problem_counts": reports.problem_counts(source),
        "problem_studies": reports.problem_studies(source),
        "crawl_problems": reports.crawl_problems(source),
        "runs": CrawlRun.objects.select_related("source")[:8],
    }


# -- sources -----------------------------------------------------------------------------


@require("view_inventory")
def sources(request):
    form = PacsSourceForm()
    if request.method == "POST":
        if not has_rule(request.user, "operate_inventory"):
            raise_forbidden()
        form = PacsSourceForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            source, _ = actions.register_source(
                data.pop("name"), data.pop("ae_title"), data.pop("host"), data.pop("port"), **data
            )
            messages.success(request, f"PACS source {source.name} saved.")
            return redirect("inventory:source", source.pk)
    rows = PacsSource.objects.all()
    return render(request, "inventory/sources.html", {"sources": rows, "form": form})


def raise_forbidden():
    raise PermissionDenied("This needs the 'operate_inventory' permission.")


@require("view_inventory")
def source_detail(request, pk):
    source = get_object_or_404(PacsSource, pk=pk)
    form = PacsSourceForm(instance=source)
    if request.method == "POST":
        if not has_rule(request.user, "operate_inventory"):
            raise_forbidden()
        form = PacsSourceForm(request.POST, instance=source)
        if form.is_valid():
            actions.update_source(source, **form.cleaned_data)
            messages.success(request, f"PACS source {source.name} updated.")
            return redirect("inventory:source", source.pk)
    context = {
        "source": source,
        "form": form,
        "crawl_form": CrawlForm(),
        "runs": source.crawls.all()[:20],
        "totals": reports.totals(source),
    }
    return render(request, "inventory/source_detail.html", context)


@require("operate_inventory")
@require_POST
def source_echo(request, pk):
    source = get_object_or_404(PacsSource, pk=pk)
    result = actions.echo_source(source)
    return render(request, "inventory/_echo_result.html", {"source": source, "result": result})


@require("operate_inventory")
@require_POST
def source_delete(request, pk):
    source = get_object_or_404(PacsSource, pk=pk)
    try:
        actions.delete_source(source)
    except actions.SourceInUseError as exc:
        messages.error(request, f"PACS source {source.name} not deleted: {exc}.")
        return redirect("inventory:source", source.pk)
    messages.success(request, f"PACS source {source.name} deleted.")
    return redirect("inventory:sources")


# -- crawls --------------------------------------------------------------------------------


@require("operate_inventory")
@require_POST
def crawl_start(request, pk):
    source = get_object_or_404(PacsSource, pk=pk)
    form = CrawlForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The crawl was not started: " + _form_errors(form))
        return redirect("inventory:source", source.pk)
    try:
        run = actions.start_crawl(
            source,
            since=form.cleaned_data["since"],
            with_series=form.cleaned_data["with_series"],
            user=request.user,
        )
    except actions.CrawlError as exc:
        messages.error(request, str(exc))
        return redirect("inventory:source", source.pk)
    return redirect("inventory:crawl", run.pk)


def _form_errors(form):
    return "; ".join(f"{f}: {' '.join(e)}" for f, e in form.errors.items())


@require("view_inventory")
def crawl_detail(request, pk):
    run = get_object_or_404(CrawlRun.objects.select_related("source"), pk=pk)
    proof = reports.crawl_proof(run)
    context = {
        "run": run,
        "stats": actions.progress_stats(run),
        "proof": proof,
        "coverage": charts.split_bar(_segments(proof), title="Ranges by state"),
        "problems": run.problem_set.all()[:50],
        "partitions": reports.found_by(run),
        "witnessed": reports.witness_joined(run.source),
    }
    return render(request, "inventory/crawl.html", context)


def _segments(proof):
    by_status = {}
    for row in proof["table"]:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["nodes"]
    return [
        ("leaves (under the cap)", by_status.get("leaf", 0), "leaf"),
        ("split (capped)", by_status.get("split", 0), "split"),
        ("to do", by_status.get("pending", 0), "pending"),
        ("still capped", by_status.get("unresolved", 0), "unresolved"),
        ("failed", by_status.get("failed", 0), "failed"),
    ]


@require("operate_inventory")
@require_POST
def crawl_cancel(request, pk):
    run = get_object_or_404(CrawlRun, pk=pk)
    try:
        actions.cancel_crawl(run)
        messages.success(request, f"Crawl {run.pk} is stopping.")
    except actions.CrawlError as exc:
        messages.error(request, str(exc))
    return redirect("inventory:crawl", run.pk)


@require("view_inventory")
def crawl_ranges_csv(request, pk):
    run = get_object_or_404(CrawlRun, pk=pk)
    header = ["id", "parent", "tree", "level", "range", "study_date", "study_time", "modality"]
    header += ["status", "responses", "distinct_studies", "capped", "note"]
    rows = (
        [
            r.pk,
            r.parent_id or "",
            r.kind,
            r.level,
            r.label,
            _range_key(r.date_from, r.date_to),
            f"{r.time_from}-{r.time_to}" if r.time_from else "",
            r.modality,
            r.status,
            "" if r.count is None else r.count,
            "" if r.unique_count is None else r.unique_count,
            r.capped,
            r.note,
        ]
        for r in run.ranges.order_by("pk").iterator(chunk_size=2000)
    )
    return csv_download(f"crawl-{run.pk}-ranges.csv", header, rows)


def _range_key(start, end):
    if start is None:
        return ""
    return f"{start:%Y%m%d}" if start == end else f"{start:%Y%m%d}-{end:%Y%m%d}"


# -- second witnesses ------------------------------------------------------------------------


@require("view_inventory")
def compare(request, pk):
    source = get_object_or_404(PacsSource, pk=pk)
    if request.method == "POST":
        if not has_rule(request.user, "operate_inventory"):
            raise_forbidden()
        try:
            actions.compare_witness(source)
        except actions.CrawlError as exc:
            messages.error(request, str(exc))
        return redirect("inventory:compare", source.pk)
    return render(request, "inventory/compare.html", reports.comparison(source))


@require("view_inventory")
def compare_csv(request, pk):
    source = get_object_or_404(PacsSource, pk=pk)
    found = reports.comparison(source)
    rows = [[uid, "witness only", found["kinds"].get(uid, "")] for uid in found["only_in_witness"]]
    rows += [[uid, "crawl only", ""] for uid in found["only_in_crawl"]]
    header = ["study_instance_uid", "where", "in the inventory as found by"]
    return csv_download(f"{source.name}-compare.csv", header, rows)


# -- studies -------------------------------------------------------------------------------


@require("view_inventory")
def studies(request):
    """The study ledger, filtered, newest first, 50 a page by keyset. Patient IDs and
    accession numbers are searched by POST so that they never appear in URLs."""
    can_phi = has_rule(request.user, "view_phi")
    data = request.POST if request.method == "POST" and can_phi else request.GET
    form = StudyFilterForm(data or None)
    filters = form.cleaned_data if form.is_valid() else {}
    if not can_phi or request.method != "POST":
        filters = {k: v for k, v in filters.items() if k not in ("patient_id", "accession")}
    before = _int(request.GET.get("before"), None, 1, 2**62)
    page, next_before = reports.study_page(filters, before)
    if can_phi and page:
        record_phi_access(request, "inventory.study", "list", count=len(page))
    context = {
        "form": form,
        "studies": page,
        "next_before": next_before,
        "can_phi": can_phi,
        "query": _query_without(request.GET, "before"),
    }
    return render(request, "inventory/studies.html", context)


def _query_without(params, key):
    copy = params.copy()
    copy.pop(key, None)
    return copy.urlencode()


@require("view_inventory")
def study_detail(request, pk):
    study = get_object_or_404(Study.objects.select_related("source"), pk=pk)
    can_phi = has_rule(request.user, "view_phi")
    if can_phi:
        record_phi_access(request, "inventory.study", study.pk)
    context = {"study": study, "series": study.series.order_by("series_number"), "can_phi": can_phi}
    return render(request, "inventory/study_detail.html", context)


@require("view_inventory")
def studies_csv(request):
    """The whole ledger (or the filtered part) as CSV, streamed."""
    can_phi = has_rule(request.user, "view_phi")
    form = StudyFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    filters = {k: v for k, v in filters.items() if k not in ("patient_id", "accession")}
    rows = reports.filter_studies(Study.objects.select_related("source"), filters).order_by("pk")
    columns = ["source", "study_uid", "study_date", "study_time", "modalities", "description"]
    columns += ["num_series", "num_instances", "charset", "problems", "vanished"]
    columns += ["first_seen", "last_seen"]
    if can_phi:
        columns += list(PHI_COLUMNS)
        record_phi_access(request, "inventory.study", "csv", count=rows.count())
    lines = (_study_row(study, columns) for study in rows.iterator(chunk_size=2000))
    return csv_download(f"inventory-studies-{date.today():%Y%m%d}.csv", columns, lines)


def _study_row(study, columns):
    values = []
    for column in columns:
        if column == "source":
            values.append(study.source.name)
        elif column == "problems":
            values.append(";".join(p.get("code", "") for p in study.problems or []))
        else:
            value = getattr(study, column)
            values.append("" if value is None else value)
    return values


@require("view_inventory")
def summary_csv(request):
    source = _chosen_source(request)
    rows = list(_summary_rows(source))
    return csv_download(f"inventory-summary-{date.today():%Y%m%d}.csv", rows[0], rows[1:])


def _summary_rows(source):
    yield ["section", "item", "studies", "instances", "value"]
    for key, value in reports.totals(source).items():
        yield ["totals", key, "", "", value]
    for row in reports.by_modality(source):
        yield ["modality", row["modality"], row["studies"], row["instances"], ""]
    years, stacks = reports.by_year(source)
    for index, year in enumerate(years):
        yield ["year", year, sum(v[index] for v in stacks.values()), "", ""]
    fmts = reports.formats(source)
    for row in fmts["sop_classes"]:
        yield ["sop_class", row["uid"], "", row["instances"], row["name"]]
    for row in fmts["transfer_syntaxes"]:
        yield ["transfer_syntax", row["uid"], "", "", row["name"]]
    for row in fmts["charsets"]:
        yield ["charset", row["charset"], row["studies"], "", ""]
    for code, count in reports.problem_counts(source).items():
        yield ["problem", code, count, "", ""]


# -- the environment catalogue ---------------------------------------------------------------


def _kind(slug):
    if slug not in KINDS:
        raise Http404("no such catalogue")
    return KINDS[slug]


@require("view_inventory")
def catalogue(request):
    kinds = [(kind, kind.model.objects.count()) for kind in KINDS.values()]
    return render(request, "inventory/catalogue.html", {"kinds": kinds})


@require("view_inventory")
def catalogue_list(request, kind):
    kind = _kind(kind)
    form = kind.form()
    if request.method == "POST":
        if not has_rule(request.user, "operate_inventory"):
            raise_forbidden()
        form = kind.form(request.POST)
        if form.is_valid():
            obj = form.save()
            messages.success(request, f"{obj} added to {kind.title.lower()}.")
            return redirect("inventory:catalogue_list", kind.slug)
    context = {
        "kind": kind,
        "rows": list(entries(kind, 1000)),
        "form": form,
        "import_form": CsvImportForm(),
    }
    return render(request, "inventory/catalogue_list.html", context)


@require("view_inventory")
def catalogue_edit(request, kind, pk):
    kind = _kind(kind)
    obj = get_object_or_404(kind.model, pk=pk)
    form = kind.form(instance=obj)
    if request.method == "POST":
        if not has_rule(request.user, "operate_inventory"):
            raise_forbidden()
        form = kind.form(request.POST, instance=obj)
        if form.is_valid():
            form.save()
            messages.success(request, f"{obj} saved.")
            return redirect("inventory:catalogue_list", kind.slug)
    context = {"kind": kind, "obj": obj, "form": form}
    return render(request, "inventory/catalogue_edit.html", context)


@require("operate_inventory")
@require_POST
def catalogue_delete(request, kind, pk):
    kind = _kind(kind)
    obj = get_object_or_404(kind.model, pk=pk)
    try:
        obj.delete()
        messages.success(request, f"{obj} deleted.")
    except Exception as exc:  # PROTECTed by a cutover plan, for instance
        messages.error(request, f"{obj} cannot be deleted: {exc.__class__.__name__}")
    return redirect("inventory:catalogue_list", kind.slug)


@require("view_inventory")
def catalogue_export(request, kind):
    kind = _kind(kind)
    response = HttpResponse(export_csv(kind), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{kind.slug}.csv"'
    return response


@require("operate_inventory")
@require_POST
def catalogue_import(request, kind):
    kind = _kind(kind)
    form = CsvImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV file to import.")
        return redirect("inventory:catalogue_list", kind.slug)
    try:
        text = form.cleaned_data["file"].read().decode("utf-8")
        created, updated = import_csv(kind, text)
    except UnicodeDecodeError:
        messages.error(request, "Nothing imported: the file is not UTF-8 text.")
    except (CsvImportError, ValidationError) as exc:
        errors = getattr(exc, "errors", [(0, str(exc))])
        return render(
            request,
            "inventory/catalogue_list.html",
            {
                "kind": kind,
                "rows": list(entries(kind, 1000)),
                "form": kind.form(),
                "import_form": form,
                "import_errors": errors,
            },
            status=400,
        )
    else:
        messages.success(request, f"Imported: {created} added, {updated} updated.")
    return redirect("inventory:catalogue_list", kind.slug)
