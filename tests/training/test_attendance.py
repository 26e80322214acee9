"""Attendance: the trainer (or the project team) records who came, once the session started."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from tests.conftest import make_user
from training import actions
from training.actions import TrainingError
from training.models import Enrolment


@pytest.fixture
def trainer(db):
    return make_user("trainer", "clinician")


@pytest.fixture
def held_session(cast, new_session, trainer):
    """A session that started an hour ago, with the clinician and the PM enrolled."""
    session = new_session(capacity=5, trainer=trainer)
    for person in (cast.clinician, cast.pm):
        actions.enrol(session.pk, person)
    session.starts_at -= timedelta(days=2, hours=1)
    session.ends_at -= timedelta(days=2, hours=1)
    session.save()
    return session


def test_the_trainer_marks_who_came_and_everyone_else_absent(cast, held_session, trainer):
    result = actions.record_attendance(held_session.pk, trainer, [cast.clinician.pk])
    assert result == {"present": 1, "absent": 1}
    attended = dict(held_session.enrolments.values_list("user__username", "attended"))
    assert attended == {"clinician": True, "pm": False}
    assert held_session.enrolments.get(user=cast.clinician).attendance_by == trainer


def test_the_project_team_may_take_attendance_but_a_clinician_may_not(cast, held_session):
    actions.record_attendance(held_session.pk, cast.pm, [cast.pm.pk])
    with pytest.raises(PermissionDenied):
        actions.record_attendance(held_session.pk, cast.clinician, [cast.clinician.pk])


def test_attendance_waits_until_the_session_starts(cast, new_session, trainer):
    session = new_session(trainer=trainer)
    actions.enrol(session.pk, cast.clinician)
    with pytest.raises(TrainingError, match="once the session has started"):
        actions.record_attendance(session.pk, trainer, [cast.clinician.pk])


def test_only_enrolled_people_can_be_marked_present(cast, held_session, trainer):
    with pytest.raises(TrainingError, match="Only people enrolled"):
        actions.record_attendance(held_session.pk, trainer, [cast.staff.pk])
    assert not Enrolment.objects.filter(attended__isnull=False).exists()


def test_the_trainer_sees_the_roster_and_saves_attendance_from_the_page(
    cast, held_session, trainer, client_for
):
    client = client_for(trainer)
    page = client.get(reverse("training:session", args=[held_session.pk])).content.decode()
    assert "Roster and attendance" in page and f'value="{cast.clinician.pk}"' in page
    response = client.post(
        reverse("training:session_attendance", args=[held_session.pk]),
        {"present": [cast.clinician.pk, cast.pm.pk]},
        follow=True,
    )
    assert "Attendance saved: 2 present." in response.content.decode()


def test_clinicians_do_not_see_the_roster(cast, held_session, client_for):
    page = client_for(cast.clinician).get(reverse("training:session", args=[held_session.pk]))
    assert "Roster and attendance" not in page.content.decode()
