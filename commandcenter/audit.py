"""Access log for pages that show PHI (model changes are django-auditlog's job)."""

from commandcenter.models import PHIAccess


def record_phi_access(request, what, object_id="", count=1):
    """Record that `request.user` was shown PHI of kind `what` (e.g. "inventory.study")."""
    return PHIAccess.objects.create(
        user=request.user,
        what=what,
        object_id=str(object_id)[:100],
        count=count,
        path=request.path[:300],
        ip=request.META.get("REMOTE_ADDR") or None,
    )
