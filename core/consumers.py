"""Websocket consumer: a logged-in user subscribes to the topics they may see, for as long
as their session lasts and their roles stay the same."""

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from core import sessions
from core.access import can_subscribe
from core.events import group_name

log = logging.getLogger(__name__)
MAX_TOPICS = 50  # per connection, all subscribe messages together


class EventsConsumer(AsyncWebsocketConsumer):
    """Protocol: the client sends {"subscribe": [topics]}; the server answers
    {"subscribed": [...], "refused": [...]} and then forwards every event as it comes.

    The socket closes with 4401 when its session ends (logout, idle expiry, the user
    deactivated or their password changed) and with 4403 when the user's roles change
    (the browser reconnects and subscribes again under the new roles)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.topics = set()
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        self.fingerprint = await database_sync_to_async(sessions.fingerprint)(user)
        if self.fingerprint is None:
            await self.close(code=sessions.CLOSE_SIGNED_OUT)
            return
        self.groups_joined = sessions.groups_for(user.pk, self.session_key)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.watchdog = asyncio.ensure_future(self._recheck_periodically())

    async def disconnect(self, code):
        if getattr(self, "watchdog", None):
            self.watchdog.cancel()
        for topic in getattr(self, "topics", ()):
            await self.channel_layer.group_discard(group_name(topic), self.channel_name)
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            wanted = json.loads(text_data or "{}").get("subscribe", [])
        except (ValueError, AttributeError):
            wanted = []
        if not isinstance(wanted, list):
            wanted = []
        allowed, refused = await self._sort_topics(wanted[: MAX_TOPICS * 2])
        room = MAX_TOPICS - len(self.topics)
        new = sorted(allowed - self.topics)
        allowed -= set(new[room:])
        refused |= set(new[room:])
        for topic in allowed - self.topics:
            await self.channel_layer.group_add(group_name(topic), self.channel_name)
        self.topics |= allowed
        await self.send(json.dumps({"subscribed": sorted(allowed), "refused": sorted(refused)}))

    @database_sync_to_async
    def _sort_topics(self, topics):
        user = self.scope["user"]
        allowed, refused = set(), set()
        for topic in topics:
            ok = isinstance(topic, str) and _valid(topic) and can_subscribe(user, topic)
            (allowed if ok else refused).add(str(topic))
        return allowed, refused

    async def dispatch(self, message):
        """Events skip Channels' per-message database-connection cleanup (a hop to a
        thread, the largest cost of a delivery): forwarding the ready text touches no DB."""
        if message["type"] == "event.message":
            await self.event_message(message)
        else:
            await super().dispatch(message)

    async def event_message(self, event):
        await self.send(text_data=event["text"])

    async def session_end(self, message):
        """Sent by logout (core.sessions)."""
        await self.close(code=message.get("code", sessions.CLOSE_SIGNED_OUT))

    async def session_recheck(self, message):
        """Sent when the user changed: roles, active flag, password, or deleted."""
        await self._recheck()

    async def _recheck_periodically(self):
        """Expiry has no signal: look again every WEBSOCKET_RECHECK_SECONDS."""
        try:
            while True:
                await asyncio.sleep(settings.WEBSOCKET_RECHECK_SECONDS)
                if await self._recheck():
                    return
        except Exception as exc:  # the client left, or the server is stopping
            log.debug("websocket re-check stopped: %r", exc)

    async def _recheck(self):
        code = await database_sync_to_async(sessions.close_code)(
            self.scope["user"].pk, self.session_key, self.fingerprint, time.time()
        )
        if code is not None:
            await self.close(code=code)
        return code is not None


def _valid(topic):
    try:
        group_name(topic)
    except ValueError:
        return False
    return True
