"""The DICOM network is written once: fitness functions over the production source."""

import re

import pytest

from tests.core.test_architecture import APPS, PROJECT, ROOT, production_files

PRODUCTION = [path for package in APPS + PROJECT for path in production_files(package)]
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
