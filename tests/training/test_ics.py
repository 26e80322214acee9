"""Calendar files (RFC 5545): per session and per person, without any external service."""

from datetime import UTC, datetime, timedelta

from django.urls import reverse

from training import actions, ics
from training.models import Material


def unfold(body):
    """RFC 5545 3.1: a CRLF followed by one space or tab continues the previous line."""
    return body.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")


def fields(lines, name):
    return [line.split(":", 1)[1] for line in lines if line.split(":", 1)[0].split(";")[0] == name]


def test_lines_end_in_crlf_and_fold_at_75_octets_without_breaking_characters():
    line = "DESCRIPTION:" + "Ünïcödé, ÿes; " * 20
    folded = ics.fold(line)
    parts = folded.split("\r\n")
    assert all(len(part.encode("utf-8")) <= 75 for part in parts)
    assert all(part.startswith(" ") for part in parts[1:])
    assert folded.replace("\r\n ", "") == line


def test_text_values_are_escaped():
    assert ics.escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_a_session_calendar_has_one_event_with_utc_times(new_session, cast):
    session = new_session(title="Cloud viewer, hands-on; part 1", trainer=cast.pm)
    session.starts_at = datetime(2030, 3, 4, 9, 30, tzinfo=UTC)
    session.ends_at = session.starts_at + timedelta(hours=2)
    session.virtual_link = "https://meet.hospital.test/room-7"
    session.save()
    Material.objects.create(session=session, title="Quick guide", url="https://intranet.test/g")

    body = ics.session_calendar(session, url="http://cc.test/training/sessions/1/")
    assert body.endswith("\r\n") and "\n" not in body.replace("\r\n", "")
    lines = unfold(body)
    assert lines[:2] == ["BEGIN:VCALENDAR", "VERSION:2.0"]
    assert fields(lines, "PRODID") and lines.count("BEGIN:VEVENT") == 1
    assert fields(lines, "UID") == [f"training-session-{session.pk}@training.command-center"]
    assert fields(lines, "DTSTART") == ["20300304T093000Z"]
    assert fields(lines, "DTEND") == ["20300304T113000Z"]
    assert fields(lines, "SUMMARY") == ["Cloud viewer\\, hands-on\\; part 1"]
    assert fields(lines, "STATUS") == ["CONFIRMED"]
    assert "Quick guide: https://intranet.test/g" in fields(lines, "DESCRIPTION")[0]
    assert fields(lines, "ORGANIZER") == ["mailto:pm@hospital.test"]
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))


def test_a_persons_calendar_lists_seats_waitlist_places_and_cancellations(new_session, cast):
    sessions = [new_session(capacity=1, title=f"S{i}") for i in range(4)]
    actions.enrol(sessions[0].pk, cast.clinician)
    actions.cancel(sessions[0].pk, cast.clinician)
    actions.enrol(sessions[1].pk, cast.pm)
    actions.enrol(sessions[1].pk, cast.clinician)  # full: waitlisted
    actions.enrol(sessions[2].pk, cast.clinician)
    actions.enrol(sessions[3].pk, cast.pm)  # not the clinician's

    enrolments = cast.clinician.training_enrolments.select_related("session__module")
    lines = unfold(ics.person_calendar(cast.clinician, enrolments))
    assert lines.count("BEGIN:VEVENT") == 3
    assert sorted(fields(lines, "STATUS")) == ["CANCELLED", "CONFIRMED", "TENTATIVE"]
    assert "S1 (waitlist)" in fields(lines, "SUMMARY")


def test_the_calendar_downloads_are_text_calendar_attachments(new_session, cast, client_for):
    session = new_session()
    actions.enrol(session.pk, cast.clinician)
    client = client_for(cast.clinician)
    one = client.get(reverse("training:session_ics", args=[session.pk]))
    assert one["Content-Type"] == "text/calendar; charset=utf-8"
    assert 'filename="training-session-' in one["Content-Disposition"]
    mine = client.get(reverse("training:my_ics")).content.decode()
    assert f"URL:http://testserver/training/sessions/{session.pk}/" in unfold(mine)
