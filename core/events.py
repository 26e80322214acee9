"""The one way a state change reaches the browser.

`publish(topic, payload, html=None)` serialises the message once and, after the
current database transaction commits, sends it to the Channels group of the topic.
Each websocket consumer forwards the ready text unchanged, so a message is
rendered once per event, never once per client. Screens subscribe to topics;
they never poll.
"""

import asyncio
import json
import logging
import re
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

log = logging.getLogger(__name__)

TOPIC_RE = re.compile(r"^[a-z][a-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
_listeners = []
_dispatching = threading.local()


def group_name(topic):
    """Channels group for a topic (group names allow letters, digits, - _ and .)."""
    if not TOPIC_RE.match(topic) or len(topic) > 90:
        raise ValueError(f"bad topic {topic!r}")
    return f"t.{topic}"


def publish(topic, payload, html=None):
    """Send `payload` (and an optional rendered `html` fragment) to `topic` after commit."""
    group = group_name(topic)
    message = {"topic": topic, "data": payload, "ts": time.time()}
    if html is not None:
        message["html"] = html
    text = json.dumps(message, cls=DjangoJSONEncoder)
    transaction.on_commit(lambda: _send(topic, group, text, message))


def subscribe_local(callback):
    """Register an in-process listener `callback(topic, message)`.

    This is the seam between apps: e.g. the command center turns migration failures
    into tickets by listening here, without the engine importing the command center.
    """
    _listeners.append(callback)
    return callback


def _send(topic, group, text, message):
    """Deliver one event; events that listeners publish meanwhile are delivered after it,
    in order (breadth-first), so every listener hears events in the order they happened."""
    pending = getattr(_dispatching, "queue", None)
    if pending is not None:
        pending.append((topic, group, text, message))
        return
    _dispatching.queue = pending = [(topic, group, text, message)]
    try:
        while pending:
            _deliver(*pending.pop(0))
    finally:
        _dispatching.queue = None


def _deliver(topic, group, text, message):
    """Browsers first (they wait on it), then the in-process listeners (some are slow)."""
    layer = get_channel_layer()
    if layer is not None:
        _to_browsers(layer, topic, group, text)
    for callback in list(_listeners):
        try:
            callback(topic, message)
        except Exception:
            log.exception("event listener failed for topic %s", topic)


def _to_browsers(layer, topic, group, text):
    _run_outside_loop(_group_send, layer, group, {"type": "event.message", "text": text}, topic)


def _run_outside_loop(send, *args):
    if _loop_running_here():
        # async_to_sync refuses to run inside a running event loop (async callers, or a test
        # driving Playwright); send from a short-lived thread instead.
        sender = threading.Thread(target=send, args=args)
        sender.start()
        sender.join()
    else:
        send(*args)


def _group_send(layer, group, message, what):
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception as exc:  # the database change stands; the screen catches up on reload
        log.warning("could not publish event on %s: %s", what, exc)


def control(group, message):
    """Send a control message (not an event: e.g. "close your socket") to the consumers in
    a Channels group, after the current transaction commits."""

    def send():
        layer = get_channel_layer()
        if layer is not None:
            _run_outside_loop(_group_send, layer, group, message, group)

    transaction.on_commit(send)


def _loop_running_here():
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
