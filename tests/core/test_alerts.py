"""The alert seam: one event per problem, after commit, validated."""

import pytest
from django.db import transaction

from core import events
from core.alerts import raise_alert


@pytest.fixture
def heard():
    received = []

    def hear(topic, message):
        if topic.startswith("alerts."):
            received.append((topic, message))

    listener = events.subscribe_local(hear)
    yield received
    events._listeners.remove(listener)


@pytest.mark.django_db(transaction=True)
def test_an_alert_is_published_on_its_source_topic_after_commit(heard):
    with transaction.atomic():
        raise_alert(
            "migration",
            "migration.study_failed.wave-3",
            "Study failed in wave 3",
            category="missing/incorrect images",
            impact="high",
            links={"wave": 3},
        )
        assert heard == []
    topic, message = heard[0]
    assert topic == "alerts.migration"
    assert message["data"]["cause"] == "migration.study_failed.wave-3"
    assert message["data"]["links"] == {"wave": 3}


def test_unknown_sources_and_levels_are_refused():
    with pytest.raises(ValueError):
        raise_alert("gossip", "x", "y")
    with pytest.raises(ValueError):
        raise_alert("migration", "x", "y", impact="catastrophic")
