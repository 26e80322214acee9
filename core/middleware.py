"""Request gates of our own: login required, idle logoff, Content-Security-Policy."""

import time

from axes.middleware import AxesMiddleware as _AxesMiddleware
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from rest_framework.views import APIView

from core.security import idle_expired
from core.sessions import LAST_ACTIVITY

ACTIVITY_WRITE_SECONDS = 15  # coarser than this, a request does not rewrite the session


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every page needs login. REST API views (DRF) answer 401/403 themselves instead of
    redirecting to the login page; which view it is decides, never the path."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_api_view(view_func):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


def is_api_view(view_func):
    cls = getattr(view_func, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


class IdleSessionMiddleware:
    """Automatic logoff: a browser session idle for SESSION_IDLE_TIMEOUT_MINUTES ends at
    its next request (the session store also forgets it after SESSION_COOKIE_AGE)."""

    def __init__(self, get_response, clock=time.time):
        self.get_response = get_response
        self.clock = clock

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and request.user.is_authenticated and session.session_key:
            self._touch(request, session)
        return self.get_response(request)

    def _touch(self, request, session):
        now = self.clock()
        last = session.get(LAST_ACTIVITY)
        if idle_expired(last, now, settings.SESSION_IDLE_TIMEOUT_MINUTES * 60):
            logout(request)
        elif last is None or now - last >= ACTIVITY_WRITE_SECONDS:
            session[LAST_ACTIVITY] = now


class ContentSecurityPolicyMiddleware:
    """Sends settings.CONTENT_SECURITY_POLICY on every response that has none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class AxesMiddleware(_AxesMiddleware):
    """django-axes' lockout page, run synchronously like the rest of the chain: an
    async-capable middleware below sync ones makes each request hop loop ↔ thread twice,
    and under the live server's load that hop deadlocked."""

    async_capable = False
