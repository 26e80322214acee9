"""Every object as the archive stores it: pydicom's own test files (an archive nobody on
the team made) loaded into Orthanc, inventoried by a real crawl and migrated by the
engine, arrive in S3 in the transfer syntax Orthanc stores each in; a PACS that
transcodes anyway is caught, instance by instance, as `transcoded` discrepancies."""

import io
import json
from pathlib import Path

import pydicom.data
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from devstack.services.orthanc import Orthanc
from dicomnet import syntaxes
from inventory import actions as inventory
from inventory import engine
from inventory.models import Series
from migration import discrepancies, validation
from migration.models import (
    Discrepancy,
    QuarantinedInstance,
    StoredInstance,
    StudyState,
    ValidationRun,
)
from tests.fixtures_services import TEST_AET, start_service
from tests.migration import support
from tests.migration.test_engine import run_in_process, running_wave

pytestmark = pytest.mark.django_db(transaction=True)
TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
DAMAGED = "MR_truncated.dcm"
UNCOMPRESSED = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
# what Orthanc 1.10 can decode, so transcode (it has no JPEG 2000 codec)
DECODABLE = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50",
             "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1.99"}  # fmt: skip


def pydicom_files():
    """{name: (syntax, bytes, study, series, sop)} of every pydicom test file that has
    file meta and a SOP Class UID (without one no PACS can C-STORE it) and that pydicom
    can write again (all but one), each in a study
    of its own: Study, Series and SOP Instance UIDs are fresh, and the file is written
    again by pydicom in its own transfer syntax (so its bytes differ from the original's,
    its encoding does not)."""
    found = {}
    for path in sorted(TEST_FILES.glob("*.dcm")):
        try:
            ds = dcmread(path)
            syntax = str(ds.file_meta.TransferSyntaxUID)
            if "SOPClassUID" not in ds:
                continue
            ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
        except Exception:  # no file meta, or a file pydicom cannot write again
            continue
        uids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        found[path.name] = (syntax, out.getvalue(), *uids)
    return found


def seed(orthanc, files):
    """Upload every file Orthanc accepts; {name: (syntax Orthanc stores it in, study,
    series, sop)}."""
    accepted = {}
    for name, (_syntax, data, study, series, sop) in files.items():
        try:
            answer = orthanc.upload(data)
        except Exception:
            continue
        stored = orthanc.session.get(
            f"{orthanc.url}/instances/{answer['ID']}/metadata/TransferSyntax", timeout=30
        ).text
        accepted[name] = (stored, study, series, sop)
    return accepted


@pytest.fixture(scope="module")
def archive(orthanc_factory):
    orthanc = orthanc_factory(aet="ASSTORED")
    files = pydicom_files()
    return orthanc, files, seed(orthanc, files)


def crawl(source, settings):
    settings.INVENTORY_SAMPLE_SERIES = 500
    result = engine.execute_crawl(inventory.start_crawl(source, enqueue=False).pk)
    assert result["complete"] is True
    return result


def test_a_wave_over_pydicom_test_files_stores_each_in_the_syntax_the_pacs_stores_it(
    archive, migration_s3, bucket, settings
):
    orthanc, files, accepted = archive
    stored_in = {stored for stored, *_uids in accepted.values()}
    assert len(accepted) >= 60 and len(stored_in) >= 10
    assert {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5"} <= stored_in
    for name, (stored, *_uids) in accepted.items():
        assert stored == files[name][0], name  # Orthanc keeps each file as it came
    source = support.make_source(orthanc, name="as-stored")
    crawl(source, settings)
    series_rows = Series.objects.filter(study__source=source)
    sampled = dict(series_rows.values_list("series_uid", "transfer_syntax"))
    for name, (stored, _study, series, _sop) in accepted.items():
        assert sampled[series] == stored, f"{name}: the inventory sampled {sampled[series]}"
    destination = support.s3_destination(migration_s3, bucket)
    wave = running_wave("as-stored", source, destination)

    states = run_in_process(wave)

    truncated = accepted.pop(DAMAGED)  # the one damaged file: set aside, as is
    kept = QuarantinedInstance.objects.get(ledger__wave=wave, sop_uid=truncated[3])
    assert "truncated" in kept.reason and states[truncated[1]] == StudyState.QUARANTINED
    assert syntax_of(migration_s3, bucket, kept.key) == truncated[0]
    assert {states[study] for _stored, study, *_rest in accepted.values()} == {StudyState.DONE}
    client = migration_s3.client()
    for name, (stored, study, _series, sop) in accepted.items():
        row = StoredInstance.objects.get(ledger__wave=wave, sop_uid=sop)
        assert row.transfer_syntax == row.reported_syntax == stored, name
        assert syntax_of(migration_s3, bucket, row.key) == stored, name
        manifest = json.loads(client.get_object(
            Bucket=bucket, Key=f"studies/{study}/manifest.json")["Body"].read())  # fmt: skip
        assert manifest["instances"][0]["transfer_syntax_uid"] == stored, name
    report = validation.reconcile(wave)
    assert report["transcoded_instances"] == 0
    assert report["complete"] == len(accepted)


def syntax_of(s3, bucket, key):
    body = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return str(dcmread(io.BytesIO(body), stop_before_pixels=True).file_meta.TransferSyntaxUID)


@pytest.fixture
def reconfigurable(tmp_path, storage_scp_port):
    """An Orthanc in a folder we keep, so that it can be started again with another
    configuration over the same archive."""
    orthanc = Orthanc(aet="TRANSCODER", workdir=tmp_path / "orthanc",
                      modalities={TEST_AET: ("127.0.0.1", storage_scp_port)})  # fmt: skip
    yield start_service(orthanc)
    orthanc.stop()


def test_a_pacs_that_transcodes_anyway_yields_transcoded_discrepancies_naming_each_instance(
    reconfigurable, migration_s3, bucket, settings
):
    orthanc = reconfigurable
    files = {name: f for name, f in pydicom_files().items()
             if f[0] in DECODABLE | set(UNCOMPRESSED) and name != DAMAGED}  # fmt: skip
    accepted = seed(orthanc, files)
    source = support.make_source(orthanc, name="transcoder")
    crawl(source, settings)
    # the same archive, now configured to accept only uncompressed Little Endian: it
    # must transcode everything else on the way out
    orthanc.stop()
    orthanc.config_overrides = {"AcceptedTransferSyntaxes": UNCOMPRESSED}
    start_service(orthanc)
    destination = support.s3_destination(migration_s3, bucket)
    wave = running_wave("transcoded", source, destination)

    assert set(run_in_process(wave).values()) == {StudyState.DONE}
    run = ValidationRun.objects.create(wave=wave, kind="reconcile")
    result = discrepancies.execute_run(run)

    changed = {sop: stored for stored, _st, _se, sop in accepted.values() if stored in DECODABLE}
    assert len(changed) >= 20
    found = Discrepancy.objects.filter(wave=wave, kind="transcoded", status="open")
    assert {d.sop_uid for d in found} == set(changed)
    for discrepancy in found:
        stored = changed[discrepancy.sop_uid]
        assert f"as {syntaxes.name(stored)} ({stored})" in discrepancy.detail
        assert "but sent" in discrepancy.detail
    assert result["transcoded_instances"] == len(changed)
    assert discrepancies.wave_validation(wave)["validated"] is False
