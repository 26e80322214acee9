"""Readiness: the share of clinicians trained and signed off, per department and module.

A clinician is an active user who holds the clinician role or has a clinician profile;
their department comes from the profile ("Unassigned" without one). *Trained* means
attended a session of the module; *signed off* means a trainer or lead user signed them
off on it. Without a module, a clinician counts only when trained (or signed off) on
every active module. The go/no-go screen and the roadmap read these two functions.
"""

from django.contrib.auth import get_user_model
from django.db.models import Q

from core.access import CLINICIAN
from training.models import Department, Enrolment, Module, SignOff

UNASSIGNED = "Unassigned"


def clinicians():
    users = get_user_model().objects.filter(is_active=True)
    return users.filter(Q(groups__name=CLINICIAN) | Q(clinician_profile__isnull=False)).distinct()


def readiness_by_department(module=None):
    """[{"department","clinicians","trained","signed_off","share_trained","share_signed_off"}]
    for every department (and "Unassigned" when someone has no department)."""
    module_ids = _module_ids(module)
    people = dict(clinicians().values_list("pk", "clinician_profile__department__name"))
    trained = _complete(_pairs_trained(module_ids), people, module_ids)
    signed = _complete(_pairs_signed(module_ids), people, module_ids)
    names = list(Department.objects.values_list("name", flat=True))
    if any(dept is None for dept in people.values()):
        names.append(None)
    return [_row(name, people, trained, signed) for name in names]


def overall_readiness():
    """{"clinicians","trained","signed_off","share_trained","share_signed_off"} over every
    clinician and every active module."""
    return totals(readiness_by_department())


def totals(rows):
    """The overall figures of some department rows."""
    keys = ("clinicians", "trained", "signed_off")
    return _with_shares({key: sum(row[key] for row in rows) for key in keys})


def _module_ids(module):
    if module is None:
        return list(Module.objects.filter(active=True).values_list("pk", flat=True))
    return [getattr(module, "pk", module)]


def _pairs_trained(module_ids):
    rows = Enrolment.objects.filter(
        attended=True, user__in=clinicians().values("pk"), session__module_id__in=module_ids
    )
    return set(rows.values_list("user_id", "session__module_id"))


def _pairs_signed(module_ids):
    rows = SignOff.objects.filter(clinician__in=clinicians().values("pk"), module_id__in=module_ids)
    return set(rows.values_list("clinician_id", "module_id"))


def _complete(pairs, people, module_ids):
    """Clinicians who have a pair for every module (none when there are no modules)."""
    if not module_ids:
        return set()
    return {pk for pk in people if all((pk, m) in pairs for m in module_ids)}


def _row(name, people, trained, signed):
    members = [pk for pk, dept in people.items() if dept == name]
    counts = {
        "clinicians": len(members),
        "trained": sum(pk in trained for pk in members),
        "signed_off": sum(pk in signed for pk in members),
    }
    return {"department": name or UNASSIGNED, **_with_shares(counts)}


def _with_shares(counts):
    n = counts["clinicians"]
    return {
        **counts,
        "share_trained": counts["trained"] / n if n else 0.0,
        "share_signed_off": counts["signed_off"] / n if n else 0.0,
    }
