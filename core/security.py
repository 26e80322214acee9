"""Pure security rules: idle expiry, the password policy's own validator, token keys."""

import hashlib
import secrets

from django.core.exceptions import ValidationError

TOKEN_PREFIX_LENGTH = 8


def idle_expired(last_activity, now, timeout_seconds):
    """Has a session whose last activity was at `last_activity` (epoch seconds, or None
    for a session not seen yet) been idle longer than `timeout_seconds` at `now`?"""
    return last_activity is not None and now - float(last_activity) > timeout_seconds


class MixedCharactersValidator:
    """At least `classes` of four kinds of character: lower case, upper case, digits, other."""

    def __init__(self, classes=3):
        self.classes = classes

    def validate(self, password, user=None):
        if character_classes(password) < self.classes:
            raise ValidationError(self.get_help_text(), code="password_too_uniform")

    def get_help_text(self):
        return (
            f"Your password must mix at least {self.classes} of: lower-case letters, "
            "upper-case letters, digits and other characters."
        )


def character_classes(password):
    kinds = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    return sum(any(kind(c) for c in password) for kind in kinds)


def new_token_key():
    """A fresh API token: `cc_<prefix>_<secret>`; only its SHA-256 is stored."""
    return f"cc_{secrets.token_hex(TOKEN_PREFIX_LENGTH // 2)}_{secrets.token_urlsafe(32)}"


def token_prefix(key):
    parts = key.split("_")
    return parts[1] if len(parts) == 3 and parts[0] == "cc" else ""


def token_digest(key):
    return hashlib.sha256(key.encode()).hexdigest()
