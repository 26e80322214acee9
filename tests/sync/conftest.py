"""Fixtures of the sync tests: the engine's (tests/fixtures_engine.py, shared with the
migration tests so both run the engine the same way) and an in-process MLLP listener on
a free loopback port."""

import asyncio
import threading

import pytest


@pytest.fixture(autouse=True)
def engine_suite(clean_engine_redis):
    """Engine settings for the session; no leftover slots or tasks from an earlier test."""


@pytest.fixture
def mllp_listener(transactional_db):
    """The product's MLLP listener (sync.listener.Listener) on a free loopback port, in a
    thread with its own event loop; `.port`."""
    from sync.listener import Listener

    loop = asyncio.new_event_loop()
    listener = Listener("127.0.0.1", 0)
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(listener.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "the MLLP listener did not start"
    yield listener
    asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
