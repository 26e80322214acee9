"""Every route of the project, read from the URL resolver (DRF routers included), with
the access rule each declares for each method it answers."""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated

from core.access import PUBLIC, RULES

UNSAFE = ("post", "put", "patch", "delete")
ADMIN_SITE = "django-admin"  # the admin site's own rule: staff accounts only
FILLERS = {
    "int": "987654",
    "slug": "no-such-thing",
    "str": "no-such-thing",
    "path": "no/such",
    "uuid": "00000000-0000-0000-0000-000000000000",
}
REGEX_FILLERS = {"format": "json", "app_label": "auth", "url": "no-such-page/"}


@dataclass(frozen=True)
class Route:
    path: str  # the URL requested, with placeholder arguments
    pattern: str
    namespace: str
    callback: object
    is_api: bool
    name: str

    @property
    def is_admin_site(self):
        return self.namespace == "admin"


def routes():
    return [_route(prefix, ns, pattern) for prefix, ns, pattern in _walk(get_resolver(), "", "")]


def _walk(resolver, prefix, namespace):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            ns = ":".join(part for part in (namespace, pattern.namespace) if part)
            yield from _walk(pattern, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            yield prefix, namespace, pattern


def _route(prefix, namespace, pattern):
    text = prefix + str(pattern.pattern)
    callback = pattern.callback
    cls = getattr(callback, "cls", None)
    return Route("/" + _fill(text), text, namespace, callback, cls is not None, pattern.name)


def _fill(text):
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: REGEX_FILLERS.get(m.group(1), "987654"), text)
    text = text.replace("<drf_format_suffix:format>", ".json")
    text = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: FILLERS[m.group(1) or "str"], text)
    return text.replace("\\.", ".").replace("^", "").replace("$", "").replace("/?", "/")


def methods(route):
    """The methods a route answers: a viewset's mapped actions, an API view's handlers;
    pages are requested with GET (their forms' own rules are tested per view)."""
    cls = getattr(route.callback, "cls", None)
    if cls is None:
        return ["get"]
    actions = getattr(route.callback, "actions", None)
    if actions:
        return sorted(m for m in actions if m in ("get", *UNSAFE))
    return [m for m in ("get", *UNSAFE) if hasattr(cls, m)]


def declared_rules(route, method):
    """The rules a request must pass (all of them); raises LookupError when the view
    declares none: a route without a rule fails the suite."""
    if route.is_admin_site:
        return [ADMIN_SITE]  # its login page sends to ours
    cls = getattr(route.callback, "cls", None)
    if cls is None:
        rule = getattr(route.callback, "access_rule", None)
        if rule is None:
            raise LookupError(f"{route.pattern}: the view declares no access rule")
        return rule if isinstance(rule, list) else [rule]
    permissions = _permissions(route, method)
    return [_permission_rule(route, permission, method) for permission in permissions]


def _permissions(route, method):
    view = route.callback.cls(**route.callback.initkwargs)
    view.action = (getattr(route.callback, "actions", None) or {}).get(method)
    view.request = view.args = view.kwargs = None
    view.format_kwarg = None
    return view.get_permissions()


def _permission_rule(route, permission, method):
    if type(permission) is IsAuthenticated:
        return "view_home"  # any logged-in user
    attribute = "read_rule" if method.upper() in SAFE_METHODS else "write_rule"
    rule = getattr(permission, attribute, None)
    known = rule == PUBLIC or rule in RULES or (isinstance(rule, tuple) and set(rule) <= set(RULES))
    if not known:
        name = type(permission).__name__
        raise LookupError(f"{route.pattern} {method}: permission {name} declares no access rule")
    return rule
