"""Scrub PHI-like values out of free text before it is stored (`last_error`), sent (live
events, e-mail) or exported (CSV), and neutralise spreadsheet formulas in CSV cells.

An exception's text is written by libraries that know nothing about PHI: pydicom quotes
element values, a DICOM peer echoes a patient name, a URL may carry user:password@. The
scrub keeps what an engineer needs (the error's kind, UIDs, hosts and ports) and drops
values: quoted strings, person names (`DOE^JANE`), dates, long numbers that are not part
of a UID, values of PHI-named attributes, URL credentials.
"""

import re

PHI_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthName",
    "PatientMotherBirthName",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "MedicalRecordLocator",
    "MRN",
)
MASK = "***"
RULES = (
    # user:password@ in URLs
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1***@"),
    # PatientName='DOE^JANE', PatientID: 123, (0010,0020) ... value
    (
        re.compile(r"(?i)\b(" + "|".join(PHI_KEYWORDS) + r")\b(\s*[=:]\s*)(\S+)"),
        r"\1\2" + MASK,
    ),
    # quoted values, except lowercase slugs (bucket, table and destination names)
    # (an apostrophe inside a word, as in "host's", opens no quote)
    (re.compile(r"(?<!\w)'((?:[^'\n]|'(?=\w))*)'(?!\w)|\"([^\"\n]*)\""), lambda m: _quoted(m)),
    # DICOM person names: DOE^JANE, ^JANE, DOE^^^DR
    (re.compile(r"[^\s'\"=:,;()\[\]]*\^[^\s'\"=:,;()\[\]]*"), MASK),
    # dates (birth dates): 19800131, 1980-01-31, 31/01/1980
    (re.compile(r"(?<![\w.])(19|20)\d{2}-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?![\w.])"), MASK),
    (re.compile(r"(?<![\d.])\d{1,2}/\d{1,2}/\d{4}(?![\d.])"), MASK),
    # long numbers (IDs, MRNs, accession numbers) that are not part of a UID or a port
    (re.compile(r"(?<![\w.:])\d{6,}(?![\w.])"), MASK),
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SLUG = re.compile(r"[a-z][a-z0-9._-]*")


def _quoted(match):
    quote = match.group(0)[0]
    inner = match.group(1) if match.group(1) is not None else match.group(2)
    return match.group(0) if SLUG.fullmatch(inner) else f"{quote}{MASK}{quote}"


def scrub_text(text):
    """`text` without PHI-like values."""
    text = str(text or "")
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


def exception_text(exc):
    """What may be stored or sent about an exception: its kind and its scrubbed text."""
    text = scrub_text(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def csv_cell(value):
    """A CSV cell a spreadsheet will not run: text starting with = + - @ (or tab, CR) gets
    a leading apostrophe. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_row(values):
    return [csv_cell(value) for value in values]


class SafeWriter:
    """A csv.writer whose every cell goes through `csv_cell`."""

    def __init__(self, writer):
        self.writer = writer

    def writerow(self, row):
        return self.writer.writerow(csv_row(row))

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def safe_writer(handle, *args, **kwargs):
    import csv

    return SafeWriter(csv.writer(handle, *args, **kwargs))


class _Echo:
    def write(self, value):
        return value


def csv_lines(header, rows):
    """The header and rows as CSV text lines, one at a time (for a streamed download)."""
    writer = safe_writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def csv_download(filename, header, rows):
    """A streamed CSV attachment: memory stays flat however many rows there are."""
    from django.http import StreamingHttpResponse

    lines = csv_lines(header, rows)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
