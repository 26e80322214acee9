"""Migration pages: thin views over actions, measures and the engine's modules."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.access import require
from core.audit import record_phi_access
from inventory.models import Study
from migration import actions, charts, dicom, mapping, measures, throttle, validation
from migration.forms import (
    ConflictDecisionForm,
    DestinationForm,
    LookupTableForm,
    ProfileForm,
    WaveForm,
)
from migration.models import (
    Conflict,
    Destination,
    EngineControl,
    KeptAside,
    LookupTable,
    MappingProfile,
    StudyState,
    Wave,
)

WAVE_VERBS = ("start", "pause", "resume", "cancel", "retry")


@require("view_migration")
def index(request):
    """All waves with live progress bars, the engine's pause switch, open conflicts."""
    waves = Wave.objects.select_related("source", "destination").order_by("-priority", "name")
    cards = [{"wave": wave, "progress": measures.wave_progress([wave.pk])} for wave in waves]
    for card in cards:
        total = card["progress"]["total"]
        finished = card["progress"]["done"] + card["progress"]["quarantined"]
        card["percent"] = round(100 * finished / total) if total else 0
    context = {
        "cards": cards,
        "overall": measures.wave_progress(),
        "control": EngineControl.get(),
        "open_conflicts": Conflict.objects.filter(decision="").count(),
        **_kept_aside(KeptAside.objects.filter(wave__isnull=True)),
    }
    return render(request, "migration/index.html", context)


@require("view_migration")
def wave_detail(request, name):
    wave = get_object_or_404(
        Wave.objects.select_related("source", "destination", "profile"), name=name
    )
    context = actions.progress_context(wave)
    context.update(
        schedule_chart=charts.schedule_heatmap(wave.schedule, wave.source.max_associations),
        schedule_text=throttle.format_schedule(wave.schedule),
        verbs=_verbs(wave),
        open_conflicts=Conflict.objects.filter(ledger__wave=wave, decision="").count(),
        **_transcoded(wave),
        **_kept_aside(KeptAside.objects.filter(wave=wave)),
    )
    return render(request, "migration/wave_detail.html", context)


def _kept_aside(rows, shown=20):
    """Instances a Storage SCP kept aside (newest first; UIDs and reasons, no PHI)."""
    first = list(rows.order_by("-received_at", "-pk")[:shown])
    return {"kept_aside": first, "kept_aside_count": rows.count() if first else 0}


def _transcoded(wave, shown=20):
    """The instances the PACS sent in another syntax than it reported (UIDs, no PHI)."""
    rows = validation.transcoded_instances(wave).select_related("ledger__study")
    first = [
        {"study": r.ledger.study.study_uid, "sop": r.sop_uid,
         "detail": validation.transcoded_detail(r.reported_syntax, r.transfer_syntax)}
        for r in rows.order_by("pk")[:shown]
    ]  # fmt: skip
    return {"transcoded": first, "transcoded_count": rows.count() if first else 0}


def _verbs(wave):
    allowed = {
        "draft": ["start", "cancel"],
        "running": ["pause", "cancel"],
        "paused": ["resume", "cancel"],
        "done": ["start"],
        "cancelled": [],
    }[wave.state]
    if wave.ledger.filter(state=StudyState.QUARANTINED).exists():
        allowed.append("retry")
    return allowed


@require("operate_migration")
@require_POST
def wave_action(request, name, verb):
    wave = get_object_or_404(Wave, name=name)
    try:
        if verb == "retry":
            count = actions.retry_quarantined(wave)
            messages.success(request, f"{count} quarantined stud(ies) queued again.")
        elif verb in WAVE_VERBS:
            actions.change_wave(wave, verb, request.user)
            messages.success(request, f"Wave {wave.name}: {verb} done.")
    except actions.ActionError as exc:
        messages.error(request, str(exc))
    return redirect("migration:wave", name=wave.name)


@require("operate_migration")
def wave_new(request):
    form = WaveForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            wave, info = actions.create_wave(user=request.user, **form.wave_fields())
        except actions.ActionError as exc:
            form.add_error(None, str(exc))
        else:
            note = (
                f" {info['unmatched']} listed value(s) match no study." if info["unmatched"] else ""
            )
            messages.success(
                request, f"Wave {wave.name} created with {info['studies']} studies.{note}"
            )
            return redirect("migration:wave", name=wave.name)
    return render(request, "migration/wave_form.html", {"form": form})


WAVE_PAGE_ROWS = 50


def _ledger_after(wave, state, after):
    """The wave's ledger rows (of `state`, when one) after ledger id `after`, in order.

    The keyset is a row value matching the (wave, [state,] id) index: with `id > after`
    alone the planner walks the primary key and filters out every other wave's rows
    (2.2 s for the last of ten waves at 10^7 ledger rows; 4 ms this way)."""
    rows = wave.ledger.select_related("study")
    keys = {"wave_id": wave.pk}
    if state in StudyState.values:
        rows, keys = rows.filter(state=state), {**keys, "state": state}
    keys["id"] = after
    columns = ", ".join(f"migration_wavestudy.{column}" for column in keys)
    marks = ", ".join(["%s"] * len(keys))
    after_key = RawSQL(f"({columns}) > ({marks})", tuple(keys.values()), BooleanField())
    return rows.filter(after_key).order_by(*keys)


@require("view_migration")
def wave_studies(request, name):
    """The wave's ledger, filtered by state, in ledger order, WAVE_PAGE_ROWS a page by
    keyset (`after=` the last ledger id shown: a deep page costs what the first does);
    UIDs and ledger ids only (no PHI). Counts come from the ledger's tallies."""
    wave = get_object_or_404(Wave, name=name)
    state = request.GET.get("state", "")
    after = request.GET.get("after", "")
    after = int(after) if after.isdigit() else 0
    page = list(_ledger_after(wave, state, after)[: WAVE_PAGE_ROWS + 1])
    tallies = measures.tallies([wave.pk]).items()
    counts = {key: sums["studies"] for key, sums in tallies if sums["studies"]}
    context = {
        "wave": wave,
        "page": page[:WAVE_PAGE_ROWS],
        "next_after": page[WAVE_PAGE_ROWS - 1].pk if len(page) > WAVE_PAGE_ROWS else None,
        "after": after,
        "total": counts.get(state, 0) if state in StudyState.values else sum(counts.values()),
        "state": state,
        "states": StudyState.choices,
        "counts": counts,
    }
    return render(request, "migration/wave_studies.html", context)


@require("view_migration")
def destinations(request):
    form = DestinationForm()
    return render(request, "migration/destinations.html", _destinations_context(form))


def _destinations_context(form):
    return {"destinations": Destination.objects.all(), "form": form}


@require("operate_migration")
@require_POST
def destination_new(request):
    form = DestinationForm(request.POST)
    if form.is_valid():
        try:
            destination = actions.add_destination(**form.cleaned_data)
        except actions.ActionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Destination {destination.name} added. Check it next.")
            return redirect("migration:destinations")
    return render(request, "migration/destinations.html", _destinations_context(form), status=400)


@require("operate_migration")
@require_POST
def destination_check(request, name):
    destination = get_object_or_404(Destination, name=name)
    actions.queue_destination_check(destination)
    if request.htmx:
        return render(request, "migration/_check_result.html", {"d": destination, "queued": True})
    messages.info(request, f"{name}: check queued; the result appears here when it is done.")
    return redirect("migration:destinations")


@require("view_migration")
def profiles(request):
    context = {"profiles": MappingProfile.objects.all(), "tables": LookupTable.objects.all()}
    return render(request, "migration/profiles.html", context)


@require("operate_migration")
def profile_edit(request, name=None):
    profile = get_object_or_404(MappingProfile, name=name) if name else None
    form = ProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        saved = actions.save_profile(
            name=form.cleaned_data["name"],
            rules=form.cleaned_data["rules"],
            description=form.cleaned_data["description"],
            profile=profile,
        )
        messages.success(request, f"Profile {saved.name} saved.")
        return redirect("migration:profiles")
    return render(
        request,
        "migration/profile_form.html",
        {"form": form, "profile": profile, "ops": mapping.RULES},
    )


@require("preview_mapping")
def profile_preview(request, name):
    """One real instance from the PACS, before and after the profile, tag by tag (PHI)."""
    profile = get_object_or_404(MappingProfile, name=name)
    study = None
    rows, error = [], ""
    study_id = request.GET.get("study", "")
    if study_id.isdigit():
        study = get_object_or_404(Study.objects.select_related("source"), pk=study_id)
        try:
            data = dicom.fetch_one(dicom.Pacs.from_source(study.source), study.study_uid)
            rows = mapping.preview(data, profile.rules, _tables(profile.rules))
            record_phi_access(request, "migration.preview", study.pk)
        except (dicom.RetrieveError, mapping.MappingError) as exc:
            error = str(exc)
    context = {"profile": profile, "study": study, "rows": rows, "error": error}
    return render(request, "migration/profile_preview.html", context)


def _tables(rules):
    names = {rule.get("table") for rule in rules if rule.get("op") == "map"}
    return dict(LookupTable.objects.filter(name__in=names).values_list("name", "entries"))


@require("operate_migration")
def tables(request):
    """Upload a lookup table (CSV); only names and sizes are shown, never the values."""
    form = LookupTableForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        table = actions.import_lookup_table(
            name=data["name"], entries=data["entries"], description=data["description"]
        )
        messages.success(request, f"Table {table.name}: {len(table.entries)} entries.")
        return redirect("migration:profiles")
    return render(
        request, "migration/tables.html", {"form": form, "tables": LookupTable.objects.all()}
    )


@require("view_migration")
def conflicts(request):
    show = request.GET.get("show", "open")
    rows = Conflict.objects.select_related("ledger__wave", "decided_by").order_by("-detected_at")
    if show == "open":
        rows = rows.filter(decision="")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    context = {"page": page, "show": show, "form": ConflictDecisionForm()}
    return render(request, "migration/conflicts.html", context)


@require("operate_migration")
@require_POST
def conflict_decide(request, pk):
    conflict = get_object_or_404(Conflict, pk=pk)
    form = ConflictDecisionForm(request.POST)
    if form.is_valid():
        try:
            actions.decide_conflict(
                conflict, form.cleaned_data["decision"], request.user, form.cleaned_data["note"]
            )
        except actions.ActionError as exc:
            messages.error(request, str(exc))
            return redirect("migration:conflicts")
        messages.success(
            request, f"Conflict on {conflict.sop_uid}: {conflict.get_decision_display()}."
        )
    else:
        messages.error(request, "Choose a decision.")
    return redirect("migration:conflicts")


@require("pause_migration")
@require_POST
def control(request):
    """The global pause switch (and the latency bound of the closed-loop throttle)."""
    if "latency_bound_ms" in request.POST:
        value = request.POST["latency_bound_ms"].strip()
        try:
            bound = float(value) if value else None
            if bound is not None and bound < 1:
                raise ValueError
        except ValueError:
            messages.error(request, "The latency bound is a number of milliseconds (1 or more).")
            return redirect("migration:index")
        actions.set_latency_bound(bound, request.user)
    else:
        paused = request.POST.get("paused") == "1"
        actions.set_paused(paused, request.user, request.POST.get("reason", ""))
        messages.success(request, "Migration paused." if paused else "Migration resumed.")
    return redirect("migration:index")
