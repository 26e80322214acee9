"""Reconciliation against the real PACS (Orthanc) and S3 store (SeaweedFS): every study
accounted for from what the destination lists, never from the ledger."""

import pytest

from cutover import readiness
from migration import actions, discrepancies, validation
from migration.models import Destination, Discrepancy, ValidationRun, Wave
from tests.migration import support
from tests.migration import validation_support as vs

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def clean(django_db_setup, django_db_blocker, mixed_pacs, migration_s3, engine_settings):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies)
    with vs.shared_wave(django_db_blocker, "recon", orthanc, chosen, migration_s3) as wave:
        yield wave, chosen


def test_a_clean_wave_reconciles_every_study_complete_from_the_pacs_and_the_listing(clean):
    wave, studies = clean
    seen = []

    report = validation.reconcile(wave, progress=lambda done, total: seen.append((done, total)))

    assert report["studies"] == report["complete"] == len(studies) == 5
    assert report["missing_instances"] == report["extra_instances"] == 0
    assert report["conflicted"] == report["quarantined"] == 0
    assert report["discrepancies"] == []
    by_uid = {row["study_uid"]: row for row in report["rows"]}
    for uid, datasets in studies.items():
        row = by_uid[uid]
        assert row["reported_at_inventory"] == row["on_pacs_now"] == row["in_destination"]
        assert row["in_destination"] == len(datasets)
        assert row["verdict"] == "complete"
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)


def test_a_clean_wave_becomes_validated_once_reconciled_and_spot_checked(clean):
    wave, _studies = clean
    assert discrepancies.wave_validation(wave)["validated"] is False

    for kind in ("reconcile", "spotcheck"):
        run = ValidationRun.objects.create(wave=wave, kind=kind)
        discrepancies.execute_run(run)
        run.refresh_from_db()
        assert run.state == "done" and run.progress_done == run.progress_total == 5

    state = discrepancies.wave_validation(wave)
    assert state["validated"] and state["reconciled"] and state["open"] == 0
    assert state["last_reconcile"].totals["complete"] == 5
    assert state["last_spotcheck"].totals["instances_compared"] == 6
    gate = {c["key"]: c for c in readiness.evaluate()["criteria"]}["waves_validated"]
    assert gate["met"] and gate["note"] == "1 of 1 waves validated"


def test_an_object_gone_from_s3_is_missing_by_study_series_and_instance(clean, migration_s3):
    wave, _studies = clean
    gone = vs.stored(wave, "CT")
    body = vs.s3_object(migration_s3, wave, gone.key)
    vs.delete_object(migration_s3, wave, gone.key)
    try:
        report = validation.reconcile(wave)
        run = ValidationRun.objects.create(wave=wave, kind="reconcile")
        discrepancies.record(wave, run, report["discrepancies"])
    finally:
        vs.put_object(migration_s3, wave, gone.key, body)

    assert report["complete"] == 4 and report["missing_instances"] == 1
    (finding,) = report["discrepancies"]
    assert (finding["study"], finding["series"], finding["instance"], finding["kind"]) == (
        gone.ledger.study.study_uid, gone.series_uid, gone.sop_uid, "missing",
    )  # fmt: skip
    (row,) = [r for r in report["rows"] if r["verdict"] != "complete"]
    assert row["verdict"] == "missing 1" and row["in_destination"] == row["on_pacs_now"] - 1
    (open_one,) = Discrepancy.objects.filter(wave=wave, status="open")
    assert open_one.sop_uid == gone.sop_uid and open_one.ledger_id == gone.ledger_id
    assert discrepancies.wave_validation(wave)["validated"] is False


def test_an_extra_object_in_the_destination_is_reported_as_extra(clean, migration_s3):
    wave, _studies = clean
    item = vs.stored(wave, "MG")
    stray = item.key.rsplit("/", 1)[0] + "/1.2.3.4.5.6.7.dcm"
    vs.put_object(migration_s3, wave, stray, b"not really dicom")
    try:
        report = validation.reconcile(wave)
    finally:
        vs.delete_object(migration_s3, wave, stray)

    assert report["extra_instances"] == 1 and report["complete"] == 4
    (finding,) = report["discrepancies"]
    assert finding["kind"] == "extra" and finding["instance"] == "1.2.3.4.5.6.7"
    assert finding["series"] == item.series_uid


@pytest.mark.django_db(transaction=True)
def test_waves_stored_in_a_folder_and_by_dicomweb_are_listed_there_and_compare_clean(
    mixed_pacs, dicomweb_store, tmp_path
):
    """The folder is walked and the DICOMweb store asked by QIDO-RS (read back by WADO-RS)."""
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies, ("MR", "US"))
    source = support.make_source(orthanc, name="elsewhere")
    support.make_inventory(source, chosen)
    folder = Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    web = Destination.objects.create(name="web", kind="dicomweb", url=dicomweb_store.dicomweb_url)
    for destination in (folder, web):
        wave, _info = actions.create_wave(
            name=f"to-{destination.name}", source=source, destination=destination
        )
        vs.migrate_in_process(wave)

        report = validation.reconcile(wave)
        checked = validation.spotcheck(wave)

        assert (report["studies"], report["complete"]) == (2, 2), report["rows"]
        assert report["in_destination"] == 3 and report["discrepancies"] == []
        assert checked["instances_compared"] == 3 and checked["discrepancies"] == []

    gone = vs.stored(Wave.objects.get(name="to-folder"), "MR", 0)
    (tmp_path / gone.key).unlink()
    report = validation.reconcile(Wave.objects.get(name="to-folder"))
    assert [(f["kind"], f["instance"]) for f in report["discrepancies"]] == [
        ("missing", gone.sop_uid)
    ]
