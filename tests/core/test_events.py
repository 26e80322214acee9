"""Events: published once, after commit, only to subscribers allowed to see the topic."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from core.consumers import EventsConsumer
from core.events import group_name, publish, subscribe_local

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user, topics):
    communicator = WebsocketCommunicator(EventsConsumer.as_asgi(), "/ws/events/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"subscribe": topics})
    return communicator, await communicator.receive_json_from(timeout=5)


def test_a_subscriber_receives_an_event_with_its_rendered_html(cast):
    async def scenario():
        socket, ack = await _connect(cast.staff, ["board"])
        assert ack == {"subscribed": ["board"], "refused": []}
        await sync_to_async(publish)("board", {"ticket": 7}, html="<li>Ticket 7</li>")
        message = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message["topic"] == "board"
    assert message["data"] == {"ticket": 7}
    assert message["html"] == "<li>Ticket 7</li>"


def test_nothing_is_sent_before_the_commit_nor_after_a_rollback(cast):
    def publish_in_transaction(commit):
        try:
            with transaction.atomic():
                publish("board", {"commit": commit})
                if not commit:
                    raise RuntimeError("rolled back")
        except RuntimeError:
            pass

    async def scenario():
        socket, _ = await _connect(cast.lead, ["board"])
        await sync_to_async(publish_in_transaction)(False)
        silent = await socket.receive_nothing(timeout=0.5)
        await sync_to_async(publish_in_transaction)(True)
        message = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return silent, message

    silent, message = async_to_sync(scenario)()
    assert silent
    assert message["data"] == {"commit": True}


def test_topics_a_role_may_not_see_are_refused_and_never_delivered(cast):
    async def scenario():
        socket, ack = await _connect(cast.clinician, ["board", "health", "bad topic!"])
        await sync_to_async(publish)("board", {"secret": True})
        silent = await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        return ack, silent

    ack, silent = async_to_sync(scenario)()
    assert ack == {"subscribed": ["health"], "refused": ["bad topic!", "board"]}
    assert silent


def test_an_anonymous_websocket_is_closed():
    async def scenario():
        communicator = WebsocketCommunicator(EventsConsumer.as_asgi(), "/ws/events/")
        communicator.scope["user"] = AnonymousUser()
        return await communicator.connect()

    connected, code = async_to_sync(scenario)()
    assert not connected and code == 4401


def test_in_process_listeners_hear_every_event_after_commit():
    heard = []

    def hear(topic, message):
        if topic.startswith("migration."):
            heard.append((topic, message["data"]))

    listener = subscribe_local(hear)
    try:
        with transaction.atomic():
            publish("migration.wave.3", {"state": "failed"})
            assert heard == []
        assert heard == [("migration.wave.3", {"state": "failed"})]
    finally:
        from core import events

        events._listeners.remove(listener)


def test_malformed_topics_are_rejected():
    with pytest.raises(ValueError):
        group_name("Board; DROP")
    assert group_name("inventory.crawl.12") == "t.inventory.crawl.12"
