"""Second witnesses of what a PACS holds, as plain code: its storage folder read file by
file (headers only), or a CSV listing exported from its database.

C-FIND can hide studies a capped PACS never lists (see `inventory.crawler`); the PACS's
own files cannot. The scan only reads: files are opened read-only, never written, moved or
locked, and each is read up to its pixel data, never further.
"""

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from inventory.crawler import UID_RE

HEADER_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


class ListingError(ValueError):
    """A listing that cannot be read as one: the message says why; nothing was stored."""


@dataclass
class Seen:
    """What a scan or listing found: one row per object (a listing: per study)."""

    rows: list = field(default_factory=list)  # (study, series, sop, transfer syntax, size)
    files: int = 0
    unreadable: list = field(default_factory=list)  # {"path", "reason"}

    @property
    def studies(self):
        return len({row[0] for row in self.rows})

    @property
    def instances(self):
        return sum(1 for row in self.rows if row[2])

    def summary(self):
        return {
            "files": self.files,
            "studies": self.studies,
            "instances": self.instances,
            "unreadable": self.unreadable,
        }


def allowed_path(path, roots):
    """`path`, resolved, when it lies below one of `roots` (the folders the web may have
    scanned); ListingError otherwise."""
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return real
    raise ListingError(
        "that folder is not below INVENTORY_SCAN_ROOTS (scan it from the command line)"
    )


def files_under(path):
    """Every regular file below `path`, in a stable order (symlinks are not followed)."""
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)
            if os.path.isfile(full) and not os.path.islink(full):
                yield full


def read_header(path):
    """(study, series, sop, transfer syntax, size) of one Part-10 file, read up to its
    pixel data; or (None, reason)."""
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as handle:
            ds = dcmread(handle, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
    except InvalidDicomError:
        return None, "not a DICOM Part-10 file"
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        return None, f"cannot read it: {type(exc).__name__}"
    uids = [str(ds.get(keyword, "") or "").strip() for keyword in HEADER_TAGS]
    if not uids[0] or not UID_RE.match(uids[0]) or len(uids[0]) > 64:
        return None, "no valid StudyInstanceUID"
    syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    return (*(u[:64] for u in uids), syntax[:64], size), ""


def scan(path, workers=4, progress=None):
    """Read every file below `path` in `workers` threads. `progress(done, total)` after
    each file."""
    if not os.path.isdir(path):
        raise ListingError(f"{path}: not a folder")
    paths = list(files_under(path))
    seen = Seen(files=len(paths))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done, (name, (row, reason)) in enumerate(
            zip(paths, pool.map(read_header, paths, chunksize=64), strict=True), 1
        ):
            if row is None:
                seen.unreadable.append({"path": os.path.relpath(name, path), "reason": reason})
            else:
                seen.rows.append(row)
            if progress:
                progress(done, len(paths))
    return seen


def read_listing(lines):
    """A CSV export of the PACS database with a StudyInstanceUID column (others allowed);
    a bad row is listed with its line number and reason."""
    reader = csv.DictReader(lines)
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    column = columns.get("studyinstanceuid")
    if column is None:
        raise ListingError("the listing has no StudyInstanceUID column")
    seen = Seen()
    for line, record in enumerate(reader, 2):
        seen.files += 1
        uid = (record.get(column) or "").strip()
        if not uid or len(uid) > 64 or not UID_RE.match(uid):
            seen.unreadable.append({"path": f"line {line}", "reason": "no valid StudyInstanceUID"})
            continue
        seen.rows.append((uid, "", "", "", None))
    return seen


def compare(crawled, witnessed):
    """The crawl's Study UIDs against a witness's: the contract of `inventory compare`."""
    crawled, witnessed = set(crawled), set(witnessed)
    only_witness, only_crawl = sorted(witnessed - crawled), sorted(crawled - witnessed)
    return {
        "crawled_studies": len(crawled),
        "witness_studies": len(witnessed),
        "only_in_witness": only_witness,
        "only_in_crawl": only_crawl,
        "agree": not only_witness and not only_crawl,
    }
