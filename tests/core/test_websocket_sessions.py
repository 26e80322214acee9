"""A websocket lives no longer than its session: logout, idle expiry, deactivation and a
role change close it; and one connection holds a bounded number of topics."""

import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore

from core.access import STAFF
from core.consumers import MAX_TOPICS, EventsConsumer
from core.sessions import CLOSE_ACCESS_CHANGED, CLOSE_SIGNED_OUT, LAST_ACTIVITY

pytestmark = pytest.mark.django_db(transaction=True)


def _logged_in(client, user):
    client.force_login(user)
    return client.session.session_key


async def _open(user, session_key):
    socket = WebsocketCommunicator(EventsConsumer.as_asgi(), "/ws/events/")
    socket.scope["user"] = user
    socket.scope["session"] = SessionStore(session_key)
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"subscribe": ["health"]})
    assert (await socket.receive_json_from(timeout=5))["subscribed"] == ["health"]
    return socket


async def _close_code(socket):
    output = await socket.receive_output(timeout=10)
    assert output["type"] == "websocket.close", output
    return output["code"]


def _scenario(user, session_key, action):
    async def run():
        socket = await _open(user, session_key)
        await sync_to_async(action)()
        return await _close_code(socket)

    return async_to_sync(run)()


def test_logout_closes_the_sessions_websocket(cast, client):
    key = _logged_in(client, cast.staff)
    code = _scenario(cast.staff, key, lambda: client.post("/accounts/logout/"))
    assert code == CLOSE_SIGNED_OUT


def test_a_role_change_closes_the_websocket_so_it_subscribes_again(cast, client):
    key = _logged_in(client, cast.staff)
    code = _scenario(
        cast.staff, key, lambda: cast.staff.groups.remove(Group.objects.get(name=STAFF))
    )
    assert code == CLOSE_ACCESS_CHANGED


def test_a_role_given_through_the_group_closes_the_members_websocket(cast, client):
    key = _logged_in(client, cast.clinician)
    code = _scenario(
        cast.clinician, key, lambda: Group.objects.get(name=STAFF).user_set.add(cast.clinician)
    )
    assert code == CLOSE_ACCESS_CHANGED


def test_deactivating_the_user_closes_the_websocket(cast, client):
    key = _logged_in(client, cast.staff)

    def deactivate():
        cast.staff.is_active = False
        cast.staff.save()

    assert _scenario(cast.staff, key, deactivate) == CLOSE_SIGNED_OUT


def test_an_idle_expired_session_closes_its_websocket_at_the_next_recheck(cast, client, settings):
    settings.WEBSOCKET_RECHECK_SECONDS = 0.2
    key = _logged_in(client, cast.staff)

    def expire():
        session = SessionStore(key)
        session[LAST_ACTIVITY] = time.time() - 16 * 60
        session.save()

    assert _scenario(cast.staff, key, expire) == CLOSE_SIGNED_OUT


def test_an_unrelated_change_to_the_user_leaves_the_websocket_open(cast, client, settings):
    settings.WEBSOCKET_RECHECK_SECONDS = 0.2
    key = _logged_in(client, cast.staff)

    async def run():
        socket = await _open(cast.staff, key)
        cast.staff.first_name = "Sam"
        await sync_to_async(cast.staff.save)()
        quiet = await socket.receive_nothing(timeout=1)
        await socket.disconnect()
        return quiet

    assert async_to_sync(run)()


def test_a_connection_holds_at_most_max_topics(cast, client):
    key = _logged_in(client, cast.admin)
    wanted = [f"inventory.crawl.{n}" for n in range(MAX_TOPICS + 10)]

    async def run():
        socket = await _open(cast.admin, key)  # holds "health" already
        await socket.send_json_to({"subscribe": wanted})
        first = await socket.receive_json_from(timeout=5)
        await socket.send_json_to({"subscribe": ["alerts"]})
        second = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return first, second

    first, second = async_to_sync(run)()
    assert len(first["subscribed"]) == MAX_TOPICS - 1
    assert len(first["refused"]) == 11
    assert second == {"subscribed": [], "refused": ["alerts"]}
