"""Every state change in training, each followed by its live event (published after commit).

Refusals a person can act on raise `TrainingError` (the message is shown as-is);
permission refusals raise `PermissionDenied`. Views and the API are thin adapters.
"""

import re

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from core.access import ROLES
from core.alerts import raise_alert
from core.events import publish
from training import permissions, queries
from training.catalog import FEEDBACK_STATUSES, FEEDBACK_TRANSITIONS, KINDS, SEVERITIES, VIEWERS
from training.models import (
    ChecklistItem,
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
from training.screenshots import check_screenshot

ENROLLED, WAITLISTED, CANCELLED = "enrolled", "waitlisted", "cancelled"


class TrainingError(Exception):
    """A refusal with a message for the person; `status` is the HTTP status the API uses."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message = message
        self.status = status


# --- sessions and enrolment -------------------------------------------------------------


def save_session(form, by):
    """Save a session form (new or edited); more seats promote people from the waitlist."""
    is_new = form.instance._state.adding
    with transaction.atomic():
        session = form.save()
        _lock_session(session.pk)
        promoted = _fill_seats(session)
    _publish_session(session)
    for enrolment in promoted:
        _publish_enrolment(enrolment, "A seat opened: you are now enrolled.")
    if is_new:
        _publish_activity(f"New training session: {session.name}", session=session)
    return session


def add_material(session, by, *, title, url="", upload=None):
    if not (url or upload):
        raise TrainingError("Give a link or attach a file.")
    material = Material(session=session, title=title, url=url)
    if upload is not None:
        material.filename = upload.name[-200:]
        material.file.save(upload.name, upload, save=False)
    material.save()
    return material


def enrol(session_id, user, *, now=None):
    """Take a seat, or a place on the waitlist when the session is full."""
    now = now or timezone.now()
    with transaction.atomic():
        session = _lock_session(session_id)
        _check_not_started(session, now, "enrol in")
        _check_audience(session, user)
        enrolment = Enrolment.objects.filter(session=session, user=user).first()
        if enrolment and enrolment.status != CANCELLED:
            raise TrainingError(_already(enrolment), status=409)
        full = _seats_taken(session) >= session.capacity
        enrolment = enrolment or Enrolment(session=session, user=user)
        enrolment.status, enrolment.queued_at = (WAITLISTED if full else ENROLLED), now
        enrolment.attended = enrolment.attendance_by = enrolment.attendance_at = None
        enrolment.save()
    _publish_session(session)
    _publish_enrolment(enrolment)
    return enrolment


def cancel(session_id, user, *, now=None):
    """Give up a seat or a waitlist place; a freed seat goes to the next on the waitlist.
    Returns (the cancelled enrolment, the enrolments promoted)."""
    now = now or timezone.now()
    with transaction.atomic():
        session = _lock_session(session_id)
        _check_not_started(session, now, "cancel")
        enrolment = Enrolment.objects.filter(session=session, user=user).first()
        if enrolment is None or enrolment.status == CANCELLED:
            raise TrainingError("You are not enrolled in this session.", status=409)
        enrolment.status = CANCELLED
        enrolment.save()
        promoted = _fill_seats(session)
    _publish_session(session)
    _publish_enrolment(enrolment)
    for other in promoted:
        _publish_enrolment(other, f"A seat opened in {session.name}: you are now enrolled.")
    return enrolment, promoted


def record_attendance(session_id, by, present_user_ids, *, now=None):
    """Mark who came: every enrolled person is present (in `present_user_ids`) or absent."""
    now = now or timezone.now()
    session = TrainingSession.objects.select_related("module").get(pk=session_id)
    if not permissions.may_take_attendance(by, session):
        raise PermissionDenied("Only the session's trainer or the project team take attendance.")
    if session.starts_at > now:
        raise TrainingError("Attendance can be recorded once the session has started.")
    present = {int(pk) for pk in present_user_ids}
    enrolled = list(session.enrolments.filter(status=ENROLLED))
    unknown = present - {e.user_id for e in enrolled}
    if unknown:
        raise TrainingError("Only people enrolled in the session can be marked present.")
    with transaction.atomic():
        for enrolment in enrolled:
            enrolment.attended = enrolment.user_id in present
            enrolment.attendance_by, enrolment.attendance_at = by, now
            enrolment.save()
    _publish_session(session)
    return {"present": len(present), "absent": len(enrolled) - len(present)}


def _lock_session(session_id):
    """Serialise seat changes on one session: a row lock on PostgreSQL; SQLite has no row
    locks, so a no-op UPDATE takes its database write lock for this transaction."""
    if connection.vendor == "sqlite":
        TrainingSession.objects.filter(pk=session_id).update(capacity=F("capacity"))
    return TrainingSession.objects.select_for_update(of=("self",)).get(pk=session_id)


def _seats_taken(session):
    return session.enrolments.filter(status=ENROLLED).count()


def _fill_seats(session):
    free = session.capacity - _seats_taken(session)
    if free <= 0:
        return []
    waiting = list(session.enrolments.filter(status=WAITLISTED).order_by("queued_at", "id")[:free])
    for enrolment in waiting:
        enrolment.status = ENROLLED
        enrolment.save()
    return waiting


def _check_not_started(session, now, verb):
    if session.starts_at <= now:
        raise TrainingError(
            f"This session has already started, so you can no longer {verb} it. "
            "Choose a later session."
        )


def _check_audience(session, user):
    if queries.is_for(session, user):
        return
    roles = [ROLES.get(g.name, g.name) for g in session.audience_roles.all()]
    names = ", ".join(roles + [d.name for d in session.audience_departments.all()])
    raise TrainingError(f"This session is for: {names}. Choose a session open to you.", 403)


def _already(enrolment):
    if enrolment.status == WAITLISTED:
        return "You are already on the waitlist for this session."
    return "You are already enrolled in this session."


# --- competencies ---------------------------------------------------------------------


def create_module(title, *, summary="", items=(), position=0):
    with transaction.atomic():
        module = Module.objects.create(title=title, summary=summary, position=position)
        ChecklistItem.objects.bulk_create(
            ChecklistItem(module=module, text=text, position=i) for i, text in enumerate(items)
        )
    return module


def sign_off(module_id, clinician, by, item_ids, *, note=""):
    """Sign a clinician off on a module: every checklist item must be ticked."""
    module = Module.objects.get(pk=module_id)
    if not permissions.may_sign_off(by, clinician, module):
        raise PermissionDenied(
            "Sign-off is for the module's trainers, lead users of the clinician's department "
            "and the project team, and never for yourself."
        )
    items = list(module.items.all())
    missing = [item.text for item in items if item.pk not in {int(i) for i in item_ids}]
    if missing:
        raise TrainingError("Tick every item on the checklist first: " + "; ".join(missing) + ".")
    with transaction.atomic():
        if SignOff.objects.filter(module=module, clinician=clinician).exists():
            raise TrainingError(f"{clinician} is already signed off on {module}.", status=409)
        record = SignOff.objects.create(module=module, clinician=clinician, signed_by=by, note=note)
        record.items.set(items)
    publish(
        f"user.{clinician.pk}",
        {"type": "sign_off", "module": module.pk, "notice": f"You were signed off on {module}."},
    )
    return record


# --- clinicians and departments -------------------------------------------------------


def add_department(name):
    name = name.strip()
    if not name:
        raise TrainingError("Give the department a name.")
    department, created = Department.objects.get_or_create(name=name)
    if not created:
        raise TrainingError(f"There is already a department called {name}.", status=409)
    return department


def set_profile(user, *, department=None, is_lead=None, contact=None):
    """Create or update a clinician profile; only the given fields change."""
    profile, _ = ClinicianProfile.objects.get_or_create(user=user)
    for field, value in (("department", department), ("is_lead", is_lead), ("contact", contact)):
        if value is not None:
            setattr(profile, field, value)
    profile.save()
    user.__dict__.pop("_training_profile", None)
    return profile


# --- feedback ---------------------------------------------------------------------------


def submit_feedback(
    reporter, *, viewer, kind, severity, description, screenshot=None, accession_number=""
):
    """File feedback; when it blocks patient care, raise a command-center ticket at once."""
    profile = permissions.profile_of(reporter)
    accession_number = accession_number.strip()
    feedback = Feedback(
        reporter=reporter,
        viewer=viewer,
        kind=kind,
        severity=severity,
        description=redact(description.strip(), accession_number),
        accession_number=accession_number,
        department=profile.department if profile else None,
        from_lead_user=permissions.is_lead_user(reporter),
    )
    if screenshot is not None:
        feedback.screenshot_type = check_screenshot(screenshot)
        feedback.screenshot.save(screenshot.name, screenshot, save=False)
    with transaction.atomic():
        feedback.save()
        if feedback.blocks_care:
            _escalate(feedback)
    _publish_feedback(feedback, new=True)
    return feedback


def _escalate(feedback):
    kind, severity = KINDS[feedback.kind], SEVERITIES[feedback.severity]
    raise_alert(
        "feedback",
        cause=f"feedback.{feedback.pk}",
        title=f"Clinician feedback: {kind['phrase']} in {VIEWERS[feedback.viewer]} "
        "blocks patient care",
        category=kind["category"],
        impact=severity["impact"],
        urgency=severity["urgency"],
        detail=ticket_detail(feedback),
        links={"feedback": feedback.pk},
    )
    feedback.escalated = True
    feedback.save(update_fields=["escalated"])


def ticket_detail(feedback):
    """The ticket's description: the feedback's (stored without the accession number)."""
    text = feedback.description
    lead = " (lead user)" if feedback.from_lead_user else ""
    return (
        f"{text}\n\nViewer: {VIEWERS[feedback.viewer]}. Kind: {feedback.kind_label}. "
        f"Department: {feedback.department or 'not given'}. "
        f"Reported by {feedback.reporter.get_username()}{lead}. Feedback #{feedback.pk}."
    )


def redact(text, accession_number):
    """The accession number lives in its own PHI field only, never in free text."""
    if not accession_number:
        return text
    pattern = rf"(?<![A-Za-z0-9]){re.escape(accession_number)}(?![A-Za-z0-9])"
    return re.sub(pattern, "[accession number]", text, flags=re.IGNORECASE)


def triage_feedback(feedback_id, by, *, themes=(), status=None):
    """Put feedback into themes (created by name as needed) and optionally move its status."""
    if not permissions.may_triage_feedback(by):
        raise PermissionDenied("Only lead users and the project team triage feedback.")
    names = sorted({name.strip()[:80] for name in themes if name.strip()})
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().get(pk=feedback_id)
        chosen = [Theme.objects.get_or_create(name=name)[0] for name in names]
        feedback.themes.set(chosen)
        target = status or ("triaged" if feedback.status == "new" else feedback.status)
        _move(feedback, target)
        feedback.save()
    _publish_feedback(feedback)
    return feedback


def reply_to_feedback(feedback_id, by, text, *, status=None):
    """Answer the clinician; they see the reply and the status in "My feedback" at once."""
    if not permissions.may_triage_feedback(by):
        raise PermissionDenied("Only lead users and the project team reply to feedback.")
    if not text.strip():
        raise TrainingError("Write a reply first.")
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().get(pk=feedback_id)
        feedback.reply, feedback.replied_by, feedback.replied_at = text.strip(), by, timezone.now()
        if status:
            _move(feedback, status)
        feedback.save()
    _publish_feedback(feedback)
    return feedback


def _move(feedback, status):
    if status == feedback.status:
        return
    if status not in FEEDBACK_TRANSITIONS.get(feedback.status, ()):
        raise TrainingError(
            f"Feedback that is {FEEDBACK_STATUSES[feedback.status].lower()} cannot become "
            f"{FEEDBACK_STATUSES.get(status, status).lower()}."
        )
    feedback.status = status


# --- highlights -----------------------------------------------------------------------


def save_highlight(highlight, by):
    """Save a (new or edited) "what's new" entry; new ones are announced live."""
    is_new = highlight._state.adding
    if highlight.author_id is None:
        highlight.author = by
    highlight.save()
    if is_new:
        _publish_activity(f"What's new in the cloud viewer: {highlight.title}")
    return highlight


def delete_highlight(highlight_id):
    Highlight.objects.filter(pk=highlight_id).delete()


# --- live events (rendered once per event; no PHI in any of them) -----------------------


def _publish_session(session):
    counts = seat_counts(session)
    html = render_to_string("training/_seats.html", {"session": session, "seats": counts})
    publish(f"training.session.{session.pk}", {"session": session.pk, **counts}, html=html)


def seat_counts(session):
    rows = session.enrolments.exclude(status=CANCELLED).values_list("status", "attended")
    enrolled = sum(status == ENROLLED for status, _ in rows)
    return {
        "capacity": session.capacity,
        "enrolled": enrolled,
        "waitlisted": sum(status == WAITLISTED for status, _ in rows),
        "seats_left": max(session.capacity - enrolled, 0),
        "attended": sum(bool(attended) for _, attended in rows),
    }


def _publish_enrolment(enrolment, notice=None):
    html = render_to_string("training/_my_status.html", {"enrolment": enrolment})
    data = {
        "type": "enrolment",
        "session": enrolment.session_id,
        "status": enrolment.status,
        "target": f"my-status-{enrolment.session_id}",
        "notice": notice,
    }
    publish(f"user.{enrolment.user_id}", data, html=html)


def _publish_feedback(feedback, new=False):
    data = {"type": "feedback", "feedback": feedback.pk, "status": feedback.status}
    mine = render_to_string("training/_my_feedback_row.html", {"fb": feedback})
    publish(f"user.{feedback.reporter_id}", {**data, "target": f"my-feedback-{feedback.pk}"}, mine)
    row = render_to_string("training/_queue_row.html", {"fb": feedback})
    if new:
        publish("feedback.queue", data, html=row)
    else:
        publish("feedback.changed", {**data, "target": f"fbq-{feedback.pk}"}, html=row)


def _publish_activity(text, session=None):
    html = render_to_string("training/_activity.html", {"text": text, "session": session})
    publish("training", {"text": text}, html=html)
