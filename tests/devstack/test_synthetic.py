import io
import json
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pydicom import dcmread
from pydicom.uid import CTImageStorage

from devstack import synthetic

SMALL = {"rows": 32, "cols": 32}


def _read(path_or_bytes):
    if isinstance(path_or_bytes, bytes):
        path_or_bytes = io.BytesIO(path_or_bytes)
    return dcmread(path_or_bytes)


def _first(**kwargs):
    return next(synthetic.iter_studies(**{**SMALL, **kwargs}))[0]


@pytest.mark.parametrize("name", sorted(synthetic.TRANSFER_SYNTAXES))
def test_every_transfer_syntax_writes_decodable_files(tmp_path, name):
    paths = synthetic.generate(tmp_path, transfer_syntax=name, instances=2, rows=32, cols=40)
    for path in paths:
        ds = _read(path)
        assert ds.file_meta.TransferSyntaxUID == synthetic.TRANSFER_SYNTAXES[name]
        assert ds.pixel_array.shape == (32, 40)
        assert ds.SOPClassUID == CTImageStorage


@pytest.mark.parametrize("modality", sorted(synthetic.MODALITIES))
def test_every_modality_has_its_sop_class(modality):
    ds = _read(synthetic.dataset_bytes(_first(modality=modality, transfer_syntax="rle")))
    assert ds.Modality == modality
    assert ds.SOPClassUID == synthetic.MODALITIES[modality].sop_class
    assert ds.pixel_array.shape == (32, 32)


def test_lossless_syntaxes_decode_to_the_native_pixels():
    native = _first(seed=3).pixel_array
    for name in ("implicit", "rle", "jpeg2000"):
        encoded = _read(synthetic.dataset_bytes(_first(seed=3, transfer_syntax=name)))
        assert (encoded.pixel_array == native).all()


def test_jpeg_baseline_is_marked_lossy_8_bit():
    ds = _read(synthetic.dataset_bytes(_first(transfer_syntax="jpeg")))
    assert (ds.BitsAllocated, ds.BitsStored, ds.LossyImageCompression) == (8, 8, "01")


def test_multiframe_objects_carry_all_frames():
    for name in ("explicit", "rle", "jpeg"):
        ds = _read(synthetic.dataset_bytes(_first(multiframe=3, transfer_syntax=name)))
        assert ds.NumberOfFrames == 3
        assert ds.pixel_array.shape == (3, 32, 32)


@pytest.mark.parametrize("charset", synthetic.CHARSETS)
def test_charsets_round_trip_the_patient_name(tmp_path, charset):
    paths = synthetic.generate(tmp_path, studies=6, charset=charset, rows=8, cols=8)
    names = set()
    for path in paths:
        ds = _read(path)
        assert ds.SpecificCharacterSet == charset
        names.add(str(ds.PatientName))
    assert all(not name.isascii() and "^" in name for name in names)
    latin1 = {name for name in names if _encodable(name, "latin-1")}
    assert latin1 == names if charset == "ISO_IR 100" else latin1 != names


def _encodable(text, encoding):
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def test_same_seed_gives_identical_bytes(tmp_path):
    kwargs = {"studies": 2, "series": 2, "instances": 2, "rows": 16, "cols": 16, "seed": 7}
    first = synthetic.generate(tmp_path / "a", **kwargs, transfer_syntax="jpeg")
    second = synthetic.generate(tmp_path / "b", **kwargs, transfer_syntax="jpeg")
    assert [p.name for p in first] == [p.name for p in second]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_different_seed_gives_different_uids():
    one, other = _first(seed=1), _first(seed=2)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert one[keyword].value != other[keyword].value


def test_counts_paths_and_unique_uids(tmp_path):
    paths = synthetic.generate(tmp_path, studies=3, series=2, instances=4, rows=8, cols=8)
    assert len(paths) == 3 * 2 * 4
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert {"0/0/0.dcm", "0/1/3.dcm", "2/1/3.dcm"} <= names
    datasets = [_read(path) for path in paths]
    assert len({ds.SOPInstanceUID for ds in datasets}) == 24
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 6
    assert len({ds.StudyInstanceUID for ds in datasets}) == 3
    for ds in datasets:
        for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
            assert uid.is_valid and len(uid) <= 64
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_undated_studies_have_no_study_date():
    studies = list(synthetic.iter_studies(studies=10, undated=3, rows=8, cols=8))
    undated = [study for study in studies if not study[0].get("StudyDate")]
    assert len(undated) == 3
    assert any("StudyDate" not in study[0] for study in undated)


def test_dates_spread_over_the_range():
    start, end = date(2010, 1, 1), date(2019, 12, 31)
    studies = synthetic.iter_studies(studies=9, date_from=start, date_to=end, rows=8, cols=8)
    dates = sorted(study[0].StudyDate for study in studies)
    assert dates[0] == "20100101" and dates[-1] == "20191231"
    assert len(set(dates)) == 9
    assert len({d[:4] for d in dates}) >= 8


@pytest.mark.parametrize("name", ["explicit", "implicit"])
def test_truncated_bytes_cut_the_pixel_data_short(name):
    ds = _first(transfer_syntax=name)
    data = synthetic.truncated_bytes(ds, keep=0.5)
    assert len(data) < len(synthetic.dataset_bytes(ds))
    read = _read(data)
    assert len(read.PixelData) == len(ds.PixelData) // 2
    with pytest.raises(ValueError):
        _ = read.pixel_array


def test_without_tags_drops_required_tags_from_a_copy():
    ds = _first()
    broken = synthetic.without_tags(ds, "StudyInstanceUID", "PatientID")
    assert "StudyInstanceUID" in ds
    read = _read(synthetic.dataset_bytes(broken))
    assert "StudyInstanceUID" not in read and "PatientID" not in read
    with pytest.raises(ValueError):
        synthetic.without_tags(ds, "NoSuchKeyword")


@pytest.mark.parametrize("name", sorted(synthetic.TRANSFER_SYNTAXES))
def test_duplicate_sop_has_same_uid_and_different_pixels(name):
    ds = _first(transfer_syntax=name)
    twin = _read(synthetic.dataset_bytes(synthetic.duplicate_sop_different_content(ds)))
    assert twin.SOPInstanceUID == ds.SOPInstanceUID
    assert twin.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert twin.PixelData != ds.PixelData
    assert twin.pixel_array.shape == (32, 32)


@pytest.mark.parametrize(
    "kwargs",
    [{"studies": 0}, {"modality": "XX"}, {"transfer_syntax": "jpeg-ls"}, {"charset": "GB18030"},
     {"undated": 2}, {"date_from": date(2020, 1, 1), "date_to": date(2019, 1, 1)}],
)  # fmt: skip
def test_bad_arguments_raise_value_error_before_generating(kwargs):
    with pytest.raises(ValueError):
        synthetic.iter_studies(**kwargs)


def test_command_writes_files_and_prints_json(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "generate_dicom", str(tmp_path), "--studies", "2", "--series", "2", "--instances", "2",
        "--rows", "16", "--cols", "16", "--modality", "mr", "--transfer-syntax", "rle",
        "--charset", "ISO_IR 192", "--undated", "1", "--date-from", "2015-01-01",
        "--json", stdout=out, stderr=err,
    )  # fmt: skip
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    paths = sorted(tmp_path.rglob("*.dcm"))
    assert summary["files"] == len(paths) == 8
    assert summary["studies"] == 2
    assert summary["bytes"] == sum(path.stat().st_size for path in paths)
    assert summary["outdir"] == str(tmp_path.resolve())
    assert "8/8" in err.getvalue()
    datasets = [_read(path) for path in paths]
    assert {ds.Modality for ds in datasets} == {"MR"}
    assert {ds.get("StudyDate") or None for ds in datasets} == {None, "20150101"}


def test_command_prints_a_summary_line(tmp_path):
    out = io.StringIO()
    args = ["--rows", "8", "--cols", "8"]
    call_command("generate_dicom", str(tmp_path), *args, stdout=out, stderr=io.StringIO())
    assert out.getvalue().startswith("Wrote 1 files (1 studies, ")


@pytest.mark.parametrize(
    "args, message",
    [(["--studies", "0"], "studies must be >= 1"), (["--modality", "XX"], "invalid choice"),
     (["--undated", "5"], "undated"), (["--date-from", "2020-13-01"], "YYYY-MM-DD")],
)  # fmt: skip
def test_command_rejects_bad_arguments(tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("generate_dicom", str(tmp_path / "out"), *args, stderr=io.StringIO())
    assert not (tmp_path / "out").exists()


def test_command_rejects_an_unwritable_outdir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CommandError, match="cannot create OUTDIR"):
        call_command("generate_dicom", str(blocker / "out"), stderr=io.StringIO())
