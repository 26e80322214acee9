"""Who may do what in training, beyond the role rules of `core.access`.

Lead users are clinicians marked as lead for their department (a profile flag, not a
role): they triage feedback and sign off colleagues in their department. Trainers take
attendance for their own sessions and sign off the modules they teach. Views use
`allowed(check)`, the API `Allowed(check)`, exactly like `require` / `RulePermission`.
"""

from functools import wraps

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from core.access import has_rule


def profile_of(user):
    """The user's ClinicianProfile or None (cached on the user object)."""
    if not user.is_authenticated:
        return None
    if not hasattr(user, "_training_profile"):
        from training.models import ClinicianProfile

        user._training_profile = ClinicianProfile.objects.filter(user=user).first()
    return user._training_profile


def is_lead_user(user):
    profile = profile_of(user)
    return bool(profile and profile.is_lead and user.is_active)


def may_manage(user):
    return has_rule(user, "manage_training")


def may_triage_feedback(user):
    return may_manage(user) or is_lead_user(user)


def may_see_all_feedback(user):
    """Triagers, and command-center staff who work the tickets feedback raises."""
    return may_triage_feedback(user) or has_rule(user, "view_board")


def may_see_feedback(user, feedback):
    return feedback.reporter_id == user.pk or may_see_all_feedback(user)


# The role rules behind each check (core.access reads `access_rule`; a tuple means
# any of them); lead users and trainers qualify by their profile on top of these.
may_triage_feedback.access_rule = "manage_training"
may_see_all_feedback.access_rule = ("manage_training", "view_board")


def may_see_phi(user):
    return has_rule(user, "view_phi")


def may_see_screenshot(user, feedback):
    """The reporter, or staff who may see all feedback and PHI (screenshots of a viewer
    usually show patient details)."""
    return feedback.reporter_id == user.pk or (may_see_all_feedback(user) and may_see_phi(user))


def may_take_attendance(user, session):
    return may_manage(user) or (user.is_authenticated and session.trainer_id == user.pk)


def trains_module(user, module):
    return module.sessions.filter(trainer_id=user.pk).exists()


def may_sign_off(user, clinician, module):
    """Managers, the module's trainers, and lead users of the clinician's department;
    never oneself."""
    if not user.is_authenticated or user.pk == clinician.pk or not has_rule(user, "view_training"):
        return False
    if may_manage(user) or trains_module(user, module):
        return True
    mine, theirs = profile_of(user), profile_of(clinician)
    return (
        is_lead_user(user)
        and theirs is not None
        and theirs.department_id is not None
        and theirs.department_id == mine.department_id
    )


def may_sign_off_anyone(user):
    if may_manage(user) or is_lead_user(user):
        return True
    return user.is_authenticated and user.sessions_trained.exists()


may_sign_off_anyone.access_rule = "manage_training"


def allowed(check, message="You do not have permission for this page."):
    """View decorator: 403 unless `check(request.user)`."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        wrapped.access_rule = getattr(check, "access_rule", None)
        return wrapped

    return decorator


def Allowed(check):  # noqa: N802 (reads as a class in permission_classes)
    return type(
        f"Allowed_{check.__name__}",
        (BasePermission,),
        {
            "has_permission": lambda self, request, view: check(request.user),
            "read_rule": getattr(check, "access_rule", None),
            "write_rule": getattr(check, "access_rule", None),
        },
    )
