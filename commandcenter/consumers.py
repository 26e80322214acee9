"""Websocket consumer: a logged-in user subscribes to the topics they may see."""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from commandcenter.access import can_subscribe
from commandcenter.events import group_name

MAX_TOPICS = 50


class EventsConsumer(AsyncWebsocketConsumer):
    """Protocol: the client sends {"subscribe": [topics]}; the server answers
    {"subscribed": [...], "refused": [...]} and then forwards every event as it comes."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.topics = set()
        await self.accept()

    async def disconnect(self, code):
        for topic in getattr(self, "topics", ()):
            await self.channel_layer.group_discard(group_name(topic), self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            wanted = json.loads(text_data or "{}").get("subscribe", [])
        except (ValueError, AttributeError):
            wanted = []
        if not isinstance(wanted, list):
            wanted = []
        allowed, refused = await self._sort_topics(wanted[:MAX_TOPICS])
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


def _valid(topic):
    try:
        group_name(topic)
    except ValueError:
        return False
    return True
