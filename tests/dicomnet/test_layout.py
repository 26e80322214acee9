"""The DICOM network is written once: fitness functions over its production modules."""

import re

import pytest

from tests.core.test_architecture import APPS, PROJECT, ROOT, production_files

PRODUCTION = [path for package in APPS + PROJECT for path in production_files(package)]
# the DICOM network's modules: dicomnet's, and every other that imports pynetdicom (an S3
# client's own TCP_NODELAY is not a DICOM association's)
DICOM = [
    path
    for path in PRODUCTION
    if path.parts[-2] == "dicomnet"
    or re.search(r"^\s*(from|import) pynetdicom", path.read_text(), re.M)
]
ONCE = {
    "pynetdicom's global configuration": (r"_config\.\w+\s*=", "dicomnet/__init__.py"),
    "the Nagle fix": (r"TCP_NODELAY", "dicomnet/sockets.py"),
    "the C-ECHO": (r"send_c_echo\(", "dicomnet/scu.py"),
    "pynetdicom's AE": (r"\bAE\(|\(AE\)", "dicomnet/association.py"),
    "the rejection reasons": (r"not recognized", "dicomnet/errors.py"),
}


@pytest.mark.parametrize("what", sorted(ONCE))
def test_written_in_one_place(what):
    pattern, home = ONCE[what]
    places = sorted(
        str(path.relative_to(ROOT)) for path in PRODUCTION if re.search(pattern, path.read_text())
    )
    assert places == [home]
