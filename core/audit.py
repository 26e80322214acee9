"""Access log for pages that show PHI (model changes are django-auditlog's job), and
the masking of PHI fields in those change records.

A model lists its PHI fields in `PHI_FIELDS`, beside the fields themselves; every such
model that django-auditlog tracks is registered again with those fields masked whole
(auditlog's default masks only half of each value)."""

from django.apps import apps

from core.models import PHIAccess

PHI_MASK = "[PHI masked]"


def mask_phi(value):
    """auditlog's mask_callable: nothing of the value survives, not even its length."""
    return PHI_MASK if value not in ("", "None", "[]", "{}") else value


def phi_models():
    """{model: its PHI_FIELDS} for every installed model that declares them."""
    return {m: tuple(m.PHI_FIELDS) for m in apps.get_models() if getattr(m, "PHI_FIELDS", ())}


def mask_phi_in_audit_log():
    """Re-register every audited model with PHI fields so auditlog masks them (called
    once the apps are ready, after auditlog registered every model)."""
    from auditlog.registry import auditlog

    for model, fields in phi_models().items():
        if not auditlog.contains(model):
            continue
        options = auditlog._registry[model]
        auditlog.unregister(model)
        auditlog.register(
            model,
            include_fields=list(options["include_fields"]) or None,
            exclude_fields=list(options["exclude_fields"]) or None,
            mapping_fields=dict(options["mapping_fields"]) or None,
            mask_fields=sorted({*options["mask_fields"], *fields}),
            mask_callable="core.audit.mask_phi",
            m2m_fields=set(options["m2m_fields"]) or None,
            serialize_data=options["serialize_data"],
            serialize_kwargs=options["serialize_kwargs"],
        )


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


def phi_response(request, response, what, object_id=""):
    """Serve `response` (an image or file of a patient) only to a user with `view_phi`:
    the view is recorded, and nothing keeps a copy (no-store)."""
    from django.core.exceptions import PermissionDenied

    from core.access import has_rule

    if not has_rule(request.user, "view_phi"):
        raise PermissionDenied("Patient images and files are shown to roles allowed PHI.")
    record_phi_access(request, what, object_id)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
