"""The engine's upload pipeline adds uploaders while instances wait for a busy one (a
link's latency calls for more uploads in flight), up to its bound, and no more."""

import threading

from migration.engine import Budget, Pipeline
from tests.waiting import wait_for


def test_uploaders_are_added_while_instances_wait_up_to_the_bound():
    release, started = threading.Event(), []

    def slow_put(data):
        started.append(data)
        release.wait()

    pipeline = Pipeline(slow_put, threads=2, max_bytes=10_000, max_threads=5)
    for n in range(8):
        pipeline.submit(bytes([n]) * 100)

    wait_for(lambda: len(started) == 5, message="five uploads in flight")
    assert len(pipeline.threads) == 5
    release.set()
    pipeline.finish()
    assert sorted(data[0] for data in started) == list(range(8))


def test_no_uploader_is_added_while_one_is_idle():
    pipeline = Pipeline(lambda data: None, threads=2, max_bytes=10_000, max_threads=8)
    for _ in range(20):
        pipeline.submit(b"x" * 100)
        wait_for(lambda: pipeline.pending == 0, message="the instance to be stored")
    pipeline.finish()
    assert len(pipeline.threads) == 2


def test_the_bytes_bound_still_caps_what_is_in_flight():
    release, started = threading.Event(), []

    def slow_put(data):
        started.append(data)
        release.wait()

    pipeline = Pipeline(slow_put, threads=1, max_bytes=300, max_threads=10)
    submitter = threading.Thread(
        target=lambda: [pipeline.submit(b"y" * 100) for _ in range(6)], daemon=True
    )
    submitter.start()
    wait_for(lambda: len(started) == 3, message="three uploads in flight")
    submitter.join(1)

    assert submitter.is_alive() and pipeline.pending == 300 and len(started) == 3
    release.set()
    submitter.join()
    pipeline.finish()
    assert len(started) == 6


def test_two_pipelines_sharing_a_budget_hold_no_more_than_it_together():
    release, started = threading.Event(), []

    def slow_put(data):
        started.append(data)
        release.wait()

    budget = Budget(300)
    finishing = Pipeline(slow_put, threads=4, max_bytes=300, budget=budget)
    for _ in range(2):
        finishing.submit(b"a" * 100)
    following = Pipeline(slow_put, threads=4, max_bytes=300, budget=budget)
    submitter = threading.Thread(
        target=lambda: [following.submit(b"b" * 100) for _ in range(3)], daemon=True
    )
    submitter.start()
    wait_for(lambda: len(started) == 3, message="the budget's three instances in flight")
    submitter.join(0.5)

    assert submitter.is_alive(), "the second pipeline waits for the first's uploads"
    assert (budget.used, finishing.pending, following.pending) == (300, 200, 100)
    release.set()
    submitter.join()
    finishing.finish()
    following.finish()
    assert len(started) == 5 and budget.used == 0
