"""Shared REST endpoints: health and the logged-in user."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from core import health
from core.access import ROLES, roles_of

_component = inline_serializer(
    "HealthComponent",
    {
        "ok": serializers.BooleanField(),
        "detail": serializers.CharField(),
        "ms": serializers.FloatField(allow_null=True),
    },
)


@extend_schema(
    responses=inline_serializer(
        "Health",
        {
            "ok": serializers.BooleanField(),
            "checked_at": serializers.DateTimeField(),
            "components": serializers.DictField(child=_component),
        },
    )
)
@api_view(["GET"])
def health_view(request):
    """Database, Redis and Celery workers, each with ok/detail/ms."""
    snap = health.snapshot()
    return Response(snap, status=200 if snap["ok"] else 503)


@extend_schema(
    responses=inline_serializer(
        "Me",
        {
            "username": serializers.CharField(),
            "roles": serializers.ListField(),
            "is_superuser": serializers.BooleanField(),
        },
    )
)
@api_view(["GET"])
def me_view(request):
    """The logged-in user and their roles."""
    user = request.user
    roles = sorted(r for r in roles_of(user) if r in ROLES)
    return Response(
        {"username": user.get_username(), "roles": roles, "is_superuser": user.is_superuser}
    )
