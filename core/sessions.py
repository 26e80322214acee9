"""When a browser session ends, its websockets end too.

Each websocket joins its session's group and its user's group. Logout closes the
session's sockets; a role change, deactivation, password change or deletion closes the
user's sockets (all after commit). Idle expiry has no signal, so each socket also asks
`close_code` every WEBSOCKET_RECHECK_SECONDS.
"""

import hashlib
import time
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save

from core.access import roles_of
from core.events import control
from core.security import idle_expired

CLOSE_SIGNED_OUT = 4401  # the browser shows "signed out" and does not reconnect
CLOSE_ACCESS_CHANGED = 4403  # the browser reconnects under the user's new roles
LAST_ACTIVITY = "_cc_last_activity"


def session_group(session_key):
    return "s." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def user_group(user_id):
    return f"u.{user_id}"


def groups_for(user_id, session_key):
    return [user_group(user_id)] + ([session_group(session_key)] if session_key else [])


def fingerprint(user):
    """What a socket's permission to stay open rests on: active, password, roles."""
    user = get_user_model().objects.filter(pk=user.pk).first()
    if user is None or not user.is_active:
        return None
    return (user.get_session_auth_hash(), user.is_superuser, tuple(sorted(roles_of(user))))


def close_code(user_id, session_key, connected_fingerprint, now):
    """None while the socket may stay open, else the close code it gets."""
    current = fingerprint(SimpleNamespace(pk=user_id))
    if current is None or current[0] != connected_fingerprint[0]:
        return CLOSE_SIGNED_OUT
    if session_key and not _session_alive(session_key, user_id, now):
        return CLOSE_SIGNED_OUT
    return None if current == connected_fingerprint else CLOSE_ACCESS_CHANGED


def _session_alive(session_key, user_id, now):
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()
    if str(data.get(SESSION_KEY)) != str(user_id) or not data.get(BACKEND_SESSION_KEY):
        return False
    timeout = settings.SESSION_IDLE_TIMEOUT_MINUTES * 60
    return HASH_SESSION_KEY in data and not idle_expired(data.get(LAST_ACTIVITY), now, timeout)


def end_session(session_key):
    control(session_group(session_key), {"type": "session.end", "code": CLOSE_SIGNED_OUT})


def recheck_user(user_id):
    """The user changed (roles, active flag, password): their sockets look again."""
    control(user_group(user_id), {"type": "session.recheck"})


def _on_login(sender, request, user, **kwargs):
    """A login is activity: the idle clock starts with the session."""
    session = getattr(request, "session", None)
    if session is not None:
        session[LAST_ACTIVITY] = time.time()


def _on_logout(sender, request, user, **kwargs):
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        end_session(key)


def _on_groups_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    user_ids = (pk_set or ()) if reverse else [instance.pk]
    for user_id in user_ids:
        recheck_user(user_id)


def _on_user_saved(sender, instance, created, update_fields=None, **kwargs):
    if not created and update_fields != frozenset({"last_login"}):
        recheck_user(instance.pk)


def _on_user_deleted(sender, instance, **kwargs):
    recheck_user(instance.pk)


def connect_signals():
    user_model = get_user_model()
    user_logged_in.connect(_on_login, dispatch_uid="cc-idle-login")
    user_logged_out.connect(_on_logout, dispatch_uid="cc-ws-logout")
    m2m_changed.connect(
        _on_groups_changed, sender=user_model.groups.through, dispatch_uid="cc-ws-roles"
    )
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid="cc-ws-user-saved")
    post_delete.connect(_on_user_deleted, sender=user_model, dispatch_uid="cc-ws-user-deleted")
