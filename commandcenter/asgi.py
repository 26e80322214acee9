"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

import django
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

from core.config import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commandcenter.settings")
exit_on_config_error(django.setup)
django_asgi_app = get_asgi_application()

from commandcenter.routing import websocket_urlpatterns  # noqa: E402 (needs apps loaded)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
