"""Who may do what: roles, access rules as data, and the helpers every view uses.

A rule names the roles (Django groups) that hold it. Views call `require(rule)`,
API views use `RulePermission`, templates read `can.<rule>`, and the websocket
consumer asks `can_subscribe(user, topic)`. Superusers hold every rule.
"""

from functools import wraps

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

STAFF = "command_center_staff"
LEAD = "command_center_lead"
PM = "project_manager"
CLINICIAN = "clinician"
ENGINEER = "migration_engineer"
ADMIN = "admin"

ROLES = {
    STAFF: "Command-center staff",
    LEAD: "Command-center lead",
    PM: "Project manager",
    CLINICIAN: "Clinician",
    ENGINEER: "Migration engineer",
    ADMIN: "Administrator",
}
EVERYONE = frozenset(ROLES)
ANY_USER = None  # any logged-in, active user, with or without a role

RULES = {
    "view_home": ANY_USER,
    "view_inventory": {ENGINEER, PM, LEAD, ADMIN},
    "operate_inventory": {ENGINEER, ADMIN},
    "view_migration": {ENGINEER, PM, STAFF, LEAD, ADMIN},
    "operate_migration": {ENGINEER, ADMIN},
    "view_roadmap": {PM, ENGINEER, LEAD, ADMIN},
    "edit_roadmap": {PM, ADMIN},
    "view_board": {STAFF, LEAD, ADMIN},
    "triage_tickets": {STAFF, LEAD, ADMIN},
    "manage_escalation": {LEAD, ADMIN},
    "view_training": EVERYONE,
    "manage_training": {PM, LEAD, ADMIN},
    "give_feedback": EVERYONE,
    "view_phi": {STAFF, LEAD, ENGINEER, ADMIN},
    "view_audit": {LEAD, ADMIN},
    "open_tickets": {STAFF, LEAD, ENGINEER, ADMIN},
    "manage_roster": {LEAD, ADMIN},
    "view_on_call": {STAFF, LEAD, PM, ENGINEER, ADMIN},
    "view_monitoring": {STAFF, LEAD, ENGINEER, ADMIN},
    "view_ticket_reports": {STAFF, LEAD, PM, ADMIN},
    "preview_mapping": {ENGINEER, ADMIN},  # shows one real instance's tags (PHI)
    "pause_migration": {ENGINEER, LEAD, ADMIN},  # the command center's global pause
    "validate_migration": {ENGINEER, ADMIN},  # run validations, accept, re-migrate
    "review_renders": {ENGINEER, PM, LEAD, ADMIN},  # sign side-by-side thumbnails
    "view_design": {ENGINEER, PM, LEAD, ADMIN},  # destinations' designs and conformance
    "edit_design": {ENGINEER, PM, ADMIN},  # change a design, run its conformance check
    "waive_conformance": {LEAD, ADMIN},  # let a wave start against a non-conforming store
    "view_forecast": {ENGINEER, PM, LEAD, ADMIN},  # finish dates, link, hosts, cost
    "edit_forecast": {ENGINEER, PM, ADMIN},  # assumptions and price lists
    "enrol_two_factor": {LEAD, ADMIN},  # optional TOTP for the accounts that can do most
    "manage_tokens": {ADMIN},  # issue and revoke API tokens for systems
    "expedite_studies": {ENGINEER, LEAD, ADMIN},  # the locator's Migrate now
    "manage_sync": {ENGINEER, LEAD, ADMIN},  # sync mode of a PACS on or off, its schedule
}
PUBLIC = "public"  # a route anyone may reach, logged in or not (login page, /healthz)

# Websocket topics: the first dotted part names the rule a subscriber needs.
TOPIC_RULES = {
    "health": "view_home",
    "home": "view_home",
    "board": "view_board",
    "alerts": "view_board",
    "inventory": "view_inventory",
    "migration": "view_migration",
    "validation": "view_migration",
    "roadmap": "view_roadmap",
    "cutover": "view_roadmap",
    "training": "view_training",
    "feedback": "manage_training",
    "oncall": "view_on_call",
    "monitoring": "view_monitoring",
}


def ensure_roles():
    """Create the role groups; idempotent (the data migration and test fixtures call it)."""
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def roles_of(user):
    if not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_cc_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._cc_roles = cached
    return cached


def has_rule(user, rule):
    if rule not in RULES:
        raise KeyError(f"unknown access rule {rule!r}")
    if not user.is_authenticated or not user.is_active:
        return False
    scopes = getattr(user, "_cc_token_scopes", None)  # set when an API token authenticated
    if scopes is not None and rule not in scopes:
        return False
    holders = RULES[rule]
    return holders is ANY_USER or user.is_superuser or bool(roles_of(user) & holders)


def holds(user, declared):
    """Does `user` pass a declared access rule: PUBLIC, a rule name, or a tuple of rule
    names any one of which suffices (the role × route matrix reads views this way)."""
    if declared == PUBLIC:
        return True
    if isinstance(declared, tuple):
        return any(has_rule(user, rule) for rule in declared)
    return has_rule(user, declared)


def require(*rules):
    """View decorator: 403 unless the logged-in user holds every one of `rules`
    (`@require("view_migration", "view_phi")` for a page that shows a patient's image)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            for rule in rules:
                if not has_rule(request.user, rule):
                    raise PermissionDenied(f"This page needs the '{rule}' permission.")
            return view(request, *args, **kwargs)

        wrapped.access_rule = rules[0] if len(rules) == 1 else list(rules)
        return wrapped

    return decorator


def public(view):
    """View decorator: anyone may reach this route (it shows nothing that needs a login)."""
    from django.contrib.auth.decorators import login_not_required

    view = login_not_required(view)
    view.access_rule = PUBLIC
    return view


def RulePermission(rule):  # noqa: N802 (reads as a class in permission_classes)
    """DRF permission class for one rule: `permission_classes = [RulePermission("view_board")]`."""
    return type(
        f"Rule_{rule}",
        (BasePermission,),
        {
            "has_permission": lambda self, request, view: has_rule(request.user, rule),
            "read_rule": rule,
            "write_rule": rule,
        },
    )


def ReadWrite(read_rule, write_rule):  # noqa: N802 (reads as a class in permission_classes)
    """DRF permission class: one rule to read (GET, HEAD, OPTIONS), another to change."""
    return type(
        f"Rules_{read_rule}_{write_rule}",
        (BasePermission,),
        {
            "has_permission": lambda self, request, view: has_rule(
                request.user, read_rule if request.method in SAFE_METHODS else write_rule
            ),
            "read_rule": read_rule,
            "write_rule": write_rule,
        },
    )


def can_subscribe(user, topic):
    """May `user` receive events on `topic`? `user.<id>` topics belong to that user alone."""
    head = topic.split(".", 1)[0]
    if head == "user":
        return user.is_authenticated and topic == f"user.{user.pk}"
    rule = TOPIC_RULES.get(head)
    return rule is not None and has_rule(user, rule)


class _Can:
    def __init__(self, user):
        self._user = user

    def __getattr__(self, rule):
        return has_rule(self._user, rule)


def roles_context(request):
    user = request.user
    return {"can": _Can(user), "user_roles": sorted(ROLES[r] for r in roles_of(user) if r in ROLES)}
