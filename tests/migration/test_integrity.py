"""Attacks on the destination's integrity: mapping rules that rewrite UIDs (and so the
object keys), keys that climb out of a folder destination, a copy kept aside that is
not what was read, and discrepancies assigned to anyone."""

import pytest

from devstack import synthetic
from inventory.models import PacsSource, Study
from migration import actions, discrepancies, mapping, storage
from migration.actions import ActionError
from migration.models import (
    Destination,
    Discrepancy,
    MappingProfile,
    QuarantinedInstance,
    StoredInstance,
    StudyState,
    Wave,
    WaveState,
    WaveStudy,
)
from migration.storage import DestinationError, FilesystemStore, open_store, sha256_hex
from tests.cutover.conftest import published  # noqa: F401
from tests.migration import support
from tests.migration.test_engine import own_orthanc, run_in_process, running_wave  # noqa: F401


@pytest.mark.parametrize(
    "rule",
    [
        {"op": "set", "tag": "SOPInstanceUID", "value": "../../../escaped"},
        {"op": "replace", "tag": "StudyInstanceUID", "old": "1.", "new": "../"},
        {"op": "prefix", "tag": "SeriesInstanceUID", "value": "9."},
        {"op": "copy", "from": "PatientID", "to": "SOPInstanceUID"},
        {"op": "map", "tag": "FrameOfReferenceUID", "table": "t"},
        {"op": "remove", "tag": "SOPClassUID"},
    ],
)
def test_a_mapping_rule_on_a_uid_attribute_is_refused(rule):
    problems = mapping.validate_rules([rule], ["t"])
    assert problems and ("is a UID" in problems[0] or "identifies the object" in problems[0])


def test_copying_from_a_uid_into_text_is_still_allowed():
    rule = {"op": "copy", "from": "StudyInstanceUID", "to": "StudyComments"}
    assert mapping.validate_rules([rule]) == []


@pytest.mark.django_db(transaction=True)
def test_an_instance_whose_uids_a_stored_profile_rewrote_is_quarantined_inside_its_folder(
    own_orthanc,  # noqa: F811
    tmp_path,
):
    orthanc = own_orthanc()
    (datasets,) = synthetic.iter_studies(studies=1, instances=1, rows=16, cols=16, seed=771)
    support.upload(orthanc, {"s": datasets})
    source = support.make_source(orthanc)
    support.make_inventory(source, {str(datasets[0].StudyInstanceUID): datasets})
    profile = MappingProfile.objects.create(  # written before the rule check existed
        name="rewrite", rules=[{"op": "set", "tag": "SOPInstanceUID", "value": "../" * 6 + "x"}]
    )
    base = tmp_path / "folders"
    root = base / "a" / "b" / "dest"
    root.mkdir(parents=True)
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(root))
    wave = running_wave("rewrite", source, destination, profile=profile)

    assert list(run_in_process(wave).values()) == [StudyState.QUARANTINED]
    quarantined = QuarantinedInstance.objects.get()
    assert "mapping changed SOPInstanceUID" in quarantined.reason
    assert not StoredInstance.objects.filter(role="stored").exists()
    outside = [p for p in base.rglob("*") if p.is_file() and not p.is_relative_to(root)]
    assert outside == []


def test_a_folder_key_that_climbs_out_of_its_root_is_refused(tmp_path):
    root = tmp_path / "dest"
    root.mkdir()
    store = FilesystemStore(Destination(name="f", kind="filesystem", path=str(root)))
    for key in ("../outside.dcm", "studies/../../outside.dcm", "/etc/passwd"):
        with pytest.raises(DestinationError, match="outside the folder"):
            store.write(key, b"x", sha256_hex(b"x"))
    assert not (tmp_path / "outside.dcm").exists()


@pytest.mark.django_db
def test_a_destination_prefix_with_dot_dot_is_refused(tmp_path):
    with pytest.raises(ActionError, match="climb out"):
        actions.add_destination(name="f", kind="filesystem", path=str(tmp_path), prefix="../up")


class CorruptingFolder(FilesystemStore):
    """A folder whose disk corrupts what is written aside (a failing disk or a buggy
    mount): the kept copy differs from what was read."""

    def write(self, key, data, sha):
        if "validation-kept" in key:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        return super().write(key, data, sha)


@pytest.fixture
def damaged_study(db, tmp_path):
    """A done study in a folder destination whose one object no longer matches the
    manifest: (ledger row, the object's path, its current bytes)."""
    source = PacsSource.objects.create(name="p", ae_title="X", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="d", kind="filesystem", path=str(tmp_path))
    wave = Wave.objects.create(name="w", source=source, destination=destination,
                               state=WaveState.DONE)  # fmt: skip
    row = WaveStudy.objects.create(
        wave=wave, study=Study.objects.create(source=source, study_uid="1.2.3"),
        state=StudyState.DONE,
    )  # fmt: skip
    store = open_store(destination)
    key = store.instance_key("1.2.3", "1.2.3.1", "1.2.3.1.1")
    store.write(key, b"damaged bytes", sha256_hex(b"damaged bytes"))
    StoredInstance.objects.create(
        ledger=row, sop_uid="1.2.3.1.1", series_uid="1.2.3.1", sop_class="1.2", size=8,
        transfer_syntax="1.2.840.10008.1.2.1", sha256=sha256_hex(b"original"), key=key,
    )  # fmt: skip
    return row, tmp_path / key


def test_a_copy_kept_aside_is_read_back_and_compared_before_the_delete(damaged_study):
    row, path = damaged_study
    (kept,) = discrepancies.set_aside_changed(row)
    assert not path.exists()
    assert (path.parents[5] / kept).read_bytes() == b"damaged bytes"


def test_a_copy_kept_aside_that_reads_back_different_stops_the_delete(damaged_study, monkeypatch):
    row, path = damaged_study
    monkeypatch.setitem(storage.STORES, "filesystem", CorruptingFolder)
    with pytest.raises(ActionError, match="reads back different bytes"):
        discrepancies.set_aside_changed(row)
    assert path.read_bytes() == b"damaged bytes"


def test_a_failed_re_migration_reopens_its_discrepancies_and_raises_an_alert(
    damaged_study,
    monkeypatch,
    published,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    row, path = damaged_study
    found = Discrepancy.objects.create(wave=row.wave, ledger=row, study_uid="1.2.3",
                                       sop_uid="1.2.3.1.1", kind="checksum", subject="sha256",
                                       detail="differs")  # fmt: skip
    discrepancies.remigrate(found)
    assert Discrepancy.objects.get(pk=found.pk).status == "remigrating"
    monkeypatch.setitem(storage.STORES, "filesystem", CorruptingFolder)
    with django_capture_on_commit_callbacks(execute=True):
        assert discrepancies.run_remigration(row.pk) is None
    assert Discrepancy.objects.get(pk=found.pk).status == "open"
    assert path.read_bytes() == b"damaged bytes"
    alerts = [m["data"] for t, m in published if t == "alerts.validation"]
    assert [a["cause"] for a in alerts] == [f"validation.remigrate-{row.pk}"]


@pytest.mark.django_db
def test_discrepancies_are_assigned_only_to_people_who_may_work_on_them(cast, client_for):
    source = PacsSource.objects.create(name="p", ae_title="X", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="d", kind="filesystem", path="/tmp")
    wave = Wave.objects.create(name="w", source=source, destination=destination)
    found = Discrepancy.objects.create(wave=wave, study_uid="1.2.3", kind="tag", subject="X",
                                       detail="differs")  # fmt: skip
    url = f"/migration/api/validation/discrepancies/{found.pk}/assign/"
    engineer = client_for(cast.engineer)
    for name in ("pm", "clinician", "staff"):
        refused = engineer.post(url, {"owner": name})
        assert refused.status_code == 400 and "cannot work on discrepancies" in str(refused.json())
    assert Discrepancy.objects.get(pk=found.pk).owner is None
    assert engineer.post(url, {"owner": "admin"}).json()["owner"] == "admin"
    assert client_for(cast.pm).post(url, {"owner": "pm"}).status_code == 403
    with pytest.raises(ActionError, match="you cannot assign"):
        discrepancies.assign(found, cast.pm, cast.engineer)


@pytest.mark.django_db
def test_dicomweb_side_copies_go_to_the_configured_durable_store(
    dicomweb_store, migration_s3, bucket, settings
):
    support.s3_destination(migration_s3, bucket, name="side")
    web = Destination.objects.create(name="web", kind="dicomweb", url=dicomweb_store.dicomweb_url)
    settings.MIGRATION_DICOMWEB_SIDE_DESTINATION = "side"
    store = open_store(web)
    data = b"bytes the engine would not store as an instance"
    key = store.quarantine_key("1.2.3", sha256_hex(data))
    store.put_aside(key, data, sha256_hex(data))

    assert store.read(key) == data and store.existing_sha256(key) == sha256_hex(data)
    listed = support.listed_keys(migration_s3.client(), bucket, "")
    assert [k for k in listed if k.startswith("dicomweb-side/web/quarantine/")] != []
    assert not (settings.VAR_DIR / "migration" / "web" / "quarantine").exists()
    assert "side copies go to side" in store.check()["detail"]
