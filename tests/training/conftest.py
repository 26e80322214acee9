"""Training test helpers: departments, modules, sessions and clinicians built in one line."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from core import events
from core.access import CLINICIAN
from tests.conftest import make_user
from training import actions
from training.models import Department, TrainingSession

CHECKLIST = ["Open a study", "Compare with priors", "Measure", "Use hanging protocols"]


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Uploads go to a temporary MEDIA_ROOT, never the repository."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def heard():
    """Every event published during the test, as (topic, message)."""
    received = []
    listener = events.subscribe_local(lambda topic, message: received.append((topic, message)))
    yield received
    events._listeners.remove(listener)


@pytest.fixture
def module(db):
    return actions.create_module("Cloud viewer essentials", items=CHECKLIST)


@pytest.fixture
def new_session(module):
    """new_session(capacity=2, starts_in=timedelta(days=2), **fields) -> TrainingSession."""

    def create(capacity=2, starts_in=timedelta(days=2), of=None, **fields):
        starts = timezone.now() + starts_in
        return TrainingSession.objects.create(
            module=of or module,
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
            capacity=capacity,
            location=fields.pop("location", "Radiology seminar room 2"),
            **fields,
        )

    return create


@pytest.fixture
def clinician_in(db):
    """clinician_in("Radiology", "alice", lead=False) -> a clinician user in that department."""

    def create(department, username, lead=False, role=CLINICIAN):
        user = make_user(username, role)
        dept, _ = Department.objects.get_or_create(name=department)
        actions.set_profile(user, department=dept, is_lead=lead)
        return user

    return create


def png_bytes(size=(32, 32), colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def noisy_png_bytes(n_bytes):
    """A valid PNG of at least `n_bytes` (random pixels do not compress)."""
    import os

    side = int((n_bytes / 3) ** 0.5) + 8
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
