"""The shift roster: on call across handoffs, rotation wrap-around, overrides, handoff notes."""

from datetime import timedelta

import pytest

from desk import roster
from desk.models import Rotation
from tests.conftest import make_user
from tests.desk.ticketing import T0

H = timedelta(hours=1)


@pytest.fixture
def people(db):
    return [make_user(name, "command_center_staff") for name in ("ana", "ben", "chloe")]


@pytest.fixture
def primary(people):
    """12-hour shifts handing off at 07:00 and 19:00: ana, ben, chloe, ana, …"""
    rotation = Rotation.objects.create(
        name="Primary", role_label="Primary on call", starts_at=T0.replace(hour=7)
    )
    for person in people:
        roster.add_member(rotation, person, contact=f"+41 79 {person.username}")
    return rotation


@pytest.fixture
def lead_rotation(cast):
    rotation = Rotation.objects.create(
        name="Lead",
        role_label="Lead on call",
        starts_at=T0.replace(hour=7),
        shift_hours=24,
        is_lead=True,
    )
    roster.add_member(rotation, cast.lead)
    return rotation


def names(at):
    return [(p["name"], p["role"]) for p in roster.on_call_now(at)]


@pytest.mark.parametrize(
    "hour,who",
    [
        (7, "ana"),
        (18.99, "ana"),
        (19, "ben"),
        (30.99, "ben"),
        (31, "chloe"),
        (43, "ana"),
        (43 + 36, "ana"),
    ],
)
def test_on_call_changes_exactly_at_each_handoff_and_wraps_around(primary, hour, who):
    at = T0.replace(hour=0) + timedelta(hours=hour)
    assert names(at) == [(who, "Primary on call")]


def test_nobody_is_on_call_before_the_rotation_starts(primary):
    assert roster.on_call_now(T0.replace(hour=6, minute=59)) == []


def test_on_call_now_reports_name_role_and_contact_lead_rotations_first(primary, lead_rotation):
    assert roster.on_call_now(T0.replace(hour=9)) == [
        {"name": "lead", "role": "Lead on call", "contact": "lead@hospital.test"},
        {"name": "ana", "role": "Primary on call", "contact": "+41 79 ana"},
    ]


def test_an_override_covers_part_of_a_shift_and_then_hands_back(primary, people, cast):
    seven = T0.replace(hour=7)
    roster.add_override(primary, people[2], seven + 2 * H, seven + 5 * H, created_by=cast.lead)
    assert names(seven + 1 * H)[0][0] == "ana"
    assert names(seven + 2 * H)[0][0] == "chloe"
    assert names(seven + 4.99 * H)[0][0] == "chloe"
    assert names(seven + 5 * H)[0][0] == "ana"


def test_the_latest_override_wins_when_two_overlap(primary, people):
    seven = T0.replace(hour=7)
    roster.add_override(primary, people[1], seven, seven + 10 * H)
    roster.add_override(primary, people[2], seven + 1 * H, seven + 2 * H)
    assert names(seven + 1.5 * H)[0][0] == "chloe"
    assert names(seven + 3 * H)[0][0] == "ben"


def test_an_override_must_end_after_it_starts(primary, people):
    with pytest.raises(roster.RosterError):
        roster.add_override(primary, people[0], T0, T0)


def test_the_schedule_lists_the_coming_shifts_with_overrides(primary, people):
    seven = T0.replace(hour=7)
    roster.add_override(primary, people[2], seven + 12 * H, seven + 24 * H)
    shifts = roster.schedule(primary, seven + 1 * H, hours=30)
    assert [(s["start"].hour, s["user"].username, s["override"]) for s in shifts] == [
        (7, "ana", False),
        (19, "chloe", True),
        (7, "chloe", False),
    ]


def test_the_next_shift_acknowledges_the_handoff_note(primary, people):
    seven = T0.replace(hour=7)
    note = roster.write_handoff(
        primary, people[0], "PACS slow since 15:00; ticket #12", seven + 10 * H
    )
    assert note.shift_start == seven
    with pytest.raises(roster.RosterError, match="next shift begins"):
        roster.acknowledge_handoff(note, people[1], seven + 11 * H)
    with pytest.raises(roster.RosterError, match="only the person on call"):
        roster.acknowledge_handoff(note, people[2], seven + 12 * H)
    assert roster.pending_handoffs(seven + 12 * H) == [note]
    roster.acknowledge_handoff(note, people[1], seven + 12 * H)
    assert note.acknowledged_by == people[1]
    assert roster.pending_handoffs(seven + 13 * H) == []
    with pytest.raises(roster.RosterError, match="already acknowledged"):
        roster.write_handoff(primary, people[0], "one more thing", seven + 11 * H)


def test_a_lead_may_acknowledge_for_an_absent_next_shift(primary, people, cast):
    seven = T0.replace(hour=7)
    note = roster.write_handoff(primary, people[0], "Quiet night", seven + 1 * H)
    roster.acknowledge_handoff(note, cast.lead, seven + 13 * H, may_override=True)
    assert note.acknowledged_by == cast.lead


def test_an_empty_handoff_note_is_refused(primary, people):
    with pytest.raises(roster.RosterError, match="needs some text"):
        roster.write_handoff(primary, people[0], "   ", T0.replace(hour=9))


def test_leads_build_a_rotation_through_the_api_and_anyone_on_call_duty_reads_it(
    cast, client_for, people
):
    payload = {
        "name": "Night desk",
        "role_label": "Night on call",
        "starts_at": "2026-03-02T19:00:00Z",
        "shift_hours": 12,
        "members": [
            {"user": people[0].pk, "position": 1, "contact": "+41 1"},
            {"user": people[1].pk, "position": 2, "contact": "+41 2"},
        ],
    }
    url = "/command-center/api/rotations/"
    assert (
        client_for(cast.staff).post(url, payload, content_type="application/json").status_code
        == 403
    )
    response = client_for(cast.lead).post(url, payload, content_type="application/json")
    assert response.status_code == 201, response.content
    rotation = Rotation.objects.get(name="Night desk")
    assert [m.user for m in rotation.members.all()] == people[:2]
    at = "2026-03-03T08:00:00Z"  # the second shift began at 07:00
    on_call = client_for(cast.pm).get(f"/command-center/api/on-call/?at={at}").json()
    assert on_call == [{"name": "ben", "role": "Night on call", "contact": "+41 2"}]
    assert client_for(cast.pm).get("/command-center/api/on-call/?at=soon").status_code == 400


def test_handoff_notes_through_the_api_refuse_an_early_acknowledgement(
    cast, client_for, primary, people
):
    response = client_for(people[0]).post(
        "/command-center/api/handoffs/",
        {"rotation": primary.pk, "body": "Worklist slow"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    note = response.json()
    early = client_for(cast.lead).post(f"/command-center/api/handoffs/{note['id']}/acknowledge/")
    assert early.status_code == 409 and "next shift begins" in early.json()["detail"]


def test_only_leads_change_monitoring_thresholds(cast, client_for):
    payload = {"name": "Backlog", "metric": "queue_depth", "comparison": "above", "threshold": 50}
    url = "/command-center/api/monitors/"
    assert client_for(cast.engineer).get(url).status_code == 200
    assert (
        client_for(cast.engineer).post(url, payload, content_type="application/json").status_code
        == 403
    )
    assert (
        client_for(cast.lead).post(url, payload, content_type="application/json").status_code == 201
    )
