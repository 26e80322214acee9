"""Read-side helpers shared by the pages and the API (no state changes here)."""

from django.db.models import Count, Q
from django.utils import timezone

from core.access import roles_of
from training import permissions
from training.models import ClinicianProfile, Enrolment, Feedback, TrainingSession
from training.readiness import clinicians


def sessions(past=False, now=None):
    now = now or timezone.now()
    qs = TrainingSession.objects.select_related("module", "trainer").annotate(
        enrolled=Count("enrolments", filter=Q(enrolments__status="enrolled")),
        waitlisted=Count("enrolments", filter=Q(enrolments__status="waitlisted")),
    )
    if past:
        return qs.filter(starts_at__lte=now).order_by("-starts_at", "-id")
    return qs.filter(starts_at__gt=now).order_by("starts_at", "id")


def with_seats(rows):
    """Attach `seat_summary` to sessions annotated by `sessions()` (no query per session)."""
    for s in rows:
        left = max(s.capacity - s.enrolled, 0)
        s.seat_summary = {
            "capacity": s.capacity,
            "enrolled": s.enrolled,
            "waitlisted": s.waitlisted,
            "seats_left": left,
        }
    return rows


def is_for(session, user, profile=None):
    """Is `user` in the session's audience (an empty audience is everyone)?"""
    roles = {g.name for g in session.audience_roles.all()}
    departments = {d.pk for d in session.audience_departments.all()}
    if not roles and not departments:
        return True
    profile = profile or permissions.profile_of(user)
    return bool(roles & roles_of(user)) or bool(profile and profile.department_id in departments)


def my_enrolments(user):
    """{session id: enrolment} for the user's enrolments."""
    return {e.session_id: e for e in Enrolment.objects.filter(user=user)}


def visible_feedback(user):
    qs = Feedback.objects.select_related("reporter", "department").prefetch_related("themes")
    if permissions.may_see_all_feedback(user):
        return qs
    return qs.filter(reporter=user)


def clinicians_to_sign_off(user, module):
    """The clinicians `user` may sign off on `module` (never themselves)."""
    people = clinicians().exclude(pk=user.pk).select_related("clinician_profile__department")
    if permissions.may_manage(user) or permissions.trains_module(user, module):
        return people.order_by("username")
    if permissions.is_lead_user(user):
        department = permissions.profile_of(user).department_id
        return people.filter(clinician_profile__department_id=department).order_by("username")
    return people.none()


def lead_users(department=None):
    qs = ClinicianProfile.objects.filter(is_lead=True, user__is_active=True)
    if department is not None:
        qs = qs.filter(department=department)
    return qs.select_related("user", "department")
