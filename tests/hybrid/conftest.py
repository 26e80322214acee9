"""The hybrid tests run the engine: its fixtures live in tests/fixtures_engine.py."""

import pytest


@pytest.fixture(autouse=True)
def engine_suite(clean_engine_redis):
    """Engine settings for the session; no leftover slots or tasks from an earlier test."""
