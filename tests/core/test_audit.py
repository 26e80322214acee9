"""Audit: model changes are recorded with their author; PHI views are logged."""

from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.test import RequestFactory

from core.audit import record_phi_access
from core.models import PHIAccess


def test_a_change_to_a_user_is_recorded_with_what_changed(cast):
    cast.clinician.email = "new@hospital.test"
    cast.clinician.save()
    entry = (
        LogEntry.objects.get_for_object(cast.clinician)
        .filter(action=LogEntry.Action.UPDATE)
        .latest("timestamp")
    )
    assert entry.changes_dict["email"] == ["clinician@hospital.test", "new@hospital.test"]


def test_changes_made_through_a_request_name_their_actor(cast, client_for):
    client = client_for(cast.admin)
    cast.admin.is_staff = True
    cast.admin.is_superuser = True
    cast.admin.save()
    client.post(
        f"/admin/auth/user/{cast.clinician.pk}/change/",
        {
            "username": "clinician",
            "email": "changed@hospital.test",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    user = User.objects.get(pk=cast.clinician.pk)
    assert user.email == "changed@hospital.test"
    entry = LogEntry.objects.get_for_object(user).latest("timestamp")
    assert entry.actor == cast.admin


def test_a_view_of_phi_is_logged_without_the_phi_itself(cast):
    request = RequestFactory().get("/inventory/studies/42/?q=DOE^JOHN")
    request.user = cast.engineer
    record_phi_access(request, "inventory.study", object_id=42)
    row = PHIAccess.objects.get()
    assert (row.user, row.what, row.object_id) == (cast.engineer, "inventory.study", "42")
    assert row.path == "/inventory/studies/42/"
    assert "DOE" not in str(row.__dict__)
