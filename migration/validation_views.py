"""Validation pages: the wave's validated state and runs, the reconciliation report (page,
CSV, print), the side-by-side render review and the discrepancy queue. Thin views over
discrepancies.py (the validation actions), reports.py, reviews.py and render.py."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import escape
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from core import scrub
from core.access import RULES, has_rule, require
from core.audit import phi_response, record_phi_access
from inventory.models import PacsSource
from migration import discrepancies, readback, reports, reviews, validation
from migration import render as thumbnails
from migration.actions import ActionError
from migration.models import Discrepancy, ValidationRun, Wave, WaveState, WaveStudy

RUN_KINDS = (ValidationRun.Kind.RECONCILE, ValidationRun.Kind.SPOTCHECK)
VERDICT_FILTERS = (("", "all"), ("problems", "not complete"), ("complete", "complete"))


def _wave(name):
    return get_object_or_404(Wave.objects.select_related("source", "destination"), name=name)


def _latest_run(wave):
    return wave.validation_runs.exclude(kind=ValidationRun.Kind.AVAILABILITY).first()


def _state_context(wave):
    run = _latest_run(wave)
    if run is not None:
        run.percent = _percent(run)
    return {
        "wave": wave,
        "v": discrepancies.wave_validation(wave),
        "run": run,
        "open_counts": reports.open_counts(wave),
        "sampled": _with_reviews(reports.sampled_rows(wave)),
    }


def _percent(run):
    if not run.progress_total:
        return 100 if run.state == ValidationRun.State.DONE else 0
    return round(100 * run.progress_done / run.progress_total)


@require("view_migration")
def overview(request):
    """Every PACS source with its waves' validated state: the cutover gate at a glance."""
    waves = Wave.objects.exclude(state__in=[WaveState.DRAFT, WaveState.CANCELLED])
    sources = []
    for source in PacsSource.objects.filter(pk__in=waves.values("source")).order_by("name"):
        rows = [
            {"wave": w, "v": discrepancies.wave_validation(w)} for w in waves.filter(source=source)
        ]
        sources.append({"source": source, "waves": rows})
    return render(request, "migration/validation/overview.html", {"sources": sources})


@require("view_migration")
def wave_page(request, name):
    wave = _wave(name)
    context = _state_context(wave)
    context.update(
        default_sample=validation.default_sample_size(wave),
        can_run=wave.state not in (WaveState.DRAFT, WaveState.CANCELLED),
    )
    return render(request, "migration/validation/wave.html", context)


def _with_reviews(rows):
    latest = reviews.latest_reviews(row.pk for row in rows)
    for row in rows:
        signed = latest.get(row.pk, {}).values()
        row.reviewed = len(signed)
        row.problems = sum(review.verdict == "problem" for review in signed)
    return rows


@require("view_migration")
def wave_state(request, name):
    """The state card and the run's progress, for the live refresh of the wave page."""
    return render(request, "migration/validation/_state.html", _state_context(_wave(name)))


@require("validate_migration")
@require_POST
def run_start(request, name, kind):
    wave = _wave(name)
    sample = _positive_int(request.POST.get("sample"))
    seed = _positive_int(request.POST.get("seed"), allow_zero=True)
    error = ""
    try:
        if kind not in RUN_KINDS:
            raise ActionError(f"unknown validation {kind!r}")
        run = discrepancies.start_run(wave, kind, request.user, sample=sample, seed=seed)
    except ActionError as exc:
        error = str(exc)
    if request.htmx:
        context = {**_state_context(wave), "error": error}
        return render(request, "migration/validation/_state.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{run.get_kind_display()} {run.pk} queued.")
    return redirect("migration:validation", name=wave.name)


def _positive_int(value, allow_zero=False):
    value = (value or "").strip()
    if not value.isdigit() or (int(value) == 0 and not allow_zero):
        return None
    return int(value)


# --- the reconciliation report --------------------------------------------------------------


@require("view_migration")
def report(request, name, printable=False):
    """The wave's reconciliation report; `?format=csv` downloads it, `?verdict=` filters,
    the printable form (no navigation) is for the steering committee."""
    wave = _wave(name)
    run_id = request.GET.get("run", "")
    data = reports.wave_report(wave, int(run_id) if run_id.isdigit() else None)
    verdict = request.GET.get("verdict", "")
    if request.GET.get("format") == "csv":
        rows = reports.report_rows(data["run"], verdict)
        return reports.csv_download(rows, f"reconciliation-{wave.name}.csv")
    context = {**data, "verdict": verdict, "verdicts": VERDICT_FILTERS}
    if printable:
        context["rows"] = list(reports.report_rows(data["run"], verdict))
        return render(request, "migration/validation/report_print.html", context)
    context.update(_page_of(data, verdict, request.GET))
    return render(request, "migration/validation/report.html", context)


REPORT_PAGE_ROWS = 200


def _page_of(data, verdict, query):
    """The screen shows REPORT_PAGE_ROWS studies at a time, continuing after a ledger id
    (a wave may hold millions); `at` only numbers them. The CSV and the printable report
    keep every row."""
    after, at = _positive_int(query.get("after", "")), _positive_int(query.get("at", ""), True)
    found = reports.report_rows(data["run"], verdict, after, REPORT_PAGE_ROWS + 1)
    rows = list(found)
    more = len(rows) > REPORT_PAGE_ROWS
    rows = rows[:REPORT_PAGE_ROWS]
    at = at or 0
    return {
        "rows": rows,
        "rows_total": reports.rows_total(data["totals"], verdict),
        "rows_from": at + 1,
        "rows_to": at + len(rows),
        "next_after": rows[-1]["ledger_id"] if more else None,
    }


@require("view_migration")
def source_report(request, source, printable=False):
    """The reconciliation of every wave of one PACS source, added up."""
    source = get_object_or_404(PacsSource, name=source)
    data = reports.source_report(source)
    if request.GET.get("format") == "csv":
        return reports.csv_download(data["rows"], f"reconciliation-{source.name}.csv")
    template = "source_print.html" if printable else "source_report.html"
    return render(request, f"migration/validation/{template}", data)


# --- render review --------------------------------------------------------------------------


def _ledger_row(name, ledger_id):
    return get_object_or_404(
        WaveStudy.objects.select_related("wave__source", "wave__destination", "study"),
        pk=ledger_id,
        wave__name=name,
    )


@require("view_migration")
def review_open(request, name):
    """Open any study of the wave for review, by ledger id or Study Instance UID."""
    wave = _wave(name)
    wanted = request.GET.get("study", "").strip()
    match = Q(study__study_uid=wanted) | (Q(pk=int(wanted)) if wanted.isdigit() else Q())
    row = wave.ledger.filter(match).first() if wanted else None
    if row is None:
        messages.error(request, "No study of this wave has that ledger id or Study UID.")
        return redirect("migration:validation", name=wave.name)
    return redirect("migration:review", name=wave.name, ledger_id=row.pk)


@require("view_migration")
def review(request, name, ledger_id):
    """Source and destination thumbnails of one instance side by side, to sign."""
    row = _ledger_row(name, ledger_id)
    instances = _instances(row)
    chosen = request.GET.get("sop") or (instances[0].sop_uid if instances else "")
    current = next((item for item in instances if item.sop_uid == chosen), None)
    show_phi = has_rule(request.user, "view_phi")
    if show_phi:
        record_phi_access(request, "migration.render_review", row.study_id)
    context = {
        "wave": row.wave,
        "row": row,
        "instances": instances,
        "current": current,
        "frame": _positive_int(request.GET.get("frame"), allow_zero=True) or 0,
        "signed": row.reviews.select_related("reviewer")[:50],
        "show_phi": show_phi,
    }
    return render(request, "migration/validation/review.html", context)


def _instances(row):
    """The study's stored instances, each with its latest signed review (or None)."""
    instances = sorted(readback.stored_instances(row).values(), key=lambda item: item.key)
    latest = reviews.latest_reviews([row.pk]).get(row.pk, {})
    for item in instances:
        item.latest = latest.get(item.sop_uid)
    return instances


@require("view_migration", "view_phi")
def thumbnail(request, name, ledger_id, sop, side):
    """One side's thumbnail as PNG (pixel data only); an SVG saying why when it fails."""
    row = _ledger_row(name, ledger_id)
    frame = _positive_int(request.GET.get("frame"), allow_zero=True) or 0
    try:
        png = thumbnails.render_side(row, sop, side, frame=frame)
    except thumbnails.RenderError as exc:
        svg = _error_svg(scrub.scrub_text(exc))
        response = HttpResponse(svg, content_type="image/svg+xml", status=422)
    else:
        response = HttpResponse(png, content_type="image/png")
    return phi_response(request, response, "migration.thumbnail", f"{ledger_id}/{sop}/{side}")


def _error_svg(message):
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="64" role="img">'
        '<rect width="256" height="64" fill="#f4d3d0"/>'
        '<text x="8" y="24" font-size="12" fill="#b3261e">Cannot render</text>'
        f'<text x="8" y="44" font-size="9"><title>{escape(message)}</title>'
        f"{escape(message[:60])}</text></svg>"
    )


@require("review_renders")
@require_POST
def review_sign(request, name, ledger_id):
    row = _ledger_row(name, ledger_id)
    sop = request.POST.get("sop", "")
    signed, error = None, ""
    try:
        signed = reviews.sign_review(
            row, sop, request.POST.get("verdict", ""), request.user, request.POST.get("note", "")
        )
    except ActionError as exc:
        error = str(exc)
    if request.htmx:
        current = readback.stored_instances(row).get(sop)
        context = {"wave": row.wave, "row": row, "current": current}
        context.update(review=signed, error=error)
        return render(request, "migration/validation/_sign.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Signed: {signed.get_verdict_display()}.")
    url = reverse("migration:review", args=[row.wave.name, row.pk])
    return redirect(f"{url}?{urlencode({'sop': sop})}")


# --- the discrepancy queue ------------------------------------------------------------------


@require("view_migration")
def queue(request, name=None):
    """Discrepancies of one wave (or all), filtered by status and kind; live."""
    wave = _wave(name) if name else None
    status = request.GET.get("status", "active")
    kind = request.GET.get("kind", "")
    rows = _queue_rows(wave, status, kind)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    context = {
        "wave": wave,
        "page": page,
        "status": status,
        "kind": kind,
        "statuses": [("active", "Open or re-migrating"), *Discrepancy.Status.choices, ("", "All")],
        "kinds": Discrepancy.Kind.choices,
        "owners": _owners(),
    }
    template = "_queue.html" if request.htmx else "queue.html"
    return render(request, f"migration/validation/{template}", context)


def _queue_rows(wave, status, kind):
    """Discrepancies, newest first; status "active" means open or re-migrating."""
    rows = Discrepancy.objects.select_related("wave", "owner", "resolved_by", "ledger")
    if wave is not None:
        rows = rows.filter(wave=wave)
    if status == "active":
        rows = rows.filter(status__in=Discrepancy.OPEN_STATES)
    elif status in Discrepancy.Status.values:
        rows = rows.filter(status=status)
    if kind in Discrepancy.Kind.values:
        rows = rows.filter(kind=kind)
    return rows.order_by("-created_at", "-pk")


def _owners():
    """The people who may work on discrepancies (the owner choices)."""
    holders = Q(is_superuser=True) | Q(groups__name__in=RULES["validate_migration"])
    return get_user_model().objects.filter(holders, is_active=True).distinct().order_by("username")


@require("validate_migration")
@require_POST
def discrepancy_action(request, pk, verb):
    found = get_object_or_404(Discrepancy.objects.select_related("wave", "ledger"), pk=pk)
    try:
        _apply(found, verb, request)
    except ActionError as exc:
        error = str(exc)
    else:
        error = ""
    found.refresh_from_db()
    if request.htmx:
        context = {"d": found, "error": error, "owners": _owners()}
        return render(request, "migration/validation/_row.html", context)
    (messages.error if error else messages.success)(request, error or f"Discrepancy {pk}: done.")
    return redirect("migration:wave_discrepancies", name=found.wave.name)


def _apply(found, verb, request):
    if verb == "assign":
        owner_id = request.POST.get("owner", "")
        owner = get_user_model().objects.filter(pk=owner_id).first() if owner_id else None
        discrepancies.assign(found, request.user, owner)
    elif verb == "accept":
        discrepancies.accept(found, request.user, request.POST.get("reason", ""))
    elif verb == "remigrate":
        discrepancies.remigrate(found, request.user)
    else:
        raise ActionError(f"unknown action {verb!r}")


V = "waves/<slug:name>/validation"
STUDY = f"{V}/studies/<int:ledger_id>"
urlpatterns = [
    path("validation/", overview, name="validation_overview"),
    path("validation/discrepancies/", queue, name="discrepancies"),
    path(
        "validation/discrepancies/<int:pk>/<slug:verb>/",
        discrepancy_action,
        name="discrepancy_action",
    ),
    path("validation/sources/<slug:source>/", source_report, name="source_report"),
    path(
        "validation/sources/<slug:source>/print/",
        source_report,
        {"printable": True},
        name="source_report_print",
    ),
    path(f"{V}/", wave_page, name="validation"),
    path(f"{V}/state/", wave_state, name="validation_state"),
    path(f"{V}/run/<slug:kind>/", run_start, name="validation_run"),
    path(f"{V}/report/", report, name="validation_report"),
    path(f"{V}/report/print/", report, {"printable": True}, name="validation_report_print"),
    path(f"{V}/open/", review_open, name="review_open"),
    path(f"{STUDY}/", review, name="review"),
    path(f"{STUDY}/sign/", review_sign, name="review_sign"),
    path(f"{STUDY}/<str:sop>/<slug:side>.png", thumbnail, name="thumbnail"),
    path("waves/<slug:name>/discrepancies/", queue, name="wave_discrepancies"),
]
