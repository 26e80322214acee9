"""Pre-flight lint, per destination kind: what the destination would refuse or mangle.

`structure()` finds what no rule can fix (unreadable or truncated objects, missing
identifying UIDs, another study's instance, objects over the destination's size limit);
`values()` finds values the destination rejects and either coerces them by a rule the
destination declares (`Destination.coerce`) or reports them. The engine quarantines an
instance with any reported problem, with the reason; nothing is dropped silently.
"""

import re

from pydicom.tag import Tag

from migration.mapping import read

REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
PIXEL_DATA = Tag(0x7FE0, 0x0010)
SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
ENDS_EARLY = "is truncated: its compressed pixel data ends early"
MAX_LENGTH = {
    "AE": 16,
    "CS": 16,
    "SH": 16,
    "LO": 64,
    "PN": 64,
    "DA": 8,
    "TM": 16,
    "UI": 64,
    "AS": 4,
}

# What each destination kind checks beyond structure.
KIND_CHECKS = {"s3": set(), "filesystem": set(), "dicomweb": {"overlong_values"}}

# Declared coercions a destination may enable: name -> (problem it fixes, help).
COERCIONS = {
    "truncate_overlong": ("overlong_values", "cut values longer than their VR allows"),
    "sop_class_from_meta": ("missing_sop_class", "take SOPClassUID from the file meta"),
}


class UnreadableError(ValueError):
    """The bytes are not a DICOM object pydicom can read."""


def parse(data):
    try:
        ds = read(data)
    except Exception as exc:
        raise UnreadableError(f"cannot be read as DICOM ({type(exc).__name__})") from exc
    if not len(ds):
        raise UnreadableError("cannot be read as DICOM (no data elements: truncated?)")
    return ds


def structure(ds, size, *, study_uid=None, max_bytes=None, coerce=(), data=None):
    """Problems no mapping can fix, as short reasons, and the tags coerced (a missing
    SOP class is taken from the file meta when the destination declares
    `sop_class_from_meta`). Returns (problems, coerced)."""
    problems, coerced = [], []
    if max_bytes and size > max_bytes:
        problems.append(f"is {size} bytes, over the destination's limit of {max_bytes}")
    if "SOPClassUID" not in ds and "sop_class_from_meta" in coerce:
        meta_class = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
        if meta_class:
            ds.SOPClassUID = meta_class
            coerced.append("SOPClassUID")
    missing = [name for name in REQUIRED_UIDS if not str(ds.get(name, "") or "").strip()]
    if missing:
        problems.append(f"lacks {', '.join(missing)}")
    bad = [
        name for name in REQUIRED_UIDS if name not in missing and not _valid_uid(str(ds.get(name)))
    ]
    if bad:
        problems.append(f"has an invalid UID in {', '.join(bad)}")
    if study_uid and "StudyInstanceUID" not in missing and str(ds.StudyInstanceUID) != study_uid:
        problems.append("belongs to another study")
    truncated = pixel_problem(ds, data)
    if truncated:
        problems.append(truncated)
    return problems, coerced


def identity(ds):
    """The identifying UIDs of a dataset, to compare before and after mapping."""
    return {name: str(ds.get(name, "") or "") for name in REQUIRED_UIDS}


def identity_problems(before, ds):
    """Problems when mapping changed an identifying UID or left an invalid one: the
    object key and the ledger are built from them, so they are checked after mapping."""
    after = identity(ds)
    changed = [name for name in REQUIRED_UIDS if after[name] != before[name]]
    invalid = [name for name in REQUIRED_UIDS if not _valid_uid(after[name])]
    problems = [f"mapping changed {', '.join(changed)}"] if changed else []
    return problems + ([f"has an invalid UID in {', '.join(invalid)}"] if invalid else [])


def _valid_uid(value):
    return len(value) <= 64 and bool(UID_RE.match(value))


SUBSAMPLED = {"YBR_FULL_422", "YBR_PARTIAL_422"}  # two samples per pixel, not three


def expected_pixel_bytes(ds):
    """Bytes that native (uncompressed) Pixel Data must hold, or None when unknown."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    if samples == 3 and str(ds.get("PhotometricInterpretation", "")) in SUBSAMPLED:
        samples = 2
    pixels = rows * cols * samples * frames
    return (pixels * bits + 7) // 8


def pixel_problem(ds, data=None):
    """'is truncated: …' when the pixel data is shorter than the image it declares, or,
    encapsulated and last in the file, lacks its closing delimiter."""
    if PIXEL_DATA not in ds:
        return None
    element = ds.get_item(PIXEL_DATA)
    value = element.value if element is not None else None
    if value is None:
        return None
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed:
        last = list(ds.keys())[-1] == PIXEL_DATA
        closed = data is None or not last or data.endswith(SEQUENCE_END)
        return None if closed and _fragments_ok(value) else ENDS_EARLY
    expected = expected_pixel_bytes(ds)
    if expected is not None and len(value) < expected:
        return f"is truncated: Pixel Data holds {len(value)} of {expected} bytes"
    return None


def _fragments_ok(value):
    """Encapsulated pixel data: items until the end, each complete."""
    offset = 0
    while offset + 8 <= len(value):
        tag = value[offset : offset + 4]
        length = int.from_bytes(value[offset + 4 : offset + 8], "little")
        if tag == b"\xfe\xff\xdd\xe0":
            return True
        if tag != b"\xfe\xff\x00\xe0":
            return False
        offset += 8 + length
    return offset == len(value)


def values(ds, kind, coerce=()):
    """Values the destination kind rejects: fixed by a declared coercion, else reported.
    Returns (problems, coerced tag names)."""
    if "overlong_values" not in KIND_CHECKS.get(kind, set()):
        return [], []
    problems, coerced = [], []
    for element in ds:
        limit = MAX_LENGTH.get(element.VR)
        if limit is None or element.VM != 1 or element.value is None:
            continue
        text = str(element.value)
        if len(text) <= limit:
            continue
        if "truncate_overlong" in coerce and element.VR != "UI":
            element.value = text[:limit]
            coerced.append(element.keyword or str(element.tag))
        else:
            problems.append(
                f"has a {element.keyword or element.tag} longer than {limit} characters"
            )
    return problems, coerced
