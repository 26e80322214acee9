"""The spot-check against the real PACS (Orthanc) and S3 store (SeaweedFS): every tag
after the mapping profile, decoded pixels frame by frame, stored bytes against the
manifest; and the stratified, reproducible sample."""

import copy
from datetime import date
from types import SimpleNamespace

import pytest
from pydicom.uid import JPEG2000, RLELossless

from devstack import synthetic
from inventory.models import PacsSource, Study
from migration import discrepancies, validation
from migration.models import Destination, Discrepancy, StoredInstance, StudyState, Wave, WaveStudy
from migration.storage import sha256_hex
from tests.migration import validation_support as vs

pytestmark = pytest.mark.django_db
SAME = SimpleNamespace(apply=lambda ds, study_uid, size: ds)


@pytest.fixture(scope="module")
def clean(django_db_setup, django_db_blocker, mixed_pacs, migration_s3, engine_settings):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies)
    with vs.shared_wave(django_db_blocker, "spot", orthanc, chosen, migration_s3) as wave:
        yield wave, chosen


@pytest.fixture(scope="module")
def mapped(django_db_setup, django_db_blocker, mixed_pacs, migration_s3, engine_settings):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies, ("OT",))
    rules = [{"op": "set", "tag": "PatientID", "value": "MRN-0001"}]
    with vs.shared_wave(django_db_blocker, "mapped", orthanc, chosen, migration_s3, rules) as wave:
        yield wave, chosen


def by_kind(found):
    return {(f["kind"], f["instance"], f["subject"]): f for f in found}


def test_a_clean_wave_spot_check_compares_every_instance_and_finds_nothing_even_compressed(
    clean,
):
    wave, studies = clean
    syntaxes = set(
        StoredInstance.objects.filter(ledger__wave=wave).values_list("transfer_syntax", flat=True)
    )
    assert {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5"} <= syntaxes
    assert syntaxes & {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"}

    result = validation.spotcheck(wave, seed=5)

    assert result["studies_sampled"] == 5
    assert result["instances_compared"] == sum(map(len, studies.values())) == 6
    assert result["discrepancies"] == [] and result["errors"] == []
    assert result["seed"] == 5


def test_a_changed_tag_is_named_without_phi_values_and_a_flipped_pixel_byte_names_its_frame(
    clean, migration_s3
):
    wave, _studies = clean
    tagged, flipped = vs.stored(wave, "MR", 0), vs.stored(wave, "CT")
    original = {item.key: vs.s3_object(migration_s3, wave, item.key) for item in (tagged, flipped)}
    altered = vs.with_tag(original[tagged.key], "InstitutionName", "Elsewhere")
    altered = vs.with_tag(altered, "PatientName", "Someone^Else")
    vs.put_object(migration_s3, wave, tagged.key, altered)
    vs.put_object(migration_s3, wave, flipped.key, vs.with_pixel_flipped(original[flipped.key]))
    try:
        result = validation.spotcheck(wave)
    finally:
        for key, body in original.items():
            vs.put_object(migration_s3, wave, key, body)

    found = by_kind(result["discrepancies"])
    assert set(found) == {
        ("tag", tagged.sop_uid, "InstitutionName"),
        ("tag", tagged.sop_uid, "PatientName"),
        ("checksum", tagged.sop_uid, "sha256"),
        ("pixel", flipped.sop_uid, "frame 1"),
        ("checksum", flipped.sop_uid, "sha256"),
    }
    institution = found[("tag", tagged.sop_uid, "InstitutionName")]
    assert institution["study"] == tagged.ledger.study.study_uid
    assert institution["series"] == tagged.series_uid
    assert "'Elsewhere'" in institution["detail"]
    name = found[("tag", tagged.sop_uid, "PatientName")]
    assert name["detail"] == "tag PatientName: value differs"
    assert "Someone" not in str(result) and tagged.ledger.study.patient_name not in str(result)
    assert found[("pixel", flipped.sop_uid, "frame 1")]["detail"].startswith("frame 1:")


def test_a_profile_rewriting_patient_id_is_not_a_difference_but_another_changed_tag_is(
    mapped, migration_s3
):
    wave, studies = mapped
    assert validation.spotcheck(wave)["discrepancies"] == []
    item = vs.stored(wave, "OT", 0)
    body = vs.s3_object(migration_s3, wave, item.key)
    assert b"MRN-0001" in body
    vs.put_object(migration_s3, wave, item.key, vs.with_tag(body, "StudyDescription", "Changed"))
    try:
        result = validation.spotcheck(wave)
    finally:
        vs.put_object(migration_s3, wave, item.key, body)

    subjects = {f["subject"] for f in result["discrepancies"] if f["instance"] == item.sop_uid}
    assert subjects == {"StudyDescription", "sha256"}


def test_lossless_transcoding_matches_on_pixels_and_a_lossy_one_is_named_frame_by_frame():
    (rle,) = next(synthetic.iter_studies(rows=16, cols=16, modality="US", seed=7,
                                         transfer_syntax="rle"))  # fmt: skip
    plain = copy.deepcopy(rle)
    plain.decompress(generate_instance_uid=False)
    source, copy_bytes = synthetic.dataset_bytes(rle), synthetic.dataset_bytes(plain)
    assert validation.compare_instance(source, copy_bytes, sha256_hex(copy_bytes), SAME, "") == []

    (frames,) = next(synthetic.iter_studies(rows=64, cols=64, modality="CT", seed=8,
                                            multiframe=3))  # fmt: skip
    lossless, lossy = copy.deepcopy(frames), copy.deepcopy(frames)
    lossless.compress(RLELossless, generate_instance_uid=False)
    lossy.compress(JPEG2000, j2k_cr=[40], generate_instance_uid=False)
    source = synthetic.dataset_bytes(frames)
    for copy_ds, expected in ((lossless, []), (lossy, ["frame 1", "frame 2", "frame 3"])):
        data = synthetic.dataset_bytes(copy_ds)
        found = validation.compare_instance(source, data, sha256_hex(data), SAME, "")
        assert [subject for _kind, _detail, subject in found] == expected
    assert "lossy" in found[0][1]


def test_the_sample_is_stratified_by_modality_and_year_and_reproducible_with_a_seed(settings):
    source = PacsSource.objects.create(name="strata", ae_title="X", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="strata", kind="filesystem", path="/tmp")
    wave = Wave.objects.create(name="strata", source=source, destination=destination)
    strata = [("CT", 2012, 60), ("MR", 2012, 30), ("CT", 2019, 10)]
    for modality, year, count in strata:
        for n in range(count):
            uid = f"1.2.{modality}.{year}.{n}"
            when = date(year, 3, 1)
            study = Study.objects.create(
                source=source, study_uid=uid, modalities=modality, study_date=when
            )
            WaveStudy.objects.create(wave=wave, study=study, state=StudyState.DONE)

    first = validation.sample_studies(wave, 20, seed=11)
    again = validation.sample_studies(wave, 20, seed=11)
    other = validation.sample_studies(wave, 20, seed=12)

    assert [r.pk for r in first] == [r.pk for r in again] != [r.pk for r in other]
    counts = {(m, y): 0 for m, y, _n in strata}
    for row in first:
        counts[(row.study.modalities, row.study.study_date.year)] += 1
    assert counts == {("CT", 2012): 12, ("MR", 2012): 6, ("CT", 2019): 2}
    assert validation.default_sample_size(wave) == 100
    settings.VALIDATION_SAMPLE_STUDIES = 50
    assert validation.default_sample_size(wave) == 50


def test_after_a_re_migration_what_is_still_wrong_stays_open_with_the_new_detail(
    clean, migration_s3
):
    wave, _studies = clean
    item = vs.stored(wave, "MR", 0)
    row = item.ledger
    still, gone = (
        Discrepancy.objects.create(wave=wave, ledger=row, study_uid=row.study.study_uid,
                                   series_uid=item.series_uid, sop_uid=item.sop_uid, kind=kind,
                                   subject=subject, detail="old", status="remigrating")
        for kind, subject in (("tag", "InstitutionName"), ("pixel", "frame 1"))
    )  # fmt: skip
    body = vs.s3_object(migration_s3, wave, item.key)
    vs.put_object(migration_s3, wave, item.key, vs.with_tag(body, "InstitutionName", "Other"))
    try:
        discrepancies.revalidate(row)
    finally:
        vs.put_object(migration_s3, wave, item.key, body)

    still.refresh_from_db()
    gone.refresh_from_db()
    assert still.status == "open" and "'Other'" in still.detail
    assert gone.status == "fixed"
    assert Discrepancy.objects.get(sop_uid=item.sop_uid, kind="checksum").status == "open"
    assert discrepancies.wave_validation(wave)["reconciled"] is True
