from django import template

from core.access import ROLES
from training import permissions
from training.catalog import FEEDBACK_STATUSES, KINDS, SEVERITIES, VIEWERS

register = template.Library()


@register.filter
def may_triage(user):
    return permissions.may_triage_feedback(user)


@register.filter
def may_see_all_feedback(user):
    return permissions.may_see_all_feedback(user)


@register.filter
def may_sign_off_anyone(user):
    return permissions.may_sign_off_anyone(user)


@register.filter
def percent(share):
    return f"{100 * (share or 0):.0f}%"


@register.filter
def status_label(status):
    return FEEDBACK_STATUSES.get(status, status)


@register.filter
def viewer_label(viewer):
    return VIEWERS.get(viewer, viewer)


@register.filter
def kind_label(kind):
    return KINDS.get(kind, {}).get("label", kind)


@register.filter
def severity_label(severity):
    return SEVERITIES.get(severity, {}).get("label", severity)


@register.filter
def get(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def role_label(group):
    return ROLES.get(group.name, group.name)
