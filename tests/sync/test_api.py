"""The interfaces others script against: `pacs sync NAME --on|--off|--status --json`, the
REST endpoints (in the OpenAPI schema) with their access rules, and the pages; an
appointment's patient only for `view_phi`, each view recorded."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from core.models import PHIAccess
from inventory.models import PacsSource, Study
from migration.models import Destination, StudyState, Wave, WaveStudy
from sync.models import Appointment, AppointmentPrior, SyncSource

pytestmark = pytest.mark.django_db
PATIENT = "API-PAT-42"


@pytest.fixture
def source():
    return PacsSource.objects.create(name="legacy", ae_title="PACS", host="127.0.0.1", port=104)


@pytest.fixture
def destination():
    return Destination.objects.create(name="cloud", kind="filesystem", path="/tmp/cc-sync")


def run(*args):
    out = StringIO()
    call_command("pacs", "sync", *args, stdout=out)
    return out.getvalue().strip()


def test_pacs_sync_on_status_and_off(source, destination):
    assert json.loads(run("legacy", "--status", "--json")) == {
        "enabled": False, "lag_p50_s": None, "lag_p95_s": None, "oldest_unsynced_s": None,
        "pending": 0,
    }  # fmt: skip
    with pytest.raises(CommandError, match="no destination"):
        run("legacy", "--on")
    assert "sync on, every 3 min to cloud" in run("legacy", "--on", "--every", "3",
                                                  "--destination", "cloud")  # fmt: skip
    sync = SyncSource.objects.get(source=source)
    assert sync.enabled and sync.every_minutes == 3 and sync.next_crawl_at is not None
    status = json.loads(run("legacy", "--status", "--json").splitlines()[-1])
    assert status["enabled"] is True and status["pending"] == 0
    assert {"lag_p50_s", "lag_p95_s", "oldest_unsynced_s"} <= set(status)
    assert "sync off" in run("legacy", "--off")
    assert json.loads(run("legacy", "--status", "--json"))["enabled"] is False


def test_the_api_reads_for_migration_viewers_and_changes_for_engineers_and_leads(
    cast, client_for, source, destination
):
    url = "/sync/api/sources/legacy/"
    assert client_for(cast.clinician).get(url).status_code == 403
    assert client_for(cast.pm).get("/sync/api/sources/").json()[0]["enabled"] is False
    turn_on = {"enabled": True, "every_minutes": 2, "destination": "cloud"}
    assert (
        client_for(cast.staff).post(url, turn_on, content_type="application/json").status_code
        == 403
    )
    answer = client_for(cast.lead).post(url, turn_on, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["enabled"] is True
    assert answer.json()["every_minutes"] == 2 and answer.json()["destination"] == "cloud"
    off = client_for(cast.engineer).post(url, {"enabled": False}, content_type="application/json")
    assert off.status_code == 200 and off.json()["enabled"] is False
    bad = client_for(cast.engineer).post(url, {"enabled": True, "every_minutes": 0},
                                         content_type="application/json")  # fmt: skip
    assert bad.status_code == 400


def test_the_schema_lists_the_sync_and_appointment_endpoints(cast, client_for):
    schema = client_for(cast.engineer).get("/api/schema/", {"format": "json"}).json()
    assert {"/sync/api/sources/", "/sync/api/sources/{name}/", "/sync/api/appointments/"} <= set(
        schema["paths"]
    )
    assert "post" in schema["paths"]["/sync/api/sources/{name}/"]


@pytest.fixture
def appointment(source, destination):
    study = Study.objects.create(source=source, study_uid="1.2.3.9", patient_id=PATIENT)
    wave = Wave.objects.create(name="w", source=source, destination=destination)
    WaveStudy.objects.create(wave=wave, study=study, state=StudyState.DONE)
    booked = Appointment.objects.create(
        control_id="C1", message_type="SIU^S12", patient_id=PATIENT, issuer="HOSP", modality="CT",
        scheduled_at=timezone.now() + timedelta(hours=2), raw="MSH|…", state="queued",
    )  # fmt: skip
    AppointmentPrior.objects.create(appointment=booked, study=study, rank=0, outcome="done")
    return booked


def test_appointments_show_the_patient_only_to_roles_with_phi_and_record_it(
    cast, client_for, appointment
):
    seen = client_for(cast.engineer).get("/sync/api/appointments/").json()
    assert seen[0]["patient_id"] == PATIENT and seen[0]["ready"] == seen[0]["priors"] == 1
    assert PHIAccess.objects.filter(user=cast.engineer, what="sync.appointment").exists()
    hidden = client_for(cast.pm).get("/sync/api/appointments/").json()
    assert "patient_id" not in hidden[0] and hidden[0]["all_ready"] is True
    assert not PHIAccess.objects.filter(user=cast.pm).exists()
    page = client_for(cast.pm).get("/sync/appointments/").content.decode()
    assert "1 of 1" in page and PATIENT not in page
    page = client_for(cast.engineer).get("/sync/appointments/").content.decode()
    assert PATIENT in page


def test_the_sync_page_offers_the_switch_only_to_those_who_may_use_it(
    cast, client_for, source, destination
):
    SyncSource.objects.create(source=source, destination=destination, enabled=True)
    assert "Turn sync off" in client_for(cast.lead).get("/sync/").content.decode()
    page = client_for(cast.staff).get("/sync/").content.decode()
    assert "p95 lag" in page and "Turn sync off" not in page
    refused = client_for(cast.staff).post("/sync/sources/legacy/toggle/", {"enabled": "0"})
    assert refused.status_code == 403
    client_for(cast.engineer).post("/sync/sources/legacy/toggle/", {"enabled": "0"})
    assert SyncSource.objects.get(source=source).enabled is False
