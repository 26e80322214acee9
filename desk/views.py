import logging

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import charts, health
from core.access import has_rule, require
from core.audit import phi_response
from core.models import HealthSample
from desk import (
    catalog,
    escalation,
    forms,
    monitoring,
    notifications,
    reports,
    roster,
    sla,
    ticket_page,
    tickets,
    triage,
    workflow,
)
from desk.forms import TicketForm
from desk.models import (
    Attachment,
    EscalationPolicy,
    HandoffNote,
    MetricSample,
    Override,
    Rotation,
    Ticket,
)

log = logging.getLogger(__name__)


# --- The 24/7 command center ----------------------------------------------------------------


def cc_render(request, template, context=None, status=200):
    """Render a command-center page: every one shows who is on call and the user's badge."""
    base = {
        "on_call": roster.on_call_now(),
        "unread": notifications.unread_count(request.user),
        "sla_bands": {"bands": sla.BANDS, "breached": sla.BREACHED},
    }
    return render(request, template, {**base, **(context or {})}, status=status)


@require("view_board")
def board(request):
    """The triage board: a column per status, cards live over the `board` topic."""
    filters = triage.parse_filters(request.GET)
    now = timezone.now()
    counts, totals = triage.board_summary(now)
    context = {
        "columns": triage.columns(filters, request.user, now, None if filters else totals),
        "filters": filters,
        "filter_form": forms.BoardFilterForm(request.GET or None),
        "query": request.GET.urlencode(),
        "counts": counts,
        "transitions": sorted(workflow.transitions()),
    }
    return cc_render(request, "desk/board.html", context)


@require("view_board")
def board_column(request, status):
    """More cards of one column ("show more"), as a fragment."""
    if status not in workflow.STATUSES:
        raise Http404("no such column")
    offset = _int_param(request, "offset", 0, 0, 10**9)
    filters = triage.parse_filters(request.GET)
    col = triage.column(status, filters, request.user, timezone.now(), offset=offset)
    query = request.GET.copy()
    query.pop("offset", None)
    return render(
        request,
        "desk/_column_page.html",
        {"column": col, "query": query.urlencode(), "now": timezone.now()},
    )


@require("view_board")
def overview(request):
    """The go-live overview: tickets, breaches, on call, migration, system health."""
    latest_health = HealthSample.objects.order_by("-checked_at").first()
    latest = MetricSample.objects.order_by("-at").first()
    health_now = latest_health and health.recorded(latest_health.checked_at)
    context = {
        "counts": triage.board_counts(),
        "breaches": triage.breached_by_team(limit=5),
        "latest": latest,
        "health": health_now,
        "statuses": workflow.STATUSES,
    }
    return cc_render(request, "desk/overview.html", context)


@require("open_tickets")
def new_ticket(request):
    form = TicketForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        screenshot = form.cleaned_data.pop("screenshot", None)
        if screenshot is not None:
            try:
                tickets.check_screenshot(screenshot)
            except tickets.AttachmentRefused as exc:
                form.add_error("screenshot", str(exc))
        if not form.errors:
            ticket = _create_from_form(request, form, screenshot)
            messages.success(request, f"Ticket #{ticket.pk} opened as {ticket.priority}.")
            return redirect("cc:ticket", ticket.pk)
    return cc_render(request, "desk/ticket_form.html", {"form": form})


def _create_from_form(request, form, screenshot):
    data = {k: form.cleaned_data[k] for k in form.Meta.fields}
    ticket = tickets.create_ticket(**data, reporter=request.user, links=form.links())
    if screenshot is not None:
        tickets.add_attachment(ticket, screenshot, request.user)
    return ticket


@require("view_board")
def ticket_detail(request, pk):
    """The ticket page; its parts update live (see `desk.ticket_page`)."""
    ticket = get_object_or_404(Ticket.objects.select_related("assignee", "reporter"), pk=pk)
    context = {
        **ticket_page.live_context(ticket, viewer=request.user),
        "edit_form": forms.TicketEditForm(instance=ticket),
        "comment_form": forms.CommentForm(),
        "screenshot_form": forms.ScreenshotForm(),
        "viewer_rules": ticket_page.viewer_rules(request.user),
    }
    return cc_render(request, "desk/ticket.html", context)


@require("triage_tickets")
@require_POST
def ticket_edit(request, pk):
    ticket = get_object_or_404(Ticket, pk=pk)
    form = forms.TicketEditForm(request.POST, instance=Ticket.objects.get(pk=pk))
    if form.is_valid():
        changes = {f: form.cleaned_data[f] for f in form.changed_data}
        tickets.update_ticket(ticket, request.user, **changes)
        messages.success(request, "Saved.")
    else:
        messages.error(request, "Not saved: " + "; ".join(_errors(form)))
    return redirect("cc:ticket", pk)


def _errors(form):
    return [f"{field}: {' '.join(errs)}" for field, errs in form.errors.items()]


@require("triage_tickets")
@require_POST
def ticket_status(request, pk):
    """Non-JavaScript status change (the board's drag and drop uses the API)."""
    ticket = get_object_or_404(Ticket, pk=pk)
    try:
        tickets.transition(ticket, request.POST.get("status", ""), request.user)
    except workflow.TransitionRefused as exc:
        messages.error(request, str(exc))
    return redirect("cc:ticket", pk)


@require("triage_tickets")
@require_POST
def ticket_comment(request, pk):
    ticket = get_object_or_404(Ticket, pk=pk)
    form = forms.CommentForm(request.POST)
    if form.is_valid():
        tickets.add_comment(ticket, request.user, form.cleaned_data["body"])
    else:
        messages.error(request, "A comment needs some text.")
    return redirect("cc:ticket", pk)


@require("triage_tickets")
@require_POST
def ticket_attach(request, pk):
    ticket = get_object_or_404(Ticket, pk=pk)
    form = forms.ScreenshotForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a screenshot to upload.")
        return redirect("cc:ticket", pk)
    try:
        tickets.add_attachment(ticket, form.cleaned_data["file"], request.user)
    except tickets.AttachmentRefused as exc:
        messages.error(request, str(exc))
    return redirect("cc:ticket", pk)


@require("view_board", "view_phi")
def attachment(request, pk):
    item = get_object_or_404(Attachment, pk=pk)
    response = FileResponse(item.file.open("rb"), content_type=item.content_type)
    response["Content-Disposition"] = f'inline; filename="attachment-{item.pk}"'
    return phi_response(request, response, "desk.attachment", item.pk)


@require("view_board")
def breaches(request):
    return cc_render(request, "desk/breaches.html", {"teams": triage.breached_by_team(limit=100)})


# --- Escalation policies --------------------------------------------------------------------


@require("view_board")
def escalation_policies(request):
    policies = EscalationPolicy.objects.prefetch_related("steps__person", "steps__rotation")
    return cc_render(request, "desk/escalation.html", {"policies": policies})


@require("manage_escalation")
def escalation_edit(request, pk=None):
    """Leads create and change policies (steps in the same form)."""
    policy = get_object_or_404(EscalationPolicy, pk=pk) if pk else None
    form = forms.PolicyForm(request.POST or None, instance=policy)
    steps = forms.StepFormSet(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid() and steps.is_valid():
        policy = escalation.save_policy(form, steps)
        messages.success(request, f"Escalation policy '{policy.name}' saved.")
        return redirect("cc:escalation")
    return cc_render(
        request,
        "desk/escalation_form.html",
        {"form": form, "steps": steps, "policy": policy},
    )


# --- Roster ---------------------------------------------------------------------------------


@require("view_on_call")
def roster_page(request):
    now = timezone.now()
    rotations = [
        {
            "rotation": r,
            "current": roster.on_call(r, now),
            "shift_start": roster.shift_start(r, now),
            "schedule": roster.schedule(r, now, hours=48),
            "note": r.handoffs.filter(shift_start=roster.shift_start(r, now)).first(),
        }
        for r in Rotation.objects.filter(active=True).prefetch_related("members__user")
    ]
    context = {
        "rotations": rotations,
        "pending": roster.pending_handoffs(now),
        "override_form": forms.OverrideForm(),
        "handoff_form": forms.HandoffForm(),
        "overrides": Override.objects.filter(ends_at__gte=now).select_related("rotation", "user"),
    }
    return cc_render(request, "desk/roster.html", context)


@require("triage_tickets")
@require_POST
def handoff_write(request, rotation_pk):
    rotation = get_object_or_404(Rotation, pk=rotation_pk)
    form = forms.HandoffForm(request.POST)
    try:
        if not form.is_valid():
            raise roster.RosterError("a handoff note needs some text")
        roster.write_handoff(rotation, request.user, form.cleaned_data["body"])
        messages.success(request, "Handoff note saved; the next shift acknowledges it.")
    except roster.RosterError as exc:
        messages.error(request, str(exc))
    return redirect("cc:roster")


@require("triage_tickets")
@require_POST
def handoff_acknowledge(request, pk):
    note = get_object_or_404(HandoffNote.objects.select_related("rotation"), pk=pk)
    try:
        lead = has_rule(request.user, "manage_roster")
        roster.acknowledge_handoff(note, request.user, may_override=lead)
        messages.success(request, "Handoff acknowledged.")
    except roster.RosterError as exc:
        messages.error(request, str(exc))
    return redirect("cc:roster")


@require("manage_roster")
@require_POST
def override_add(request):
    form = forms.OverrideForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        roster.add_override(
            data["rotation"],
            data["user"],
            data["starts_at"],
            data["ends_at"],
            created_by=request.user,
            reason=data["reason"],
        )
        messages.success(request, "Override saved.")
    else:
        messages.error(request, "Override not saved: " + "; ".join(_errors(form)))
    return redirect("cc:roster")


# --- Monitoring, reports, notifications -----------------------------------------------------


@require("view_monitoring")
def monitoring_board(request):
    hours = _int_param(request, "hours", 6, 1, 48)
    return cc_render(request, "desk/monitoring.html", monitoring.board_context(hours))


@require("view_ticket_reports")
def report_page(request):
    days = _int_param(request, "days", 14, 1, 365)
    data = reports.summary(days)
    per_day = data["per_day"]
    labels = [d.strftime("%d %b") for d in per_day["days"]]
    chart_priority = charts.stacked_bars(
        labels,
        per_day["by_priority"],
        title=f"Tickets per day by priority, last {days} days",
        colors=PRIORITY_COLORS,
    )
    chart_category = charts.stacked_bars(
        labels,
        {catalog.CATEGORIES[c]: v for c, v in per_day["by_category"].items()},
        title=f"Tickets per day by category, last {days} days",
    )
    context = {**data, "chart_priority": chart_priority, "chart_category": chart_category}
    return cc_render(request, "desk/reports.html", context)


PRIORITY_COLORS = {"P1": "#b3261e", "P2": "#b25e00", "P3": "#0b5cad", "P4": "#5b6776"}


def _int_param(request, name, default, low, high):
    value = request.GET.get(name, "")
    return min(max(int(value), low), high) if value.isdigit() else default


@require("view_ticket_reports")
def report_csv(request):
    days = _int_param(request, "days", 30, 1, 365)
    response = HttpResponse(reports.csv_text(days), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="tickets-last-{days}-days.csv"'
    return response


@require("view_on_call")
def notification_list(request):
    items = request.user.cc_notifications.select_related("ticket")[:100]
    return cc_render(request, "desk/notifications.html", {"items": items})


@require("view_on_call")
@require_POST
def notifications_read(request):
    notifications.mark_read(request.user)
    return redirect("cc:notifications")
