"""Enrolment: seats, the waitlist, cancellation promoting the next person, and refusals."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from tests.conftest import make_user
from training import actions
from training.actions import TrainingError
from training.models import Department, Enrolment


def statuses(session):
    return {e.user.username: e.status for e in session.enrolments.select_related("user")}


def test_people_beyond_capacity_go_on_the_waitlist_in_order(cast, new_session):
    session = new_session(capacity=2)
    people = [cast.clinician, cast.pm, cast.staff, cast.lead]
    results = [actions.enrol(session.pk, person).status for person in people]
    assert results == ["enrolled", "enrolled", "waitlisted", "waitlisted"]
    assert actions.seat_counts(session) == {
        "capacity": 2,
        "enrolled": 2,
        "waitlisted": 2,
        "seats_left": 0,
        "attended": 0,
    }


def test_cancelling_a_seat_promotes_the_first_person_on_the_waitlist(cast, new_session):
    session = new_session(capacity=1)
    for person in (cast.clinician, cast.pm, cast.staff):
        actions.enrol(session.pk, person)

    cancelled, promoted = actions.cancel(session.pk, cast.clinician)

    assert cancelled.status == "cancelled"
    assert [e.user for e in promoted] == [cast.pm]
    assert statuses(session) == {"clinician": "cancelled", "pm": "enrolled", "staff": "waitlisted"}


def test_leaving_the_waitlist_promotes_nobody(cast, new_session):
    session = new_session(capacity=1)
    for person in (cast.clinician, cast.pm, cast.staff):
        actions.enrol(session.pk, person)
    _, promoted = actions.cancel(session.pk, cast.pm)
    assert promoted == []
    assert statuses(session)["staff"] == "waitlisted"


def test_someone_who_cancelled_can_enrol_again_at_the_back_of_the_queue(cast, new_session):
    session = new_session(capacity=1)
    actions.enrol(session.pk, cast.clinician)
    actions.enrol(session.pk, cast.pm)
    actions.cancel(session.pk, cast.clinician)  # pm gets the seat
    assert actions.enrol(session.pk, cast.clinician).status == "waitlisted"
    assert Enrolment.objects.filter(session=session, user=cast.clinician).count() == 1


def test_enrolling_twice_is_refused_with_a_clear_message(cast, new_session):
    session = new_session(capacity=1)
    actions.enrol(session.pk, cast.clinician)
    actions.enrol(session.pk, cast.pm)
    with pytest.raises(TrainingError, match="already enrolled"):
        actions.enrol(session.pk, cast.clinician)
    with pytest.raises(TrainingError, match="already on the waitlist"):
        actions.enrol(session.pk, cast.pm)


def test_sessions_that_have_started_take_no_enrolments_or_cancellations(cast, new_session):
    session = new_session(starts_in=timedelta(hours=-1))
    with pytest.raises(TrainingError, match="already started"):
        actions.enrol(session.pk, cast.clinician)
    Enrolment.objects.create(session=session, user=cast.pm, status="enrolled")
    with pytest.raises(TrainingError, match="already started"):
        actions.cancel(session.pk, cast.pm)


def test_a_session_for_a_department_refuses_others(clinician_in, new_session):
    radiology = clinician_in("Radiology", "rad")
    cardiology = clinician_in("Cardiology", "cardio")
    session = new_session()
    session.audience_departments.add(Department.objects.get(name="Radiology"))
    assert actions.enrol(session.pk, radiology).status == "enrolled"
    with pytest.raises(TrainingError, match="This session is for: Radiology"):
        actions.enrol(session.pk, cardiology)


def test_more_seats_on_an_edited_session_promote_from_the_waitlist(cast, new_session):
    from training.forms import SessionForm

    session = new_session(capacity=1)
    for person in (cast.clinician, cast.pm, cast.staff):
        actions.enrol(session.pk, person)
    data = {
        "module": session.module_id,
        "starts_at": session.starts_at.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": session.ends_at.strftime("%Y-%m-%dT%H:%M"),
        "location": session.location,
        "capacity": 3,
    }
    form = SessionForm(data, instance=session)
    assert form.is_valid(), form.errors
    actions.save_session(form, cast.pm)
    assert set(statuses(session).values()) == {"enrolled"}


def test_each_change_publishes_the_seats_and_tells_the_person(
    cast, new_session, heard, django_capture_on_commit_callbacks
):
    session = new_session(capacity=1)
    actions.enrol(session.pk, cast.clinician)
    actions.enrol(session.pk, cast.pm)
    with django_capture_on_commit_callbacks(execute=True):
        actions.cancel(session.pk, cast.clinician)
    topics = [topic for topic, _ in heard]
    assert f"training.session.{session.pk}" in topics
    to_pm = [m for t, m in heard if t == f"user.{cast.pm.pk}"]
    assert to_pm and "you are now enrolled" in to_pm[0]["data"]["notice"]
    seats = next(m for t, m in heard if t == f"training.session.{session.pk}")
    assert seats["data"]["seats_left"] == 0 and "Full" in seats["html"]


@pytest.mark.django_db(transaction=True)
def test_two_clinicians_taking_the_last_seat_at_once_get_one_seat_and_one_waitlist(new_session):
    session = new_session(capacity=1)
    people = [make_user(f"racer{i}", "clinician") for i in range(2)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def take_seat(person):
        try:
            barrier.wait(timeout=10)
            results.append(actions.enrol(session.pk, person).status)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=take_seat, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(results) == ["enrolled", "waitlisted"]
    assert session.enrolments.filter(status="enrolled").count() == 1


def test_the_enrol_button_enrols_and_a_second_press_explains(cast, client_for, new_session):
    session = new_session(capacity=1)
    client = client_for(cast.clinician)
    url = reverse("training:session_enrol", args=[session.pk])
    response = client.post(url, follow=True)
    assert "You are enrolled in" in response.content.decode()
    response = client.post(url, follow=True)
    assert "You are already enrolled in this session." in response.content.decode()


def test_the_enrol_button_on_a_past_session_explains(cast, client_for, new_session):
    session = new_session(starts_in=timedelta(days=-1))
    response = client_for(cast.clinician).post(
        reverse("training:session_enrol", args=[session.pk]), follow=True
    )
    assert "This session has already started" in response.content.decode()
    assert not Enrolment.objects.exists()
