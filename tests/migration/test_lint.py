"""Pre-flight lint: what a destination would refuse is coerced by a declared rule or
reported (and then quarantined by the engine), never silently dropped."""

import pytest

from devstack import synthetic
from migration import lint


def instance(**kwargs):
    (ds,) = next(synthetic.iter_studies(rows=16, cols=16, seed=700, **kwargs))
    return ds


def parsed(ds):
    data = synthetic.dataset_bytes(ds)
    return lint.parse(data), len(data)


@pytest.mark.parametrize("syntax", ["explicit", "implicit", "rle", "jpeg"])
def test_a_good_instance_has_no_problems(syntax):
    ds = instance(transfer_syntax=syntax)
    found, size = parsed(ds)
    assert lint.structure(found, size, study_uid=str(ds.StudyInstanceUID)) == ([], [])


def test_pixel_data_shorter_than_the_image_is_reported_as_truncated():
    ds = instance()
    ds.PixelData = ds.PixelData[:100]
    found, size = parsed(ds)
    problems, _ = lint.structure(found, size)
    assert problems == ["is truncated: Pixel Data holds 100 of 512 bytes"]


def test_compressed_pixel_data_cut_short_is_reported_as_truncated():
    data = synthetic.dataset_bytes(instance(transfer_syntax="rle"))
    cut = data[:-4]
    problems, _ = lint.structure(lint.parse(cut), len(cut), data=cut)
    assert problems == ["is truncated: its compressed pixel data ends early"]
    assert lint.structure(lint.parse(data), len(data), data=data) == ([], [])


def test_a_file_cut_inside_its_pixel_data_cannot_be_read_at_all():
    data = synthetic.dataset_bytes(instance(transfer_syntax="rle"))
    with pytest.raises(lint.UnreadableError, match="truncated"):
        lint.parse(data[:-40])


def test_bytes_that_are_not_dicom_cannot_be_parsed():
    with pytest.raises(lint.UnreadableError, match="cannot be read as DICOM"):
        lint.parse(b"\x00" * 10 + b"not dicom at all")


def test_missing_or_invalid_uids_and_another_studys_instance_are_reported():
    ds = synthetic.without_tags(instance(), "SeriesInstanceUID")
    ds.SOPInstanceUID = "1.2.abc"
    found, size = parsed(ds)
    problems, _ = lint.structure(found, size, study_uid="9.9.9")
    assert "lacks SeriesInstanceUID" in problems
    assert "has an invalid UID in SOPInstanceUID" in problems
    assert "belongs to another study" in problems


def test_an_instance_over_the_destinations_limit_is_reported():
    found, size = parsed(instance())
    problems, _ = lint.structure(found, size, max_bytes=100)
    assert problems == [f"is {size} bytes, over the destination's limit of 100"]


def test_a_missing_sop_class_is_taken_from_the_file_meta_when_the_destination_declares_it():
    ds = synthetic.without_tags(instance(), "SOPClassUID")
    found, size = parsed(ds)
    assert lint.structure(found, size)[0] == ["lacks SOPClassUID"]
    found, size = parsed(ds)
    assert lint.structure(found, size, coerce=["sop_class_from_meta"]) == ([], ["SOPClassUID"])
    assert found.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID


def test_dicomweb_rejects_overlong_values_unless_the_destination_truncates_them():
    ds = instance()
    ds.StudyDescription = "X" * 80
    found, _size = parsed(ds)
    assert lint.values(found, "s3") == ([], [])
    problems, coerced = lint.values(found, "dicomweb")
    assert problems == ["has a StudyDescription longer than 64 characters"] and coerced == []
    problems, coerced = lint.values(found, "dicomweb", coerce=["truncate_overlong"])
    assert (problems, coerced) == ([], ["StudyDescription"])
    assert found.StudyDescription == "X" * 64
