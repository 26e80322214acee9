"""Sign-in and account security: the login form with an optional TOTP code, the session's
keep-alive, two-factor enrolment, and the websocket groups a session's end closes."""

from base64 import b32encode

from django import forms
from django.contrib.auth import signals as auth_signals
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

TOKEN_HELP = "The 6-digit code from your authenticator app (only if you enrolled one)."


class LoginForm(AuthenticationForm):
    """Username and password, then the TOTP code when the user has enrolled a device.
    A wrong code counts as a failed login (django-axes locks out on it too)."""

    otp_token = forms.CharField(required=False, max_length=8, help_text=TOKEN_HELP)
    error_messages = {
        **AuthenticationForm.error_messages,
        "otp_required": "Enter the code from your authenticator app.",
        "otp_invalid": "That code is not valid. Enter the current code from your app.",
    }

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is not None and user_has_device(user):
            user.otp_device = self._verified_device(user, cleaned.get("otp_token", "").strip())
        return cleaned

    def _verified_device(self, user, token):
        if not token:
            raise forms.ValidationError(self.error_messages["otp_required"], code="otp_required")
        for device in TOTPDevice.objects.filter(user=user, confirmed=True):
            if device.verify_token(token):
                return device
        auth_signals.user_login_failed.send(
            sender=type(self),
            credentials={"username": user.get_username()},
            request=self.request,
        )
        raise forms.ValidationError(self.error_messages["otp_invalid"], code="otp_invalid")


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True


def pending_device(user):
    """The user's unconfirmed TOTP device (created on first visit to the enrol page)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def secret_of(device):
    return b32encode(device.bin_key).decode()


def confirm_device(device, token):
    """Confirm `device` when `token` is a current code from it: True on success."""
    if not device.verify_token(token):
        return False
    TOTPDevice.objects.filter(user=device.user, confirmed=True).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return True


def remove_devices(user):
    TOTPDevice.objects.filter(user=user).delete()


def session_context(request):
    """The idle timeout the page's session.js counts down (base.html's <body>)."""
    from django.conf import settings

    return {
        "session_idle_seconds": int(settings.SESSION_IDLE_TIMEOUT_MINUTES * 60),
        "session_warning_seconds": settings.SESSION_IDLE_WARNING_SECONDS,
    }
