"""The migration pages and API: who may see and do what, forms that say what is wrong,
no PHI where it does not belong, and the mapping preview on a real instance."""

import io
import json

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from core.models import PHIAccess
from inventory.models import PacsSource, Study
from migration import dispatch
from migration.models import (
    Conflict,
    Destination,
    EngineControl,
    MappingProfile,
    StudyState,
    Wave,
    WaveState,
    WaveStudy,
)
from tests.migration.support import wait_for

pytestmark = pytest.mark.django_db

VIEWERS = ("engineer", "pm", "staff", "lead", "admin")
OPERATORS = ("engineer", "admin")


@pytest.fixture
def inventory():
    source = PacsSource.objects.create(name="legacy", ae_title="LEGACY", host="127.0.0.1", port=104)
    studies = [
        Study.objects.create(
            source=source,
            study_uid=f"1.2.826.0.1.{n}",
            patient_id=f"PID{n:03d}",
            patient_name=f"Doe^Jane{n}",
            accession_number=f"ACC{n:03d}",
            modalities="CT" if n % 2 else "MR",
        )  # fmt: skip
        for n in range(6)
    ]
    return source, studies


@pytest.fixture
def wave(inventory, tmp_path):
    source, studies = inventory
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    wave = Wave.objects.create(name="wave-one", source=source, destination=destination)
    for study in studies:
        WaveStudy.objects.create(wave=wave, study=study)
    return wave


@pytest.mark.parametrize("page", ["index", "destinations", "profiles", "conflicts"])
def test_migration_pages_are_for_roles_that_view_migration(cast, client_for, page):
    url = reverse(f"migration:{page}")
    for name in VIEWERS:
        assert client_for(getattr(cast, name)).get(url).status_code == 200, name
    for name in ("clinician", "nobody"):
        assert client_for(getattr(cast, name)).get(url).status_code == 403, name


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(reverse("migration:index"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_wave_page_shows_progress_without_any_patient_data(cast, client_for, wave):
    WaveStudy.objects.filter(wave=wave).update(state=StudyState.DONE)
    for url in (
        reverse("migration:wave", args=[wave.name]),
        reverse("migration:wave_studies", args=[wave.name]),
    ):
        html = client_for(cast.staff).get(url).content.decode()
        assert 'aria-valuenow="100"' in html or "1.2.826.0.1.0" in html
        assert "Doe^Jane" not in html and "PID00" not in html and "ACC00" not in html


def test_only_operators_may_start_pause_or_cancel_a_wave(cast, client_for, wave):
    url = reverse("migration:wave_action", args=[wave.name, "start"])
    for name in ("pm", "staff", "lead"):
        assert client_for(getattr(cast, name)).post(url).status_code == 403
    response = client_for(cast.engineer).post(url)
    assert response.status_code == 302
    wave.refresh_from_db()
    assert wave.state == WaveState.RUNNING
    entry = LogEntry.objects.get_for_object(wave).latest("timestamp")
    assert entry.changes_dict == {"state": ["draft", "running"]} and entry.actor == cast.engineer
    client_for(cast.engineer).post(reverse("migration:wave_action", args=[wave.name, "pause"]))
    wave.refresh_from_db()
    assert wave.state == WaveState.PAUSED
    response = client_for(cast.admin).post(
        reverse("migration:wave_action", args=[wave.name, "pause"]), follow=True
    )
    assert "cannot pause wave wave-one: it is paused" in response.content.decode()


def test_a_wave_is_planned_from_an_uploaded_list_of_accession_numbers(
    cast, client_for, inventory, tmp_path
):
    source, _studies = inventory
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    upload = io.BytesIO(b"ACC001\nACC003\r\nACC999\n")
    upload.name = "accessions.csv"
    response = client_for(cast.engineer).post(
        reverse("migration:wave_new"),
        {"name": "by-list", "source": source.pk, "destination": destination.pk, "priority": 5,
         "list_file": upload, "list_kind": "accession_numbers", "schedule": "mon-fri 7-19=1"},
        follow=True,
    )  # fmt: skip
    assert (
        "Wave by-list created with 2 studies. 1 listed value(s) match no study."
        in response.content.decode()
    )
    wave = Wave.objects.get(name="by-list")
    assert sorted(wave.ledger.values_list("study__accession_number", flat=True)) == [
        "ACC001",
        "ACC003",
    ]
    assert wave.schedule[0][7] == 1 and wave.schedule[0][19] is None and wave.priority == 5


def test_a_wave_by_modality_and_dates_is_selected_from_the_inventory(
    cast, client_for, inventory, tmp_path
):
    source, _studies = inventory
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    client_for(cast.engineer).post(
        reverse("migration:wave_new"),
        {"name": "ct-only", "source": source.pk, "destination": destination.pk, "priority": 0,
         "modalities": "ct"},
    )  # fmt: skip
    assert Wave.objects.get(name="ct-only").ledger.count() == 3


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"schedule": "someday=3"}, "cannot read"),
        ({"date_from": "2020-01-02", "date_to": "2020-01-01"}, "must not be before the start date"),
        ({"name": "has spaces"}, "Enter a valid"),
    ],
)
def test_the_wave_form_says_what_is_wrong(cast, client_for, inventory, tmp_path, fields, message):
    source, _studies = inventory
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    data = {
        "name": "bad",
        "source": source.pk,
        "destination": destination.pk,
        "priority": 0,
        **fields,
    }
    response = client_for(cast.engineer).post(reverse("migration:wave_new"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Wave.objects.exists()


def test_the_profile_form_rejects_invalid_rules_with_the_reason(cast, client_for):
    url = reverse("migration:profile_new")
    rules = json.dumps(
        [{"op": "remove", "tag": "SOPInstanceUID"}, {"op": "set", "tag": "Nope", "value": 1}]
    )
    html = client_for(cast.engineer).post(url, {"name": "bad", "rules": rules}).content.decode()
    assert "rule 1: &#x27;SOPInstanceUID&#x27; identifies the object" in html
    assert "rule 2: unknown tag &#x27;Nope&#x27;" in html
    html = client_for(cast.engineer).post(url, {"name": "bad", "rules": "[{"}).content.decode()
    assert "not valid JSON" in html
    assert not MappingProfile.objects.exists()
    good = json.dumps([{"op": "set", "tag": "InstitutionName", "value": "Cloud"}])
    assert client_for(cast.engineer).post(url, {"name": "good", "rules": good}).status_code == 302
    assert MappingProfile.objects.get(name="good").rules[0]["value"] == "Cloud"


def test_a_lookup_table_is_uploaded_as_csv_and_its_values_are_never_shown(cast, client_for):
    upload = io.BytesIO(b"legacy,mrn\nPID001,MRN-1\nPID002,MRN-2\n")
    upload.name = "mrn.csv"
    response = client_for(cast.engineer).post(
        reverse("migration:tables"), {"name": "mrn", "file": upload}, follow=True
    )
    html = response.content.decode()
    assert "Table mrn: 2 entries." in html and "PID001" not in html and "MRN-1" not in html
    assert client_for(cast.pm).get(reverse("migration:tables")).status_code == 403


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_destination_is_added_and_checked_by_a_worker_with_a_clear_result(
    cast, client_for, tmp_path, migration_worker
):
    engineer = client_for(cast.engineer)
    response = engineer.post(reverse("migration:destination_new"), {"name": "s3-bad", "kind": "s3"})
    assert (
        response.status_code == 400 and "required for a S3 destination" in response.content.decode()
    )
    engineer.post(
        reverse("migration:destination_new"),
        {"name": "archive", "kind": "filesystem", "path": str(tmp_path)},
    )
    engineer.post(
        reverse("migration:destination_new"),
        {"name": "gone", "kind": "filesystem", "path": str(tmp_path / "x")},
    )

    for name in ("archive", "gone"):
        queued = engineer.post(
            reverse("migration:destination_check", args=[name]), HTTP_HX_REQUEST="true"
        )
        assert "checking" in queued.content.decode()
    wait_for(lambda: not Destination.objects.filter(last_check_at=None).exists())
    assert Destination.objects.get(name="archive").last_check_ok is True
    gone = Destination.objects.get(name="gone")
    assert gone.last_check_ok is False and "does not exist" in gone.last_check_detail
    page = engineer.get(reverse("migration:destinations")).content.decode()
    assert "OK" in page and "Failed" in page
    assert (
        client_for(cast.lead)
        .post(reverse("migration:destination_check", args=["archive"]))
        .status_code
        == 403
    )


def test_conflicts_are_listed_for_a_person_to_decide(cast, client_for, wave):
    row = wave.ledger.first()
    conflict = Conflict.objects.create(
        ledger=row, sop_uid="1.2.3.4", series_uid="1.2.3", kept_key="studies/a.dcm",
        kept_sha256="a" * 64, other_key="conflicts/b.dcm", other_sha256="b" * 64,
    )  # fmt: skip
    html = client_for(cast.staff).get(reverse("migration:conflicts")).content.decode()
    assert "1.2.3.4" in html and "conflicts/b.dcm" in html
    url = reverse("migration:conflict_decide", args=[conflict.pk])
    assert client_for(cast.staff).post(url, {"decision": "keep_both"}).status_code == 403
    client_for(cast.engineer).post(url, {"decision": "keep_both", "note": "both are real"})
    conflict.refresh_from_db()
    assert conflict.decision == "keep_both" and conflict.decided_by == cast.engineer


def test_the_global_pause_stops_new_studies_and_is_for_engineers_and_leads(cast, client_for, wave):
    Wave.objects.filter(pk=wave.pk).update(state=WaveState.RUNNING)
    url = reverse("migration:control")
    assert client_for(cast.pm).post(url, {"paused": "1"}).status_code == 403
    client_for(cast.lead).post(url, {"paused": "1", "reason": "PACS upgrade"})
    assert EngineControl.get().paused
    assert dispatch.migrate_next(wave.source) == "paused"
    assert wave.ledger.filter(state=StudyState.QUEUED).count() == 6
    client_for(cast.engineer).post(url, {"paused": "0"})
    assert not EngineControl.get().paused


def test_the_api_lists_creates_and_drives_waves_for_operators_only(
    cast, client_for, inventory, tmp_path
):
    source, _studies = inventory
    Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    body = {"name": "api-wave", "source": "legacy", "destination": "folder", "modalities": ["MR"],
            "schedule_spec": "sat,sun *=0"}  # fmt: skip
    pm = client_for(cast.pm)
    assert (
        pm.post("/migration/api/waves/", body, content_type="application/json").status_code == 403
    )
    engineer = client_for(cast.engineer)
    created = engineer.post("/migration/api/waves/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    wave_id = created.json()["id"]
    assert created.json()["progress"]["total"] == 3 and created.json()["schedule"][5][0] == 0
    bad = engineer.post(
        "/migration/api/waves/",
        {**body, "name": "x", "schedule_spec": "nope"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "cannot read" in bad.content.decode()

    assert engineer.post(f"/migration/api/waves/{wave_id}/start/").json()["state"] == "running"
    status = client_for(cast.staff).get(f"/migration/api/waves/{wave_id}/status/").json()
    assert status["counts"]["queued"] == 3 and status["state"] == "running"
    studies = client_for(cast.staff).get(f"/migration/api/waves/{wave_id}/studies/").json()
    assert studies["count"] == 3 and "patient" not in json.dumps(studies).lower()
    engineer = client_for(cast.engineer)
    assert engineer.post(f"/migration/api/waves/{wave_id}/cancel/").json()["state"] == "cancelled"
    measures = client_for(cast.pm).get("/migration/api/measures/").json()
    assert measures["validation"] == {"waves": 0, "validated_waves": 0, "open_discrepancies": 0}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_api_checks_destinations_and_validates_profiles(
    cast, client_for, tmp_path, migration_worker
):
    engineer = client_for(cast.engineer)
    made = engineer.post(
        "/migration/api/destinations/",
        {"name": "f", "kind": "filesystem", "path": str(tmp_path)},
        content_type="application/json",
    )
    assert made.status_code == 201
    queued = engineer.post(f"/migration/api/destinations/{made.json()['id']}/check/")
    assert queued.status_code == 202 and queued.json()["queued"] is True
    wait_for(lambda: Destination.objects.get(name="f").last_check_ok is not None)
    assert Destination.objects.get(name="f").last_check_ok is True
    bad = engineer.post(
        "/migration/api/profiles/",
        {"name": "p", "rules": [{"op": "nope"}]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "'op' must be one of" in bad.content.decode()


def test_the_openapi_schema_documents_the_migration_api(cast, client_for):
    schema = client_for(cast.engineer).get("/api/schema/?format=json").json()
    for path in ("/migration/api/waves/", "/migration/api/waves/{id}/status/",
                 "/migration/api/destinations/{id}/check/", "/migration/api/conflicts/{id}/decide/",
                 "/migration/api/control/", "/migration/api/profiles/"):  # fmt: skip
        assert path in schema["paths"], path


def test_the_preview_shows_a_real_instance_before_and_after_and_records_the_phi_view(
    cast, client_for, mixed_pacs
):
    orthanc, studies = mixed_pacs
    uid, datasets = next(iter(studies.items()))
    source = PacsSource.objects.create(
        name="pacs", ae_title=orthanc.aet, host="127.0.0.1", port=orthanc.dicom_port,
        calling_ae_title="CCTEST",
    )  # fmt: skip
    study = Study.objects.create(source=source, study_uid=uid)
    MappingProfile.objects.create(
        name="cloud", rules=[{"op": "set", "tag": "InstitutionName", "value": "Cloud"}]
    )
    url = reverse("migration:profile_preview", args=["cloud"]) + f"?study={study.pk}"

    assert client_for(cast.pm).get(url).status_code == 403
    html = client_for(cast.engineer).get(url).content.decode()

    assert '<tr class="changed"><td>(0008,0080)</td><td>InstitutionName</td>' in html
    assert "<td>Cloud</td>" in html and str(datasets[0].InstitutionName) in html
    assert PHIAccess.objects.filter(
        user=cast.engineer, what="migration.preview", object_id=str(study.pk)
    ).exists()
