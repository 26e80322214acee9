"""The engine on one study at a time, in this process, against a real Orthanc, our
SeaweedFS, a DICOMweb Orthanc and a folder: verified uploads, manifests, idempotent
re-runs, quarantine, conflicts, mapping, and a PACS that dies mid-study."""

import json
import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone
from pydicom import dcmread

from devstack import synthetic
from devstack.services.dcmtk import DcmQrScp
from devstack.services.orthanc import Orthanc
from migration import actions, engine, ledger
from migration.models import (
    Conflict,
    Destination,
    LookupTable,
    MappingProfile,
    QuarantinedInstance,
    StoredInstance,
    StudyState,
    Wave,
    WaveState,
)
from migration.storage import sha256_hex
from tests.fixtures_services import TEST_AET, start_service
from tests.migration import support

pytestmark = pytest.mark.django_db(transaction=True)


def running_wave(name, source, destination, **fields):
    wave, _info = actions.create_wave(name=name, source=source, destination=destination, **fields)
    Wave.objects.filter(pk=wave.pk).update(state=WaveState.RUNNING, started_at=timezone.now())
    return wave


def run_in_process(wave, owner="in-process", now=None, **options):
    """Claim and run every claimable study of the wave here; returns {study uid: state}."""
    states = {}
    while (row := ledger.claim_next([wave.pk], owner, now=now)) is not None:
        states[row.study.study_uid] = engine.migrate_study(row, owner, **options)
    return states


def object_sha(client, bucket, key):
    return sha256_hex(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def pick(studies, *modalities):
    return {
        uid: datasets
        for uid, datasets in studies.items()
        if str(datasets[0].Modality) in modalities
    }


def test_studies_reach_s3_verified_with_manifests_and_a_second_run_stores_nothing_twice(
    mixed_pacs, migration_s3, bucket
):
    orthanc, studies = mixed_pacs
    chosen = dict(list(pick(studies, "MR", "US", "MG", "CR").items())[::7])
    source = support.make_source(orthanc)
    support.make_inventory(source, chosen)
    destination = support.s3_destination(migration_s3, bucket, prefix="archive")
    wave = running_wave("first", source, destination)

    assert set(run_in_process(wave).values()) == {StudyState.DONE}

    client = migration_s3.client()
    objects = {k: v for k, v in support.listed_keys(client, bucket).items() if k.endswith(".dcm")}
    for uid, datasets in chosen.items():
        manifest = json.loads(
            client.get_object(Bucket=bucket, Key=f"archive/studies/{uid}/manifest.json")[
                "Body"
            ].read()
        )
        assert manifest["reported"] == manifest["received"] == manifest["stored"] == len(datasets)
        listed = {e["sop_instance_uid"] for e in manifest["instances"]}
        assert listed == {str(ds.SOPInstanceUID) for ds in datasets}
        for entry in manifest["instances"]:
            assert entry["key"] == (
                f"archive/studies/{uid}/series/{entry['series_instance_uid']}"
                f"/instances/{entry['sop_instance_uid']}.dcm"
            )
            assert object_sha(client, bucket, entry["key"]) == entry["sha256"]
            original = next(ds for ds in datasets if ds.SOPInstanceUID == entry["sop_instance_uid"])
            assert entry["transfer_syntax_uid"] == original.file_meta.TransferSyntaxUID
            assert entry["sop_class_uid"] == original.SOPClassUID
    rows = wave.ledger.all()
    assert all(
        r.instances_reported == r.instances_stored == len(chosen[r.study.study_uid]) for r in rows
    )
    assert StoredInstance.objects.filter(ledger__wave=wave).count() == sum(
        map(len, chosen.values())
    )

    again = running_wave("again", source, destination)
    assert set(run_in_process(again).values()) == {StudyState.DONE}
    after = {k: v for k, v in support.listed_keys(client, bucket).items() if k.endswith(".dcm")}
    assert after == objects
    assert not Conflict.objects.exists()


@pytest.fixture
def own_orthanc(tmp_path, storage_scp_port):
    """An Orthanc in a folder we keep, so that it can be killed and started again."""
    started = []

    def start(workdir=None, ports=None):
        orthanc = Orthanc(aet="OWNPACS", workdir=workdir or tmp_path / "orthanc",
                          modalities={TEST_AET: ("127.0.0.1", storage_scp_port)})  # fmt: skip
        if ports:
            orthanc.dicom_port, orthanc.http_port = ports
        started.append(orthanc)
        return start_service(orthanc)

    yield start
    for orthanc in started:
        orthanc.stop()


def truncated_copy(ds):
    """The instance with its Pixel Data cut to half, yet a well-formed DICOM file (as a
    PACS that lost the end of a file on disk would still serve it)."""
    broken = synthetic.without_tags(ds)
    broken.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    return broken


def test_a_truncated_instance_quarantines_its_study_by_name_and_the_others_finish(
    own_orthanc, migration_s3, bucket
):
    orthanc = own_orthanc()
    studies = {str(s[0].StudyInstanceUID): s for s in synthetic.iter_studies(
        studies=3, instances=3, rows=16, cols=16, seed=510)}  # fmt: skip
    bad_uid, bad_study = next(iter(studies.items()))
    bad = bad_study[1]
    studies[bad_uid] = [bad_study[0], truncated_copy(bad), bad_study[2]]
    support.upload(orthanc, studies)
    source = support.make_source(orthanc)
    support.make_inventory(source, studies)
    wave = running_wave("truncated", source, support.s3_destination(migration_s3, bucket))

    states = run_in_process(wave)

    assert states.pop(bad_uid) == StudyState.QUARANTINED
    assert set(states.values()) == {StudyState.DONE}
    row = wave.ledger.get(study__study_uid=bad_uid)
    assert row.error_class == "bad_data"
    assert str(bad.SOPInstanceUID) in row.last_error
    assert "truncated" in row.last_error
    (kept,) = QuarantinedInstance.objects.filter(ledger=row)
    assert kept.sop_uid == bad.SOPInstanceUID
    body = migration_s3.client().get_object(Bucket=bucket, Key=kept.key)["Body"].read()
    assert sha256_hex(body) == kept.sha256
    assert row.instances_stored == 2


def test_a_sop_uid_with_different_content_keeps_both_copies_and_records_a_conflict(
    own_orthanc, migration_s3, bucket
):
    orthanc = own_orthanc()
    (datasets,) = synthetic.iter_studies(studies=1, instances=2, rows=16, cols=16, seed=520)
    twin = synthetic.duplicate_sop_different_content(datasets[0])
    twin.PatientID = "OTHER-PATIENT"  # the PACS files it under another patient
    studies = {str(datasets[0].StudyInstanceUID): datasets}
    support.upload(orthanc, {"twin": [twin], **studies})
    source = support.make_source(orthanc)
    support.make_inventory(source, studies)
    wave = running_wave("twins", source, support.s3_destination(migration_s3, bucket))

    assert list(run_in_process(wave).values()) == [StudyState.DONE]

    (conflict,) = Conflict.objects.all()
    assert conflict.sop_uid == datasets[0].SOPInstanceUID
    assert conflict.kept_sha256 != conflict.other_sha256
    client = migration_s3.client()
    assert object_sha(client, bucket, conflict.kept_key) == conflict.kept_sha256
    assert object_sha(client, bucket, conflict.other_key) == conflict.other_sha256
    assert "/conflicts/" in f"/{conflict.other_key}"
    assert wave.ledger.get().conflicts == 1


def test_a_pacs_killed_mid_study_fails_it_with_a_clear_reason_and_a_later_attempt_succeeds(
    own_orthanc, migration_s3, bucket, tmp_path
):
    orthanc = own_orthanc()
    (datasets,) = synthetic.iter_studies(studies=1, instances=40, rows=16, cols=16, seed=530)
    studies = {str(datasets[0].StudyInstanceUID): datasets}
    support.upload(orthanc, studies)
    source = support.make_source(orthanc)
    support.make_inventory(source, studies)
    wave = running_wave("pacs-dies", source, support.s3_destination(migration_s3, bucket))
    seen = []

    def kill_pacs_at_the_fifth_instance(run, data):
        seen.append(1)
        if len(seen) == 5:
            os.killpg(orthanc.proc.pid, signal.SIGKILL)

    assert list(run_in_process(wave, observer=kill_pacs_at_the_fifth_instance).values()) == [
        StudyState.FAILED
    ]
    row = wave.ledger.get()
    assert row.error_class in ("pacs_connection", "timeout")
    assert "PACS" in row.last_error
    assert row.not_before > timezone.now() - timedelta(seconds=1)

    orthanc.proc.wait(10)
    own_orthanc(workdir=orthanc.workdir, ports=(orthanc.dicom_port, orthanc.http_port))
    later = timezone.now() + timedelta(seconds=30)
    assert list(run_in_process(wave, now=later).values()) == [StudyState.DONE]

    row.refresh_from_db()
    assert row.attempts == 2
    keys = support.listed_keys(migration_s3.client(), bucket, "studies/")
    instances = [k for k in keys if "/instances/" in k]
    assert len(instances) == len(set(instances)) == 40


def test_a_mapping_profile_repairs_the_charset_and_maps_patient_ids_through_a_table(
    own_orthanc, tmp_path
):
    orthanc = own_orthanc()
    (datasets,) = synthetic.iter_studies(studies=1, instances=1, rows=16, cols=16, seed=540,
                                         charset="ISO_IR 192")  # fmt: skip
    original = datasets[0]
    mislabelled = synthetic.dataset_bytes(original).replace(b"ISO_IR 192", b"ISO_IR 100")
    orthanc.upload(mislabelled)
    source = support.make_source(orthanc)
    support.make_inventory(source, {str(original.StudyInstanceUID): datasets})
    LookupTable.objects.create(name="mrn", entries={str(original.PatientID): "MRN-0042"})
    profile = actions.save_profile(name="cloud-schema", rules=[
        {"op": "map", "tag": "PatientID", "table": "mrn", "missing": "quarantine"},
        {"op": "issuer", "value": "HOSPITAL-MRN"},
        {"op": "charset_repair", "actual": "utf-8", "declared": "ISO_IR 100"},
        {"op": "set", "tag": "InstitutionName", "value": "Cloud Archive"},
    ])  # fmt: skip
    folder = tmp_path / "archive"
    folder.mkdir()
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(folder))
    wave = running_wave("mapped", source, destination, profile=profile)

    assert list(run_in_process(wave).values()) == [StudyState.DONE]

    (stored,) = StoredInstance.objects.all()
    mapped = dcmread(folder / stored.key)
    assert mapped.SpecificCharacterSet == "ISO_IR 192"
    assert str(mapped.PatientName) == str(original.PatientName)
    assert mapped.PatientID == "MRN-0042"
    assert mapped.IssuerOfPatientID == "HOSPITAL-MRN"
    assert mapped.InstitutionName == "Cloud Archive"
    assert sha256_hex((folder / stored.key).read_bytes()) == stored.sha256
    assert (folder / f"studies/{original.StudyInstanceUID}/manifest.json").exists()
    # where the study's key format places it, the row keeps no key of its own
    assert stored.own_key == "" and stored.key == (
        f"studies/{original.StudyInstanceUID}/series/{original.SeriesInstanceUID}"
        f"/instances/{original.SOPInstanceUID}.dcm"
    )


def test_a_study_whose_mapping_has_no_table_entry_is_quarantined_not_stored_unmapped(
    own_orthanc, tmp_path
):
    orthanc = own_orthanc()
    (datasets,) = synthetic.iter_studies(studies=1, instances=1, rows=16, cols=16, seed=541)
    support.upload(orthanc, {"s": datasets})
    source = support.make_source(orthanc)
    support.make_inventory(source, {str(datasets[0].StudyInstanceUID): datasets})
    LookupTable.objects.create(name="mrn", entries={"someone-else": "MRN-1"})
    profile = MappingProfile.objects.create(
        name="strict",
        rules=[{"op": "map", "tag": "PatientID", "table": "mrn", "missing": "quarantine"}],
    )
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    wave = running_wave("strict", source, destination, profile=profile)

    assert list(run_in_process(wave).values()) == [StudyState.QUARANTINED]
    row = wave.ledger.get()
    assert "no entry in lookup table 'mrn'" in row.last_error
    assert str(datasets[0].PatientID) not in row.last_error
    assert not StoredInstance.objects.exists()


def test_a_missing_bucket_quarantines_at_once_with_a_reason_that_names_it(mixed_pacs, migration_s3):
    orthanc, studies = mixed_pacs
    chosen = dict(list(studies.items())[:1])
    source = support.make_source(orthanc)
    support.make_inventory(source, chosen)
    wave = running_wave("nobucket", source, support.s3_destination(migration_s3, "no-such-bucket"))

    assert list(run_in_process(wave).values()) == [StudyState.QUARANTINED]
    row = wave.ledger.get()
    assert row.error_class == "configuration"
    assert "bucket 'no-such-bucket' does not exist" in row.last_error


def test_studies_stored_by_dicomweb_are_read_back_and_verified(mixed_pacs, dicomweb_store):
    orthanc, studies = mixed_pacs
    chosen = dict(list(pick(studies, "US", "MG").items())[:3])
    source = support.make_source(orthanc)
    support.make_inventory(source, chosen)
    destination = Destination.objects.create(
        name="web", kind="dicomweb", url=dicomweb_store.dicomweb_url
    )
    wave = running_wave("web", source, destination)

    assert set(run_in_process(wave).values()) == {StudyState.DONE}
    again = running_wave("web-again", source, destination)
    assert set(run_in_process(again).values()) == {StudyState.DONE}
    stored = StoredInstance.objects.filter(ledger__wave=again)
    assert stored.count() == sum(map(len, chosen.values()))
    assert not Conflict.objects.exists()


def test_an_instance_the_pacs_cannot_send_fails_the_study_with_its_uid(
    tmp_path, migration_s3, bucket, storage_scp_port
):
    """dcmqrscp (no study-level counts, no relational queries) with one file damaged on
    its disk: its C-GET sub-operation fails, and the reason names the instance."""
    archive = DcmQrScp(aet="BROKENQR", workdir=tmp_path / "qr",
                       peers={TEST_AET: ("127.0.0.1", storage_scp_port)})  # fmt: skip
    start_service(archive)
    try:
        (datasets,) = synthetic.iter_studies(studies=1, instances=3, rows=16, cols=16, seed=550)
        archive.store_datasets(datasets)
        damaged = sorted(archive.storage_dir.glob("CT_*"))[0]
        damaged.write_bytes(damaged.read_bytes()[:-200])
        lost = str(dcmread(damaged, stop_before_pixels=True).SOPInstanceUID)
        source = support.make_source(archive, name="qr")
        support.make_inventory(source, {str(datasets[0].StudyInstanceUID): datasets})
        wave = running_wave("damaged", source, support.s3_destination(migration_s3, bucket))

        assert list(run_in_process(wave).values()) == [StudyState.FAILED]
    finally:
        archive.stop()
    row = wave.ledger.get()
    assert row.error_class == "verification_mismatch"
    assert "the PACS failed to send 1 instance(s)" in row.last_error
    assert f"3 instance(s), 2 received (missing: {lost})" in row.last_error


def test_a_quarantined_study_raises_one_alert_per_wave_and_error_class_without_phi(
    mixed_pacs, migration_s3, settings, engine_settings
):
    from core import events
    from migration import dispatch

    settings.MIGRATION_QUEUE = f"{engine_settings['MIGRATION_QUEUE']}-alerts"
    orthanc, studies = mixed_pacs
    chosen = dict(list(studies.items())[:2])
    source = support.make_source(orthanc)
    support.make_inventory(source, chosen)
    wave = running_wave("alerting", source, support.s3_destination(migration_s3, "no-such-bucket"))
    heard = []
    listener = events.subscribe_local(lambda topic, message: heard.append((topic, message["data"])))
    try:
        dispatch.migrate_next(source)
    finally:
        events._listeners.remove(listener)

    assert set(wave.ledger.values_list("state", flat=True)) == {StudyState.QUARANTINED}
    alerts = [data for topic, data in heard if topic == "alerts.migration"]
    assert len(alerts) == 2
    assert {a["cause"] for a in alerts} == {f"migration.quarantined.wave-{wave.pk}.configuration"}
    assert alerts[0]["links"]["wave"] == wave.pk and alerts[0]["impact"] == "high"
    inventory_ids = set(wave.ledger.values_list("study_id", flat=True))
    assert {a["links"]["study"] for a in alerts} == inventory_ids  # the study, not the ledger row
    assert any(topic == f"migration.wave.{wave.pk}.failure" for topic, _data in heard)
    text = json.dumps(alerts)
    for datasets in chosen.values():
        assert str(datasets[0].PatientName) not in text and str(datasets[0].PatientID) not in text
    assert Wave.objects.get(pk=wave.pk).state == WaveState.DONE
