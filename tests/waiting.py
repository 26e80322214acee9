"""The one way tests wait for something another process or thread does: poll."""

import time

import pytest


def wait_for(condition, timeout=120, interval=0.2, message="the condition", process=None):
    """Poll `condition()` until it returns something truthy and return that.

    After `timeout` seconds, or as soon as `process` (a Popen we wait on) has exited, fail
    the test saying what it waited for; `message` may be a function (e.g. a log tail),
    called only then. The timeout is generous: the machine may be shared, and a passing
    test never waits for it."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process exited while waiting for {_text(message)}")
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout}s for {_text(message)}")
        time.sleep(interval)


def _text(message):
    return message() if callable(message) else message
