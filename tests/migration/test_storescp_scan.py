"""The Storage SCP routes each instance by its StudyInstanceUID, found by walking the
data set's first elements instead of parsing it with pydicom: on every file of pydicom's
own test data the walk gives what pydicom reads, or declines (and pydicom decides)."""

from io import BytesIO
from pathlib import Path

import pydicom
from pydicom import dcmread

from migration import storescp

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _pydicom_study_uid(data):
    try:
        ds = dcmread(BytesIO(data), stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
    except Exception:
        return None
    return str(ds.get("StudyInstanceUID", "") or "").strip()


def test_the_walk_finds_what_pydicom_reads_or_declines():
    walked = declined = 0
    for path in sorted(p for p in TEST_FILES.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found = storescp.scan_study_uid(data)
        if found is None:
            declined += 1
            continue
        assert found == _pydicom_study_uid(data), path.name
        walked += 1
    assert walked >= 100, "most files are walked (Explicit and Implicit VR, Big Endian)"
    assert declined >= 1, "deflated and odd files are left to pydicom"


def test_a_file_whose_encoding_contradicts_its_transfer_syntax_is_left_to_pydicom():
    data = (TEST_FILES / "SC_rgb_jpeg.dcm").read_bytes()  # Implicit VR under a JPEG syntax
    assert storescp.scan_study_uid(data) is None
    assert storescp.study_uid_of(data) == _pydicom_study_uid(data) != ""
