"""The discrepancy queue end to end: a wave migrated by a real Celery worker is damaged
in S3 (an object deleted, a tag altered, a pixel byte flipped); validation names each
one and opens a discrepancy (with a ticket, no PHI); Re-migrate sends the studies back
through the engine on the worker, and they become fixed and the wave validated again.
Then the API's rules per role."""

import json

import pytest

from desk.models import Ticket
from inventory.models import PacsSource, Study
from migration import actions, discrepancies, measures
from migration.actions import ActionError
from migration.models import (
    Destination,
    Discrepancy,
    StudyState,
    ValidationRun,
    Wave,
    WaveState,
    WaveStudy,
)
from migration.storage import sha256_hex
from tests.migration import support
from tests.migration import validation_support as vs


def run_wave(wave):
    actions.change_wave(wave, "start")
    support.wait_for(
        lambda: Wave.objects.get(pk=wave.pk).state == WaveState.DONE,
        timeout=180, message="the wave to finish",
    )  # fmt: skip
    wave.refresh_from_db()


def finished_run(run, timeout=120):
    return support.wait_for(
        lambda: ValidationRun.objects.filter(pk=run.pk, state__in=["done", "failed"]).first(),
        timeout=timeout, message=f"validation run {run.pk}",
    )  # fmt: skip


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_damaged_objects_are_named_become_open_discrepancies_and_re_migrate_clears_them(
    mixed_pacs, migration_s3, bucket, migration_worker
):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies, ("CT", "MR", "OT", "US"))
    wave = vs.new_wave("damaged", orthanc, chosen, migration_s3, bucket)
    run_wave(wave)
    gone, tagged, flipped = vs.stored(wave, "CT"), vs.stored(wave, "MR", 1), vs.stored(wave, "OT")
    vs.delete_object(migration_s3, wave, gone.key)
    body = vs.s3_object(migration_s3, wave, tagged.key)
    vs.put_object(migration_s3, wave, tagged.key, vs.with_tag(body, "SeriesDescription", "Edited"))
    body = vs.s3_object(migration_s3, wave, flipped.key)
    vs.put_object(migration_s3, wave, flipped.key, vs.with_pixel_flipped(body))

    reconcile = finished_run(discrepancies.start_run(wave, "reconcile"))
    assert reconcile.state == "done" and reconcile.totals["missing_instances"] == 1
    discrepancies.execute_run(ValidationRun.objects.create(wave=wave, kind="spotcheck"))

    found = {(d.kind, d.sop_uid, d.subject): d for d in Discrepancy.objects.filter(wave=wave)}
    assert set(found) == {
        ("missing", gone.sop_uid, ""),
        ("tag", tagged.sop_uid, "SeriesDescription"),
        ("checksum", tagged.sop_uid, "sha256"),
        ("pixel", flipped.sop_uid, "frame 1"),
        ("checksum", flipped.sop_uid, "sha256"),
    }
    assert {d.status for d in found.values()} == {"open"}
    missing = found[("missing", gone.sop_uid, "")]
    assert (missing.study_uid, missing.series_uid) == (
        gone.ledger.study.study_uid, gone.series_uid,
    )  # fmt: skip
    assert "'Edited'" in found[("tag", tagged.sop_uid, "SeriesDescription")].detail
    state = discrepancies.wave_validation(wave)
    assert not state["validated"] and state["open"] == 5
    tickets = Ticket.objects.filter(cause__startswith=f"validation.wave-{wave.pk}.")
    assert {t.cause.rsplit(".", 1)[1] for t in tickets} == {"missing", "tag", "pixel", "checksum"}
    text = json.dumps([[t.title, t.description] for t in tickets])
    for datasets in chosen.values():
        assert str(datasets[0].PatientName) not in text and str(datasets[0].PatientID) not in text

    for item in (missing, found[("tag", tagged.sop_uid, "SeriesDescription")],
                 found[("pixel", flipped.sop_uid, "frame 1")]):  # fmt: skip
        discrepancies.remigrate(item)
    statuses = set(Discrepancy.objects.filter(wave=wave).values_list("status", flat=True))
    assert "remigrating" in statuses and statuses <= {"remigrating", "fixed"}  # the worker is quick

    support.wait_for(
        lambda: discrepancies.wave_validation(wave)["validated"],
        timeout=180, message="the wave to be validated again",
    )  # fmt: skip
    assert set(Discrepancy.objects.filter(wave=wave).values_list("status", flat=True)) == {"fixed"}
    assert set(wave.ledger.values_list("state", flat=True)) == {StudyState.DONE}
    for item in (gone, tagged, flipped):
        restored = vs.s3_object(migration_s3, wave, item.key)
        assert sha256_hex(restored) == item.sha256
    kept = support.listed_keys(migration_s3.client(), bucket, "damaged/validation-kept/")
    assert len(kept) == 2


@pytest.fixture
def finished_wave(db, tmp_path):
    """A done wave of one done study with two open discrepancies (a folder destination)."""
    source = PacsSource.objects.create(name="api", ae_title="X", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="api", kind="filesystem", path=str(tmp_path))
    wave = Wave.objects.create(name="api-wave", source=source, destination=destination,
                               state=WaveState.DONE)  # fmt: skip
    study = Study.objects.create(source=source, study_uid="1.2.3")
    row = WaveStudy.objects.create(wave=wave, study=study, state=StudyState.DONE)
    found = [
        Discrepancy.objects.create(wave=wave, ledger=row, study_uid="1.2.3", sop_uid=f"1.2.3.{n}",
                                   kind="tag", subject="StudyDescription", detail="differs")
        for n in (1, 2)
    ]  # fmt: skip
    return wave, row, found


def test_engineers_run_accept_and_re_migrate_while_pm_and_lead_only_read(
    cast, client_for, finished_wave
):
    wave, row, (first, second) = finished_wave
    base = "/migration/api/validation"
    for reader in (cast.pm, cast.lead):
        client = client_for(reader)
        assert client.get(f"{base}/runs/?wave={wave.name}").status_code == 200
        assert client.get(f"{base}/discrepancies/?status=open").json()["count"] == 2
        assert client.get(f"{base}/waves/{wave.name}/").json()["validated"] is False
        assert (
            client.post(f"{base}/runs/", {"wave": wave.name, "kind": "reconcile"}).status_code
            == 403
        )
        assert (
            client.post(f"{base}/discrepancies/{first.pk}/accept/", {"reason": "x"}).status_code
            == 403
        )
    clinician = client_for(cast.clinician)
    assert clinician.get(f"{base}/discrepancies/").status_code == 403
    assert clinician.get(f"{base}/waves/{wave.name}/").status_code == 403

    engineer = client_for(cast.engineer)
    started = engineer.post(f"{base}/runs/", {"wave": wave.name, "kind": "spotcheck",
                                              "sample_size": 3, "seed": 9})  # fmt: skip
    assert started.status_code == 201
    assert started.json()["state"] == "queued" and started.json()["sample_size"] == 3
    assert engineer.get(f"{base}/runs/{started.json()['id']}/").json()["percent"] == 0.0
    assert engineer.post(f"{base}/discrepancies/{first.pk}/accept/", {}).status_code == 400
    accepted = engineer.post(f"{base}/discrepancies/{first.pk}/accept/",
                             {"reason": "the PACS edited it after the move"})  # fmt: skip
    assert accepted.json()["status"] == "accepted" and accepted.json()["resolved_by"] == "engineer"
    owned = engineer.post(f"{base}/discrepancies/{second.pk}/assign/", {"owner": "engineer"})
    assert owned.json()["owner"] == "engineer"
    moved = engineer.post(f"{base}/discrepancies/{second.pk}/remigrate/")
    assert moved.status_code == 202 and moved.json()["status"] == "remigrating"
    row.refresh_from_db()
    assert row.state == StudyState.DONE  # a worker re-migrates it (the web process does not)
    discrepancies.run_remigration(row.pk, cast.engineer)  # what the worker's task runs
    row.refresh_from_db()
    wave.refresh_from_db()
    assert row.state == StudyState.QUEUED and wave.state == WaveState.RUNNING


def test_the_openapi_schema_documents_the_validation_api(cast, client_for):
    schema = client_for(cast.engineer).get("/api/schema/?format=json").json()
    for path in ("/migration/api/validation/runs/", "/migration/api/validation/runs/{id}/",
                 "/migration/api/validation/discrepancies/{id}/accept/",
                 "/migration/api/validation/discrepancies/{id}/remigrate/",
                 "/migration/api/validation/discrepancies/{id}/assign/",
                 "/migration/api/validation/waves/{name}/"):  # fmt: skip
        assert path in schema["paths"], path


def test_accepting_needs_a_reason_and_validated_needs_a_complete_reconciliation(finished_wave):
    wave, _row, (first, second) = finished_wave
    with pytest.raises(ActionError, match="reason is required"):
        discrepancies.accept(first, None, "  ")
    run = ValidationRun.objects.create(wave=wave, kind="reconcile", state="done",
                                       totals={"studies": 1, "complete": 1})  # fmt: skip
    run.finished_at = run.created_at
    run.save()
    assert discrepancies.wave_validation(wave)["reconciled"] is True
    assert discrepancies.wave_validation(wave)["validated"] is False
    summary = {"waves": 1, "validated_waves": 0, "open_discrepancies": 2}
    assert measures.validation_summary() == summary
    discrepancies.accept(first, None, "known")
    discrepancies.mark_fixed(second, None)
    assert discrepancies.wave_validation(wave)["validated"] is True
    assert discrepancies.wave_validation(wave)["open"] == 0
    summary = {"waves": 1, "validated_waves": 1, "open_discrepancies": 0}
    assert measures.validation_summary() == summary
