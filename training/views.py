"""Training pages: thin adapters over `training.actions` and the read helpers."""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.access import has_rule, require
from core.audit import record_phi_access
from training import actions, charts, ics, queries, reports
from training.actions import TrainingError
from training.catalog import FEEDBACK_STATUSES, KINDS, SEVERITIES, SUPPORT_FALLBACK
from training.forms import (
    DepartmentForm,
    FeedbackForm,
    HighlightForm,
    MaterialForm,
    ModuleForm,
    PersonForm,
    ProfileForm,
    ReplyForm,
    SessionForm,
    SignOffForm,
    TriageForm,
)
from training.models import (
    ClinicianProfile,
    Department,
    Enrolment,
    Feedback,
    Highlight,
    Material,
    Module,
    SignOff,
    Theme,
    TrainingSession,
)
from training.permissions import (
    allowed,
    may_manage,
    may_see_all_feedback,
    may_see_feedback,
    may_see_phi,
    may_see_screenshot,
    may_sign_off_anyone,
    may_take_attendance,
    may_triage_feedback,
    profile_of,
)
from training.readiness import clinicians, readiness_by_department
from training.readiness import totals as readiness_totals

SEVERITY_COLOURS = {"blocks": "#b3261e", "slows": "#b25e00", "suggestion": "#0b5cad"}


@require("view_training")
def index(request):
    soon = queries.sessions().prefetch_related("audience_roles", "audience_departments")[:20]
    upcoming = [s for s in soon if queries.is_for(s, request.user)][:3]
    context = {
        "upcoming": upcoming,
        "mine": queries.my_enrolments(request.user),
        "highlights": Highlight.objects.all()[:2],
        "my_open_feedback": Feedback.objects.filter(
            reporter=request.user, status__in=("new", "triaged", "in_progress")
        ).count(),
        "queue_open": Feedback.objects.filter(status="new").count()
        if may_triage_feedback(request.user)
        else None,
    }
    return render(request, "training/index.html", context)


# --- sessions ---------------------------------------------------------------------------


@require("view_training")
def session_list(request):
    past = request.GET.get("past") == "1"
    everyone = request.GET.get("all") == "1"
    rows = queries.sessions(past=past).prefetch_related("audience_roles", "audience_departments")
    rows = queries.with_seats(
        [s for s in rows if everyone or past or queries.is_for(s, request.user)]
    )
    context = {"sessions": rows, "past": past, "everyone": everyone}
    context["mine"] = queries.my_enrolments(request.user)
    return render(request, "training/sessions.html", context)


@require("view_training")
def session_detail(request, pk):
    session = get_object_or_404(
        TrainingSession.objects.select_related("module", "trainer").prefetch_related(
            "materials", "audience_roles", "audience_departments", "module__items"
        ),
        pk=pk,
    )
    context = {
        "session": session,
        "seats": actions.seat_counts(session),
        "enrolment": Enrolment.objects.filter(session=session, user=request.user).first(),
        "is_for_me": queries.is_for(session, request.user),
        "may_take_attendance": may_take_attendance(request.user, session),
    }
    if context["may_take_attendance"]:
        roster = session.enrolments.exclude(status="cancelled").select_related("user")
        context["roster"] = [e for e in roster if e.status == "enrolled"]
        context["waitlist"] = [e for e in roster if e.status == "waitlisted"]
        context["material_form"] = MaterialForm()
    return render(request, "training/session_detail.html", context)


@require("manage_training")
def session_new(request):
    return _session_form(request, TrainingSession())


@require("manage_training")
def session_edit(request, pk):
    return _session_form(request, get_object_or_404(TrainingSession, pk=pk))


def _session_form(request, session):
    form = SessionForm(request.POST or None, instance=session)
    if request.method == "POST" and form.is_valid():
        session = actions.save_session(form, request.user)
        messages.success(request, f"Saved {session.name}.")
        return redirect("training:session", pk=session.pk)
    return render(request, "training/session_form.html", {"form": form, "session": session})


@require("view_training")
@require_POST
def session_enrol(request, pk):
    try:
        enrolment = actions.enrol(pk, request.user)
    except TrainingError as exc:
        messages.error(request, exc.message)
    else:
        if enrolment.status == "enrolled":
            messages.success(request, f"You are enrolled in {enrolment.session.name}.")
        else:
            messages.warning(request, "The session is full: you are on the waitlist.")
    return _back(request, "training:session", pk=pk)


@require("view_training")
@require_POST
def session_cancel(request, pk):
    try:
        actions.cancel(pk, request.user)
    except TrainingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Your place is cancelled; the seat went to the next person.")
    return _back(request, "training:session", pk=pk)


@require("view_training")
@require_POST
def session_attendance(request, pk):
    try:
        result = actions.record_attendance(pk, request.user, request.POST.getlist("present"))
    except TrainingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Attendance saved: {result['present']} present.")
    return redirect("training:session", pk=pk)


@require("view_training")
@require_POST
def material_add(request, pk):
    session = get_object_or_404(TrainingSession, pk=pk)
    if not may_take_attendance(request.user, session):
        raise PermissionDenied("Only the trainer or the project team add materials.")
    form = MaterialForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        actions.add_material(
            session, request.user, title=data["title"], url=data["url"], upload=data["file"]
        )
        messages.success(request, "Material added.")
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("training:session", pk=pk)


@require("view_training")
def material_file(request, pk):
    material = get_object_or_404(Material, pk=pk)
    if not material.file:
        raise Http404("This material is a link.")
    return _private_file(material.file, material.filename or "material", attachment=True)


@require("view_training")
def session_ics(request, pk):
    session = get_object_or_404(TrainingSession.objects.select_related("module", "trainer"), pk=pk)
    url = request.build_absolute_uri(reverse("training:session", args=[pk]))
    return _ics(ics.session_calendar(session, url=url), f"training-session-{pk}.ics")


@require("view_training")
def my_ics(request):
    enrolments = Enrolment.objects.filter(
        user=request.user, session__ends_at__gte=timezone.now() - timedelta(days=30)
    ).select_related("session__module", "session__trainer")
    body = ics.person_calendar(
        request.user,
        enrolments,
        url_for=lambda s: request.build_absolute_uri(reverse("training:session", args=[s.pk])),
    )
    return _ics(body, "my-training.ics")


# --- my training, competencies, readiness -------------------------------------------------


@require("view_training")
def my_training(request):
    profile = profile_of(request.user)
    form = ProfileForm(
        request.POST or None,
        initial={
            "department": profile and profile.department,
            "contact": profile and profile.contact,
        },
    )
    if request.method == "POST" and form.is_valid():
        actions.set_profile(request.user, **form.cleaned_data)
        messages.success(request, "Your details are saved.")
        return redirect("training:mine")
    enrolments = Enrolment.objects.filter(user=request.user).exclude(status="cancelled")
    context = {
        "form": form,
        "profile": profile,
        "enrolments": enrolments.select_related("session__module").order_by("session__starts_at"),
        "sign_offs": SignOff.objects.filter(clinician=request.user).select_related("module"),
        "modules": Module.objects.filter(active=True),
        "now": timezone.now(),
    }
    return render(request, "training/my_training.html", context)


@require("view_training")
def competencies(request):
    form = ModuleForm(request.POST or None)
    if request.method == "POST":
        if not may_manage(request.user):
            raise PermissionDenied("Only the project team adds modules.")
        if form.is_valid():
            data = form.cleaned_data
            actions.create_module(data["title"], summary=data["summary"], items=data["checklist"])
            messages.success(request, f"Module {data['title']} added.")
            return redirect("training:competencies")
    signed = set(SignOff.objects.filter(clinician=request.user).values_list("module_id", flat=True))
    context = {
        "modules": Module.objects.prefetch_related("items"),
        "signed": signed,
        "form": form,
        "may_sign_off": may_sign_off_anyone(request.user),
    }
    return render(request, "training/competencies.html", context)


@allowed(may_sign_off_anyone, "Sign-off is for trainers, lead users and the project team.")
def sign_off(request, pk):
    module = get_object_or_404(Module.objects.prefetch_related("items"), pk=pk)
    people = queries.clinicians_to_sign_off(request.user, module)
    done = SignOff.objects.filter(module=module).select_related("clinician", "signed_by")
    form = SignOffForm(
        request.POST or None, module=module, clinicians=people.exclude(sign_offs__module=module)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.sign_off(
                module.pk, data["clinician"], request.user, data["items"], note=data["note"]
            )
        except TrainingError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"{data['clinician']} is signed off on {module}.")
            return redirect("training:sign_off", pk=module.pk)
    return render(request, "training/sign_off.html", {"module": module, "form": form, "done": done})


@require("view_training")
def readiness(request):
    module = None
    if request.GET.get("module"):
        module = get_object_or_404(Module, pk=request.GET["module"])
    rows = readiness_by_department(module)
    chart = charts.hbar_chart(
        f"Readiness by department{f' for {module}' if module else ''}",
        [(r["department"], _percent_of(r)) for r in rows],
        [("trained", "Trained", "#0b5cad"), ("signed_off", "Signed off", "#1b7f3b")],
        max_value=100,
        unit="%",
    )
    totals = readiness_totals(rows)
    context = {"rows": rows, "totals": totals, "chart": chart, "module": module}
    context["modules"] = Module.objects.filter(active=True)
    return render(request, "training/readiness.html", context)


def _percent_of(row):
    return {"trained": 100 * row["share_trained"], "signed_off": 100 * row["share_signed_off"]}


# --- feedback ---------------------------------------------------------------------------


@require("give_feedback")
def feedback_new(request):
    form = FeedbackForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            feedback = actions.submit_feedback(request.user, **data)
        except TrainingError as exc:
            form.add_error(None, exc.message)
        else:
            _thank(request, feedback)
            return redirect("training:feedback_mine")
    return render(request, "training/feedback_form.html", {"form": form})


def _thank(request, feedback):
    messages.success(request, f"Thank you: your feedback #{feedback.pk} was received.")
    if feedback.escalated:
        messages.warning(
            request,
            "It blocks patient care, so the command center was alerted at once. "
            "For anything urgent also call the support line (see Support).",
        )


@require("give_feedback")
def feedback_mine(request):
    rows = Feedback.objects.filter(reporter=request.user).prefetch_related("themes")
    return render(request, "training/feedback_mine.html", {"rows": rows})


@allowed(may_see_all_feedback, "The feedback queue is for lead users and the project team.")
def feedback_queue(request):
    rows = queries.visible_feedback(request.user)
    filters = {k: request.GET.get(k, "") for k in ("status", "severity", "kind", "theme")}
    if filters["status"] == "open" or not request.GET:
        filters["status"] = "open"
        rows = rows.filter(status__in=("new", "triaged", "in_progress"))
    elif filters["status"]:
        rows = rows.filter(status=filters["status"])
    for key in ("severity", "kind"):
        if filters[key]:
            rows = rows.filter(**{key: filters[key]})
    if filters["theme"]:
        rows = rows.filter(themes__name=filters["theme"])
    context = {"rows": rows[:200], "filters": filters, "themes": Theme.objects.all()}
    context.update(statuses=FEEDBACK_STATUSES, kinds=KINDS, severities=SEVERITIES)
    return render(request, "training/feedback_queue.html", context)


@require("view_training")
def feedback_detail(request, pk):
    feedback = get_object_or_404(queries.visible_feedback(request.user), pk=pk)
    show_phi = bool(feedback.accession_number) and may_see_phi(request.user)
    if show_phi:
        record_phi_access(request, "training.feedback.accession", feedback.pk)
    context = {
        "fb": feedback,
        "show_phi": show_phi,
        "may_triage": may_triage_feedback(request.user),
        "may_see_screenshot": bool(feedback.screenshot)
        and may_see_screenshot(request.user, feedback),
        "triage_form": TriageForm(
            initial={
                "themes": ", ".join(t.name for t in feedback.themes.all()),
                "status": feedback.status,
            }
        ),
        "reply_form": ReplyForm(initial={"reply": feedback.reply}),
        "themes": Theme.objects.all(),
        "ticket_url": _ticket_url(feedback, request.user),
    }
    return render(request, "training/feedback_detail.html", context)


def _ticket_url(feedback, user):
    """The command-center ticket this feedback raised, for those who work the board."""
    if not feedback.escalated or not has_rule(user, "view_board"):
        return None
    try:
        from desk.models import Ticket

        ticket = Ticket.objects.filter(cause=f"feedback.{feedback.pk}").order_by("-pk").first()
        return reverse("cc:ticket", args=[ticket.pk]) if ticket else None
    except (ImportError, NoReverseMatch):
        return None


@require("view_training")
def feedback_screenshot(request, pk):
    feedback = get_object_or_404(Feedback, pk=pk)
    if not feedback.screenshot or not may_see_feedback(request.user, feedback):
        raise Http404("No such screenshot.")
    if not may_see_screenshot(request.user, feedback):
        raise PermissionDenied("Screenshots are shown to their author and to staff allowed PHI.")
    if feedback.reporter_id != request.user.pk:
        record_phi_access(request, "training.feedback.screenshot", feedback.pk)
    return _private_file(feedback.screenshot, None, content_type=feedback.screenshot_type)


@allowed(may_triage_feedback, "Only lead users and the project team triage feedback.")
@require_POST
def feedback_triage(request, pk):
    form = TriageForm(request.POST)
    if form.is_valid():
        try:
            actions.triage_feedback(
                pk,
                request.user,
                themes=form.cleaned_data["themes"],
                status=form.cleaned_data["status"],
            )
            messages.success(request, "Triage saved.")
        except TrainingError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Choose a status.")
    return redirect("training:feedback", pk=pk)


@allowed(may_triage_feedback, "Only lead users and the project team reply to feedback.")
@require_POST
def feedback_reply(request, pk):
    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            actions.reply_to_feedback(
                pk, request.user, form.cleaned_data["reply"], status=form.cleaned_data["status"]
            )
            messages.success(request, "Reply sent: the clinician sees it in My feedback.")
        except TrainingError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Write a reply first.")
    return redirect("training:feedback", pk=pk)


@allowed(may_see_all_feedback, "The feedback dashboard is for lead users and the project team.")
def feedback_dashboard(request):
    series = [(k, v["label"], SEVERITY_COLOURS[k]) for k, v in SEVERITIES.items()]
    volume = reports.feedback_volume(weeks=8)
    by_kind = reports.feedback_by_kind()
    context = {
        "summary": reports.feedback_summary(),
        "volume": volume,
        "by_kind": [(KINDS[k]["label"], counts) for k, counts in by_kind.items()],
        "themes": reports.top_themes(),
        "severities": SEVERITIES,
        "volume_chart": charts.stacked_columns(
            "Feedback per week by severity",
            [(f"{w['week']:%d %b}", w["counts"]) for w in volume],
            series,
        ),
        "kind_chart": charts.hbar_stacked(
            "Feedback by kind and severity",
            [(KINDS[k]["label"], counts) for k, counts in by_kind.items()],
            series,
        ),
    }
    return render(request, "training/feedback_dashboard.html", context)


# --- what's new, support, people -----------------------------------------------------


@require("view_training")
def whats_new(request):
    return render(request, "training/whats_new.html", {"highlights": Highlight.objects.all()})


@require("manage_training")
def highlight_edit(request, pk=None):
    highlight = get_object_or_404(Highlight, pk=pk) if pk else Highlight()
    form = HighlightForm(request.POST or None, instance=highlight)
    if request.method == "POST" and form.is_valid():
        actions.save_highlight(form.save(commit=False), request.user)
        messages.success(request, "Saved. Clinicians see it on What's new.")
        return redirect("training:whats_new")
    return render(request, "training/highlight_form.html", {"form": form, "highlight": highlight})


@require("manage_training")
@require_POST
def highlight_delete(request, pk):
    actions.delete_highlight(pk)
    messages.success(request, "Removed from What's new.")
    return redirect("training:whats_new")


@require("view_training")
def support(request):
    profile = profile_of(request.user)
    department = profile.department if profile else None
    context = {
        "on_call": on_call(),
        "fallback": SUPPORT_FALLBACK,
        "department": department,
        "leads": queries.lead_users(department) if department else queries.lead_users(),
    }
    return render(request, "training/support.html", context)


def on_call():
    """Who is on call now, from the command center's roster when it exists; None otherwise."""
    try:
        from desk.roster import on_call_now
    except ImportError:
        return None
    try:
        return list(on_call_now())
    except Exception:  # the roster is down: the page still shows the fallback
        return None


@require("manage_training")
def people(request):
    form = DepartmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.add_department(form.cleaned_data["name"])
            messages.success(request, f"Department {form.cleaned_data['name']} added.")
            return redirect("training:people")
        except TrainingError as exc:
            form.add_error("name", exc.message)
    rows = clinicians().select_related("clinician_profile__department").order_by("username")
    context = {"form": form, "rows": [(user, _person_form(user)) for user in rows]}
    context["departments"] = Department.objects.prefetch_related(
        Prefetch("profiles", queryset=ClinicianProfile.objects.filter(is_lead=True))
    )
    return render(request, "training/people.html", context)


def _person_form(user):
    profile = getattr(user, "clinician_profile", None)
    initial = {"department": None, "contact": "", "is_lead": False}
    if profile:
        initial = {"department": profile.department, "contact": profile.contact}
        initial["is_lead"] = profile.is_lead
    return PersonForm(initial=initial, prefix=f"p{user.pk}")


@require("manage_training")
@require_POST
def person_update(request, user_pk):
    user = get_object_or_404(clinicians(), pk=user_pk)
    form = PersonForm(request.POST, prefix=f"p{user.pk}")
    if form.is_valid():
        actions.set_profile(user, **form.cleaned_data)
        messages.success(request, f"Saved {user}.")
    else:
        messages.error(request, "Check the department and contact.")
    return redirect("training:people")


# --- helpers --------------------------------------------------------------------------


def _back(request, fallback, **kwargs):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return redirect(target)
    return redirect(fallback, **kwargs)


def _ics(body, filename):
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _private_file(field, filename, content_type=None, attachment=False):
    """Serve an uploaded file to a logged-in, authorised user: never cached, never sniffed."""
    try:
        handle = field.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing.") from None
    response = FileResponse(
        handle, as_attachment=attachment, filename=filename, content_type=content_type
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
