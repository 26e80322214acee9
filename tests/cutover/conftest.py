import pytest

from core.events import subscribe_local

_RECORDED = []
_REGISTERED = []


def _record(topic, message):
    _RECORDED.append((topic, message))


@pytest.fixture
def published():
    """Events published (after commit) during the test: [(topic, message)]."""
    if not _REGISTERED:
        subscribe_local(_record)
        _REGISTERED.append(True)
    _RECORDED.clear()
    yield _RECORDED
    _RECORDED.clear()


@pytest.fixture
def integration(db):
    from inventory.models import Integration

    return Integration.objects.create(
        name="RIS orders",
        kind=Integration.Kind.RIS,
        protocol=Integration.Protocol.HL7V2,
        direction=Integration.Direction.BOTH,
        owner="Interface team",
        endpoint="127.0.0.1:2575",
    )
