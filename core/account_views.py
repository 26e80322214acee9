"""Account pages: the session's keep-alive and two-factor enrolment."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from core import accounts
from core.access import public, require
from core.sessions import LAST_ACTIVITY


@require("view_home")
@never_cache
@require_http_methods(["GET", "POST"])
def session_status(request):
    """GET tells the browser how long its session has left; POST ("stay signed in")
    counts as activity."""
    if request.method == "POST":
        request.session[LAST_ACTIVITY] = time.time()
    return JsonResponse(
        {
            "idle_timeout_seconds": int(settings.SESSION_IDLE_TIMEOUT_MINUTES * 60),
            "warning_seconds": settings.SESSION_IDLE_WARNING_SECONDS,
        }
    )


@require("enrol_two_factor")
@never_cache
@require_http_methods(["GET", "POST"])
def two_factor(request):
    """Enrol an authenticator app (TOTP), confirm it with a code, or remove it."""
    user = request.user
    if request.method == "POST":
        return _two_factor_post(request, user)
    enrolled = accounts.user_has_device(user)
    device = None if enrolled else accounts.pending_device(user)
    context = {
        "enrolled": enrolled,
        "secret": device and accounts.secret_of(device),
        "config_url": device and device.config_url,
    }
    return render(request, "registration/two_factor.html", context)


def _two_factor_post(request, user):
    if request.POST.get("action") == "remove":
        accounts.remove_devices(user)
        messages.success(request, "Two-factor sign-in removed.")
    elif accounts.confirm_device(
        accounts.pending_device(user), request.POST.get("token", "").strip()
    ):
        messages.success(request, "Two-factor sign-in is on: the next login asks for a code.")
    else:
        messages.error(request, "That code is not valid. Enter the current code from your app.")
    return redirect("two_factor")


@public
def admin_login(request, extra_context=None):
    """The admin site signs in through our login page: the same lockout and two-factor step."""
    return redirect_to_login(request.GET.get("next", "/admin/"), login_url=settings.LOGIN_URL)
