"""API tokens for systems: issued, listed and revoked here; checked by the DRF class below.

The key is shown once when issued (`cc_<prefix>_<secret>`); only its SHA-256 is kept.
Clients send `Authorization: Bearer <key>`.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core.access import RULES
from core.models import ApiToken
from core.security import new_token_key, token_digest, token_prefix

KEYWORD = "Bearer"


def issue(user, name, scopes, expires_days=None, now=None):
    """A new token for `user` limited to `scopes` (access rule names): (token, key)."""
    unknown = sorted(set(scopes) - set(RULES))
    if unknown or not scopes:
        raise ValueError(f"unknown or no scopes: {', '.join(unknown) or '(none)'}")
    now = now or timezone.now()
    key = new_token_key()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=token_prefix(key),
        digest=token_digest(key),
        scopes=sorted(set(scopes)),
        expires_at=now + timedelta(days=expires_days) if expires_days else None,
    )
    return token, key


@transaction.atomic
def revoke(token_id, now=None):
    token = ApiToken.objects.select_for_update().get(pk=token_id)
    if token.revoked_at is None:
        token.revoked_at = now or timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def user_for_key(key, now=None):
    """The token's user, marked with the token's scopes; None for any unusable key."""
    now = now or timezone.now()
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
    if token is None or not token.usable_at(now) or not token.user.is_active:
        return None, None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    user = token.user
    user._cc_token_scopes = frozenset(token.scopes)
    return user, token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer cc_…`; a missing header leaves the request anonymous."""

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace") != KEYWORD:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Bearer token.")
        user, token = user_for_key(parts[1].decode(errors="replace"))
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return user, token

    def authenticate_header(self, request):
        return KEYWORD


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.tokens.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token (cc_…)"}
