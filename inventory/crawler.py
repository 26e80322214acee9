"""The inventory crawl as plain code: which C-FIND to ask, when an answer was capped, how to
split a range, and what a response says about a study.

PACS cap C-FIND results silently, so the crawl never trusts a big answer. It starts with
one universal query; when that is capped it walks two trees whose leaves all answer under
the cap:

* **dated**: StudyDate decades → years → months → days → StudyTime hours → 10-minute
  blocks → minutes → modality;
* **timed**: StudyTime ranges with no StudyDate key, which find the studies a dated range
  never matches (no StudyDate, an empty one or an odd one). This tree waits for the dated
  one and is planned from it: the ledger then knows when in the day the studies are, so
  the day is cut into ranges of about half the cap each (→ minutes → modality if still
  capped).

A re-crawl plans its dated tree the same way from the dates the ledger already holds.

A study with a usable StudyDate or a usable StudyTime is in some leaf; only a study with
neither could hide, and only while the universal query is capped. After both trees the
crawl walks the partitions below (`PARTITIONS`) to find such studies; it never takes them
for a proof (`verdict`): a capped crawl is complete only when a second witness agrees
(`inventory.witness`). A capped answer is
recognised three ways: the PACS ends with Cancel (Orthanc's LimitFindResults), the answer
reaches a known or detected cap, or, with no cap known, the count is one of the round caps
PACS ship with. Responses are deduplicated by StudyInstanceUID (some SCPs repeat a study
once per instance). The tree lives in the database (see `inventory.actions`), so a crawl
killed half-way resumes with the nodes still pending.
"""

import contextlib
import re
import time
import warnings
from calendar import monthrange
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from pydicom.charset import convert_encodings, decode_bytes, python_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.valuerep import PN_DELIMS, TEXT_VR_DELIMS
from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind

CANCELLED = "the PACS stopped early (Cancel)"
ROUND_CAPS = frozenset({100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000})
EARLIEST = date(1900, 1, 1)
STUDY_KEYS = (
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "AccessionNumber",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
_TAGS = {
    keyword: (Tag(tag_for_keyword(keyword)), dictionary_VR(tag_for_keyword(keyword)))
    for keyword in (*STUDY_KEYS, "SeriesInstanceUID", "Modality", "SeriesNumber",
                    "SeriesDescription", "NumberOfSeriesRelatedInstances", "SOPInstanceUID",
                    "SOPClassUID", "NumberOfPatientRelatedStudies")
}  # fmt: skip
_RAW_TAGS = {keyword: int(tag) for keyword, (tag, _vr) in _TAGS.items()}  # plain ints: Flat keys
_TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC"}
LIMITS = {"patient_id": 64, "patient_name": 324, "accession_number": 16, "description": 64}
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class Range:
    """One node of the query tree: the keys that narrow a study-level C-FIND."""

    kind: str  # "all", "dated" or "timed"
    level: str  # all, span, days, decade, year, month, day, hour, tenmin, plan, times,
    # minute, modality
    date_from: date | None = None
    date_to: date | None = None
    time_from: str = ""
    time_to: str = ""
    modality: str = ""
    prefix: str = ""  # PHI (part of an ID or a name): stored, never shown or logged

    @classmethod
    def from_model(cls, node):
        return cls(
            node.kind,
            node.level,
            node.date_from,
            node.date_to,
            node.time_from,
            node.time_to,
            node.modality,
            node.prefix,
        )

    def fields(self):
        return {
            "kind": self.kind,
            "level": self.level,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "time_from": self.time_from,
            "time_to": self.time_to,
            "modality": self.modality,
            "prefix": self.prefix,
        }

    @property
    def study_date(self):
        if self.date_from is None:
            return ""
        if self.date_from == self.date_to:
            return f"{self.date_from:%Y%m%d}"
        return f"{self.date_from:%Y%m%d}-{self.date_to:%Y%m%d}"

    @property
    def study_time(self):
        return f"{self.time_from}-{self.time_to}" if self.time_from else ""

    @property
    def label(self):
        if self.kind in PARTITIONS:
            return _partition_label(self)
        parts = []
        if self.kind == "all":
            parts.append("every study")
        if self.date_from is not None:
            parts.append(_date_label(self))
        elif self.kind == "timed":
            parts.append("any date")
        if self.time_from:
            parts.append(f"{_hhmm(self.time_from)}–{_hhmm(self.time_to)}")
        if self.modality:
            parts.append(self.modality)
        return " · ".join(parts)


def _partition_label(rng):
    """What a partition node asks, without the prefix itself (part of an ID or a name)."""
    what = PARTITIONS[rng.kind][1]
    if rng.level == "root":
        return what
    if rng.level == "studies":
        return f"{what}: one patient's studies"
    shape = "exactly" if rng.level == "exact" else "starting with"
    return f"{what} {shape} {len(rng.prefix)} character{'s' * (len(rng.prefix) != 1)}"


def _date_label(rng):
    whole = (rng.date_from.month, rng.date_from.day, rng.date_to.month, rng.date_to.day)
    if rng.level == "decade" and whole == (1, 1, 12, 31):
        return f"{rng.date_from:%Y}–{rng.date_to:%Y}"
    if rng.level == "year" and whole == (1, 1, 12, 31):
        return f"{rng.date_from:%Y}"
    if rng.level == "month" and rng.date_from.day == 1 and (rng.date_to + timedelta(1)).day == 1:
        return f"{rng.date_from:%Y-%m}"
    if rng.date_from == rng.date_to:
        return f"{rng.date_from:%Y-%m-%d}"
    return f"{rng.date_from:%Y-%m-%d} – {rng.date_to:%Y-%m-%d}"


def _hhmm(value):
    digits = value.split(".")[0].ljust(4, "0")
    return f"{digits[:2]}:{digits[2:4]}"


def roots(since=None, today=None):
    """The first nodes of a crawl: one universal query, or a dated span from `since`."""
    today = today or date.today()
    if since is not None:
        return [Range("dated", "span", since, date(today.year + 1, 12, 31))]
    return [Range("all", "all")]


def split(rng, modalities=(), today=None, known_days=None, target=50, partitions=()):
    """The children of a capped node, or [] when it cannot be split any further.

    `known_days` ({date: studies} the ledger knew before this crawl) lets a re-crawl split
    the dated span straight into ranges of about `target` known studies each; `partitions`
    (kinds of `PARTITIONS`) are walked after the dated and timed trees.
    """
    today = today or date.today()
    if rng.level == "all":
        span = Range("dated", "span", EARLIEST, date(today.year + 1, 12, 31))
        return [span, PLAN, *(Range(kind, "root") for kind in PARTITIONS if kind in partitions)]
    if rng.level == "span":
        if known_days:
            return plan_dates(known_days, target, rng)
        return [_clip(rng, date(y, 1, 1), date(y + 9, 12, 31), "decade") for y in _decades(rng)]
    if rng.level == "days":
        return _calendar(rng)
    if rng.level == "decade":
        return [_clip(rng, date(y, 1, 1), date(y, 12, 31), "year") for y in _years(rng)]
    if rng.level == "year":
        return [_month(rng, m) for m in range(1, 13) if _month(rng, m) is not None]
    if rng.level == "month":
        return [_day(rng, d) for d in _days(rng)]
    if rng.level == "day":
        return _hours(rng)
    if rng.level == "hour":
        return _ten_minutes(rng)
    if rng.level == "tenmin":
        return _minutes(rng)
    if rng.level == "times":
        return _split_times(rng)
    if rng.level == "minute":
        return [replace(rng, level="modality", modality=m) for m in sorted(set(modalities))]
    return []


# The StudyTime tree is planned, not asked: once the dated tree is done, the ledger knows
# when in the day the studies are, and `plan_times` cuts the day into ranges of about
# `target` known studies; studies with no usable date land in them too.
PLAN = Range("timed", "plan")


def plan_times(minutes, target):
    """Contiguous whole-minute StudyTime ranges covering the whole day, each holding at most
    `target` of the known studies ({minute of the day: studies}); a busier minute gets a
    range of its own."""
    ranges, start, load = [], 0, 0
    for minute in range(1440):
        n = minutes.get(minute, 0)
        if minute > start and load + n > target:
            ranges.append((start, minute - 1))
            start, load = minute, 0
        load += n
    ranges.append((start, 1439))
    return [_times(first, last) for first, last in ranges]


def _times(first, last, level="times"):
    """Minutes `first`..`last` of the day; the lower bound in its shortest TM form ("07" for
    07:00, "0715" for 07:15) so that values written "07" or "0715" still match on PACS that
    compare times as text (Orthanc)."""
    low = f"{first // 60:02d}" if first % 60 == 0 else f"{first // 60:02d}{first % 60:02d}"
    return Range("timed", level, time_from=low, time_to=f"{last // 60:02d}{last % 60:02d}59.999999")


def _minute_span(rng):
    low = rng.time_from.ljust(4, "0")
    high = rng.time_to[:4]
    return int(low[:2]) * 60 + int(low[2:4]), int(high[:2]) * 60 + int(high[2:4])


def _split_times(rng):
    first, last = _minute_span(rng)
    if last - first < 60:
        return [replace(_times(m, m, "minute"), kind=rng.kind) for m in range(first, last + 1)]
    edges = [first, *range((first // 60 + 1) * 60, last + 1, 60)]
    return [_times(a, min(b - 1, last)) for a, b in zip(edges, [*edges[1:], last + 1], strict=True)]


def plan_dates(days, target, rng):
    """Contiguous day ranges covering `rng`, each holding at most `target` of the known
    studies ({date: studies}); a busier day gets a range of its own."""
    ranges, start, load = [], rng.date_from, 0
    for day in sorted(d for d in days if rng.date_from <= d <= rng.date_to):
        if day > start and load + days[day] > target:
            ranges.append((start, day - timedelta(days=1)))
            start, load = day, 0
        load += days[day]
    ranges.append((start, rng.date_to))
    return [replace(rng, level="days", date_from=a, date_to=b) for a, b in ranges]


def _calendar(rng):
    """A planned day range, split along the calendar: years, months, then days."""
    if rng.date_from.year != rng.date_to.year:
        return [_clip(rng, date(y, 1, 1), date(y, 12, 31), "year") for y in _years(rng)]
    if rng.date_from.month != rng.date_to.month:
        months = range(rng.date_from.month, rng.date_to.month + 1)
        return [_month(replace(rng, level="year"), m) for m in months]
    if rng.date_from != rng.date_to:
        return [_day(rng, d) for d in _days(rng)]
    return _hours(rng)


def _decades(rng):
    return range(rng.date_from.year // 10 * 10, rng.date_to.year + 1, 10)


def _years(rng):
    return range(rng.date_from.year, rng.date_to.year + 1)


def _clip(rng, start, end, level):
    return replace(
        rng, level=level, date_from=max(start, rng.date_from), date_to=min(end, rng.date_to)
    )


def _month(rng, month):
    year = rng.date_from.year
    start, end = date(year, month, 1), date(year, month, monthrange(year, month)[1])
    if end < rng.date_from or start > rng.date_to:
        return None
    return _clip(rng, start, end, "month")


def _days(rng):
    span = (rng.date_to - rng.date_from).days
    return [rng.date_from + timedelta(days=n) for n in range(span + 1)]


def _day(rng, day):
    return replace(rng, level="day", date_from=day, date_to=day)


def _hours(rng):
    """StudyTime hour ranges. Lower bounds use the shortest TM form ("07") so that values
    written "0759" still match on PACS that compare times as strings (Orthanc)."""
    kind = "timed" if rng.kind == "all" else rng.kind
    return [
        replace(rng, kind=kind, level="hour", time_from=f"{h:02d}", time_to=f"{h:02d}5959.999999")
        for h in range(24)
    ]


def _ten_minutes(rng):
    hour = rng.time_from[:2]
    return [
        replace(
            rng, level="tenmin", time_from=f"{hour}{m:02d}", time_to=f"{hour}{m + 9:02d}59.999999"
        )
        for m in range(0, 60, 10)
    ]


def _minutes(rng):
    start = rng.time_from[:4]
    hour, first = start[:2], int(start[2:4])
    return [
        replace(rng, level="minute", time_from=f"{hour}{m:02d}", time_to=f"{hour}{m:02d}59.999999")
        for m in range(first, first + 10)
    ]


# -- partitions for the studies the dated and timed trees cannot hold --------------------
#
# A study with neither a usable StudyDate nor a usable StudyTime is in no node of those
# trees. These partitions split on what such a study may still carry, by prefix with
# wildcards ("A*" → "AB*" …, plus "A" exactly for the value that is the prefix itself):
#
# * **patient**: the Patient Root walk. Patients by PatientID prefix with their
#   NumberOfPatientRelatedStudies; the studies of a patient are asked only when the PACS
#   counts more than the crawl has listed for that PatientID. Exhaustive over its domain.
# * **pid**, **acc**, **name**: study-level prefixes of PatientID, AccessionNumber and
#   PatientName. A capped node whose answer held no study the crawl had not listed yet is
#   pruned, not split: these trees look for hidden studies, they never prove anything.
#
# None of them can prove that no study hides (a study may carry none of these keys, or a
# character no query asked for); only a second witness can (see `inventory.witness`).

PARTITIONS = {  # kind: (the key its prefixes narrow, what the crawl page calls it)
    "patient": ("PatientID", "patients by PatientID (Patient Root)"),
    "pid": ("PatientID", "PatientID prefix"),
    "acc": ("AccessionNumber", "AccessionNumber prefix"),
    "name": ("PatientName", "PatientName prefix"),
}
STAGES = ("all", "dated", "timed", *PARTITIONS)
PATIENT_MODEL = PatientRootQueryRetrieveInformationModelFind
BASE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
UNASKABLE = frozenset("*?\\")  # wildcards and the value separator cannot be asked for
PREFIX_LIMITS = {"PatientID": 64, "AccessionNumber": 16, "PatientName": 64}
FIELDS = {"PatientID": "patient_id", "AccessionNumber": "accession_number",
          "PatientName": "patient_name"}  # fmt: skip


def alphabet(values):
    """The first characters a prefix tree starts with: digits and letters, and every other
    character the PACS returned in `values` that a C-FIND can ask for."""
    learned = {c for value in values for c in value} - UNASKABLE - set(BASE_ALPHABET)
    return BASE_ALPHABET + "".join(sorted(c for c in learned if c.isprintable()))


def next_letters(prefix, values):
    """The characters that follow `prefix` in `values` (what the PACS returned and the
    ledger holds). Below the first character a tree follows the values it knows: asking
    every letter at every depth would cost ~70 queries per capped node, and these trees
    search, they do not prove (see `verdict`)."""
    n = len(prefix)
    found = {v[n] for v in values if len(v) > n and v.startswith(prefix)}
    return "".join(sorted(c for c in found - UNASKABLE if c.isprintable()))


def askable(value):
    return bool(value) and not (set(value) & UNASKABLE)


def extend(rng, letters):
    """The children of a capped prefix node: the prefix exactly, and one more character."""
    exact = [replace(rng, level="exact")] if rng.prefix else []
    return exact + [replace(rng, level="prefix", prefix=rng.prefix + c) for c in letters]


def partition_query(rng):
    """The C-FIND of a partition node: (identifier, Patient Root?)."""
    keyword = PARTITIONS[rng.kind][0]
    value = rng.prefix if rng.level in ("exact", "studies") else rng.prefix + "*"
    if rng.kind == "patient" and rng.level != "studies":
        query = Dataset()
        query.QueryRetrieveLevel = "PATIENT"
        query.SpecificCharacterSet = "ISO_IR 192"
        query.PatientID = value
        query.NumberOfPatientRelatedStudies = ""
        return query, True
    query = study_query(Range("all", "all"))
    setattr(query, keyword, value)
    return query, rng.kind == "patient"


def parse_patients(matches):
    """{PatientID: NumberOfPatientRelatedStudies or None} of a patient-level answer."""
    found = {}
    for ds in matches:
        patient_id = _text(ds, "PatientID")
        count, _ = _count(_text(ds, "NumberOfPatientRelatedStudies"), "studies")
        if patient_id:
            found[patient_id] = count
    return found


def study_query(rng, keys=STUDY_KEYS):
    """The study-level C-FIND identifier for a node; every returned key is asked for."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.SpecificCharacterSet = "ISO_IR 192"
    for keyword in keys:
        setattr(query, keyword, "")
    query.StudyDate = rng.study_date
    query.StudyTime = rng.study_time
    query.ModalitiesInStudy = rng.modality
    return query


def is_capped(count, truncated, cap=None, signals=False):
    """Did the PACS stop early? `cap`: the known or detected limit (None: unknown).
    `signals`: this PACS has ended a capped answer with Cancel, so an answer it ends with
    Success is whole even at the cap (Orthanc answers exactly `cap` matches with Success)."""
    if truncated:
        return True
    if signals:
        return False
    if cap:
        return count >= cap
    return count in ROUND_CAPS


# -- what a response says --------------------------------------------------------------


@dataclass
class Parsed:
    """The studies of one answer, deduplicated, and what was wrong with the rest."""

    studies: dict = field(default_factory=dict)  # StudyInstanceUID -> record
    problems: list = field(default_factory=list)  # (code, detail) without a study
    duplicates: int = 0
    modalities: set = field(default_factory=set)
    ignores_modality: bool = False


def parse_answer(matches, rng=None):
    parsed = Parsed()
    for identifier in matches:
        record, problems = parse_study(identifier)
        if record is None:
            parsed.problems.extend(problems)
            continue
        uid = record["study_uid"]
        if uid in parsed.studies:
            parsed.duplicates += 1
            continue
        parsed.studies[uid] = record
        found = {m for m in record["modalities"].split("\\") if 0 < len(m) <= 16}
        parsed.modalities |= found
        if rng is not None and rng.modality and rng.modality not in found:
            parsed.ignores_modality = True
    return parsed


def parse_study(ds):
    """(record, problems) for one study-level response; record is None without a usable UID.

    Problems are (code, detail) pairs; details never quote names, IDs or accession numbers.
    """
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charset = _charset(ds)
        values = _values(ds, STUDY_KEYS, charset)
    uid = values["StudyInstanceUID"].strip()
    when = f"StudyDate {values['StudyDate'] or 'empty'}, StudyTime {values['StudyTime'] or 'empty'}"
    if not uid:
        return None, [("missing_uid", f"a response without StudyInstanceUID ({when})")]
    if len(uid) > 64 or not UID_RE.match(uid):
        if len(uid) > 64:
            return None, [("invalid_uid", f"StudyInstanceUID longer than 64 characters ({when})")]
        problems.append(("invalid_uid", "StudyInstanceUID is not a valid UID"))
    problems += _charset_problems(charset, values, caught)
    study_date, date_problem = _date(values["StudyDate"])
    problems += date_problem
    record = {
        "study_uid": uid,
        "patient_id": values["PatientID"],
        "patient_name": values["PatientName"],
        "accession_number": values["AccessionNumber"],
        "study_date": study_date,
        "study_time": values["StudyTime"][:16],
        "description": values["StudyDescription"],
        "modalities": values["ModalitiesInStudy"][:64],
        "num_series": None,
        "num_instances": None,
        "charset": charset[:64],
    }
    for key, keyword in (
        ("num_series", "NumberOfStudyRelatedSeries"),
        ("num_instances", "NumberOfStudyRelatedInstances"),
    ):
        record[key], problem = _count(values[keyword], keyword)
        problems += problem
    if record["num_instances"] == 0:
        problems.append(("zero_instances", "the PACS reports 0 instances for this study"))
    if not record["patient_id"]:
        problems.append(("missing_patient_id", "no PatientID"))
    problems += _truncate(record)
    record["problems"] = [{"code": code, "detail": detail} for code, detail in problems]
    return record, problems


class Flat(dict):
    """A flat identifier as received: {tag (int): raw value bytes}, with the encoded
    bytes it came from (`data`). The crawl reads its few keys from here without building
    pydicom elements (see `inventory.dicom.identifier`)."""

    __slots__ = ("data",)

    def __init__(self, elements, data=b""):
        super().__init__(elements)
        self.data = data


def _values(ds, keywords, charset):
    """{keyword: text} read straight from the raw elements of a received identifier.

    pydicom's attribute access converts each element through several layers; a crawl reads
    millions of them, so raw bytes are decoded here (text VRs with the response's
    character set, the rest as ASCII). Elements already converted take the normal path.
    """
    flat = isinstance(ds, Flat)
    encodings = None
    values = {}
    for keyword in keywords:
        tag, vr = _TAGS[keyword]
        if flat:
            raw = ds.get(_RAW_TAGS[keyword], b"")
        else:
            element = ds._dict.get(tag)
            raw = element.value if getattr(element, "is_raw", False) else None
            if not isinstance(raw, bytes):
                values[keyword] = _text(ds, keyword)
                continue
        if raw.isascii() and b"\x1b" not in raw:  # the same text in every DICOM charset
            values[keyword] = _clean(raw.decode("ascii"))
        elif vr in _TEXT_VRS:
            if encodings is None:
                encodings = convert_encodings(charset.split("\\") if charset else None)
            delimiters = PN_DELIMS if vr == "PN" else TEXT_VR_DELIMS
            values[keyword] = _clean(decode_bytes(raw, encodings, delimiters))
        else:
            values[keyword] = _clean(raw.decode("ascii", "replace"))
    return values


def _clean(text):
    return text.strip().replace("\x00", "")


def _text(ds, keyword):
    if isinstance(ds, Flat):
        return _values(ds, (keyword,), _charset(ds))[keyword]
    try:
        value = ds.get(keyword)
    except (ValueError, TypeError, OverflowError):  # pydicom cannot convert, e.g. IS "lots"
        raw = ds.get_item(tag_for_keyword(keyword))
        value = bytes(raw.value or b"") if raw is not None else None
    if value is None:
        return ""
    if isinstance(value, str | bytes):
        text = value.decode("latin-1") if isinstance(value, bytes) else value
    elif hasattr(value, "__iter__"):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return text.strip().replace("\x00", "")


CHARSET = 0x00080005


def _charset(ds):
    if isinstance(ds, Flat):
        raw = ds.get(CHARSET)
        text = raw.decode("ascii", "replace") if raw else ""
        return "\\".join(term.strip(" \x00") for term in text.split("\\")).strip()
    value = ds.get("SpecificCharacterSet", "")
    if isinstance(value, str):
        return value.strip()
    return "\\".join(str(v).strip() for v in value)


def _charset_problems(charset, values, caught):
    """An unknown SpecificCharacterSet, or text that does not decode with the declared one
    (pydicom then substitutes U+FFFD)."""
    problems = []
    unknown = [t for t in charset.split("\\") if t.strip() and t.strip() not in python_encoding]
    if unknown:
        problems.append(("charset", f"unknown SpecificCharacterSet {unknown[0][:30]!r}"))
    garbled = any("\ufffd" in value for value in values.values())
    if garbled or any("Failed to decode" in str(w.message) for w in caught):
        problems.append(("charset", f"text that is not valid {charset or 'default repertoire'}"))
    return problems


def _date(value):
    if not value:
        return None, []
    digits = value.strip()
    if len(digits) == 8 and digits.isdigit():
        try:
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:])), []
        except ValueError:
            pass
    return None, [("odd_date", f"StudyDate {digits[:20]!r} is not a valid date")]


def _count(value, keyword):
    if value == "":
        return None, []
    try:
        number = int(float(value))
    except ValueError:
        return None, [("odd_number", f"{keyword} {value[:20]!r} is not a number")]
    return (number, []) if number >= 0 else (None, [("odd_number", f"{keyword} is negative")])


def lossy_fields(answered, stored):
    """The keywords whose C-FIND value ({keyword: text}) differs from the stored instance's
    (trailing PN component separators and spaces aside); a value the instance lacks is
    no evidence."""
    return [
        keyword
        for keyword, value in answered.items()
        if stored.get(keyword) is not None
        and _comparable(stored[keyword]) != _comparable(value or "")
    ]


def _comparable(text):
    return text.strip().rstrip("^= ").replace("\x00", "")


def _truncate(record):
    problems = []
    for key, limit in LIMITS.items():
        if len(record[key]) > limit:
            record[key] = record[key][:limit]
            problems.append(("too_long", f"{key.replace('_', ' ')} longer than {limit} characters"))
    return problems


# -- series and instances --------------------------------------------------------------


def series_query(study_uid):
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study_uid
    for keyword in (
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
    ):
        setattr(query, keyword, "")
    return query


def instance_query(study_uid, series_uid=""):
    """Image-level C-FIND for SOP Instance and Class UIDs (the whole study when no series)."""
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = series_uid
    query.SOPInstanceUID = ""
    query.SOPClassUID = ""
    return query


def parse_series(matches):
    """{SeriesInstanceUID: record} from series-level responses (duplicates dropped)."""
    found = {}
    for ds in matches:
        uid = _text(ds, "SeriesInstanceUID")
        if not uid or len(uid) > 64 or uid in found:
            continue
        number, _ = _count(_text(ds, "SeriesNumber"), "SeriesNumber")
        count, _ = _count(_text(ds, "NumberOfSeriesRelatedInstances"), "instances")
        found[uid] = {
            "series_uid": uid,
            "modality": _text(ds, "Modality")[:16],
            "series_number": number,
            "description": _text(ds, "SeriesDescription")[:64],
            "num_instances": count,
        }
    return found


def parse_instances(matches):
    """(instance count, first SOP Instance UID, SOP Class UID if the PACS gives it)."""
    uids, sop_class = set(), ""
    first = ""
    for ds in matches:
        uid = _text(ds, "SOPInstanceUID")
        if uid and uid not in uids:
            uids.add(uid)
            first = first or uid
            sop_class = sop_class or _text(ds, "SOPClassUID")
    return len(uids), first, sop_class[:64]


def crawl_series(session, study_uid):
    """Series of one study with instance counts; asks at instance level only where the PACS
    gives no NumberOfSeriesRelatedInstances (dcmqrscp)."""
    matches, _ = session.find(series_query(study_uid))
    found = parse_series(matches)
    for uid, record in found.items():
        record["first_instance"] = ""
        record["sop_class"] = ""
        if record["num_instances"] is None:
            instances, _ = session.find(instance_query(study_uid, uid))
            count, first, sop_class = parse_instances(instances)
            record.update(num_instances=count, first_instance=first, sop_class=sop_class)
    return found


# -- the walk --------------------------------------------------------------------------


def walk(session, ledger, cap=None, today=None, batch_seconds=0.5):
    """Answer every pending node of `ledger` until none is left (True) or it says stop.

    `ledger` persists the tree (see `inventory.engine.CrawlLedger`): `stopping()`,
    `pending()` (a few nodes, in order), `detected_cap`, `signals_cancel`, `modalities`,
    `learn(answer)`
    and `answered([(node, answer), ...])`, which stores a batch in one transaction: the
    answers of about `batch_seconds` share one commit, and a crash loses only those.

    `session.answers(items, ask, key)` (see `inventory.dicom.FindPool`) may ask several
    nodes' C-FINDs at once, and ahead: the questions still in flight when a batch is
    stored are answered meanwhile and read in the next batch, so the PACS does not wait
    for the ledger's commit. Each answer is still read here, one after the other, in the
    order of the nodes.
    """
    while not ledger.stopping():
        nodes = ledger.pending()
        if not nodes:
            return True
        batch, deadline = [], time.monotonic() + batch_seconds
        with contextlib.closing(_answers(session, nodes, ledger)) as answers:
            for node, found in answers:
                reply = read(node.range, found, ledger, cap, today)
                ledger.learn(reply)
                batch.append((node, reply))
                if time.monotonic() >= deadline:
                    break
        ledger.answered(batch)
    return False


def _answers(session, nodes, ledger):
    ask = getattr(session, "answers", None)
    if ask is not None:
        return ask(nodes, lambda node: question(node.range, ledger), key=lambda node: node.pk)
    return ((node, _ask(session, question(node.range, ledger))) for node in nodes)


def _ask(session, asked):
    if asked is None:
        return None
    query, model = asked
    return session.find(query, model) if model else session.find(query)


def question(rng, ledger=None):
    """The C-FIND a node asks, as (identifier, information model or None for Study Root),
    or None for a node that is split without a query: a plan, a partition's root, and a
    patient prefix the ledger already proves capped (see `_known_capped`)."""
    if rng.level in ("plan", YEAR_PLAN) or (rng.kind in PARTITIONS and rng.level == "root"):
        return None
    if ledger is not None and _known_capped(rng, ledger):
        return None
    if rng.kind in PARTITIONS:
        query, patient_root = partition_query(rng)
        return query, PATIENT_MODEL if patient_root else None
    return study_query(rng), None


@dataclass
class Answer:
    """What one node's C-FIND said, and what the crawl makes of it (count None: a planned
    node, split without a query)."""

    count: int | None
    parsed: Parsed
    status: str  # "leaf", "split" or "unresolved"
    children: list = field(default_factory=list)
    detected_cap: int | None = None
    note: str = ""


def answer(session, rng, ledger, cap=None, today=None):
    """Ask a node's C-FIND and read its answer."""
    return read(rng, _ask(session, question(rng, ledger)), ledger, cap, today)


def read(rng, found, ledger, cap=None, today=None):
    """What a node's C-FIND answer (`found`: (matches, truncated), None for a node
    asked nothing) means for the tree."""
    if rng.level == "plan":
        return _planned(ledger, cap)
    if rng.level == YEAR_PLAN:
        return plan_year(rng, ledger, cap)
    if rng.kind in PARTITIONS:
        return _partition(rng, found, ledger, cap)
    matches, truncated = found
    parsed = parse_answer(matches, rng)
    detected = len(matches) if truncated and not cap and not ledger.detected_cap else None
    limit = cap or ledger.detected_cap or detected
    if not is_capped(len(matches), truncated, limit, ledger.signals_cancel):
        return Answer(len(matches), parsed, "leaf", detected_cap=detected)
    note = CANCELLED if truncated else f"{len(matches)} answers: capped"
    known = ledger.known_days() if rng.level == "span" else None
    children = split(
        rng, ledger.modalities | parsed.modalities, today, known,
        _target(limit or len(matches), ledger.signals_cancel),
        ledger.partitions,
    )  # fmt: skip
    if rng.level == "year":  # planned once the years before it are read
        children = [replace(rng, level=YEAR_PLAN)]
    if rng.level == "modality" and parsed.ignores_modality:
        note += "; the PACS ignores ModalitiesInStudy"
    if not children:
        return Answer(len(matches), parsed, "unresolved", [], detected, f"{note}; cannot split")
    return Answer(len(matches), parsed, "split", children, detected, note)


def _target(cap, signals=False):
    """How many known studies a planned range should hold: half the cap, room for what the
    ledger does not know yet; nineteen twentieths when the PACS says Cancel when it is
    over (an overfull range then costs one more query and a split, never a missed
    study)."""
    return max(1, cap - cap // 20 if signals else cap // 2)


# A capped year is not split into its twelve months at once: its plan (a node of its own,
# asked nothing) waits until the years before it are read (`CrawlLedger.pending`), then
# cuts the year into day ranges of about YEAR_TARGET of the cap each, sized from how
# many studies the year before held and spread like the studies the crawl already lists
# in this year (its capped answer among them). A guess that proves wrong costs a capped
# range, which splits along the calendar; it never loses a study: the ranges cover the
# whole year.
YEAR_PLAN = "yplan"
YEAR_TARGET = 0.75


def plan_year(rng, ledger, cap=None):
    year = rng.date_from.year
    limit = cap or ledger.cap_limit()
    seen = ledger.dates_listed(rng.date_from, rng.date_to)
    before = ledger.dates_listed(date(year - 1, 1, 1), date(year - 1, 12, 31))
    if not (limit and seen and before):
        months = split(replace(rng, level="year"))
        return Answer(None, Parsed(), "split", months, note="nothing to plan from: months")
    estimate = max(len(seen), len(before))
    days = {}
    for day in seen:
        days[day] = days.get(day, 0) + estimate / len(seen)
    target = max(1, int(limit * YEAR_TARGET))
    children = plan_dates(days, target, rng)
    note = f"planned for about {estimate} studies (the year before held {len(before)})"
    return Answer(None, Parsed(), "split", children, note=note)


def _planned(ledger, cap):
    minutes = ledger.known_minutes()
    target = _target(cap or ledger.detected_cap or 100, ledger.signals_cancel)
    children = plan_times(minutes, target)
    note = f"planned from {sum(minutes.values())} known StudyTimes, about {target} a range"
    return Answer(None, Parsed(), "split", children, note=note)


def _partition(rng, found, ledger, cap):
    if rng.level == "root":
        return _partition_root(rng, ledger)
    if found is None:  # a patient prefix the ledger proves capped
        note = "patients: capped (this crawl lists more under it than the cap), not asked"
        return _patients(rng, ledger, None, True, note)
    matches, truncated = found
    limit = cap or ledger.detected_cap
    if rng.kind == "patient" and rng.level != "studies":
        capped = is_capped(len(matches), truncated, limit, ledger.signals_cancel)
        return _patients(rng, ledger, matches, capped)
    parsed = parse_answer(matches)
    if not is_capped(len(matches), truncated, limit, ledger.signals_cancel):
        return Answer(len(matches), parsed, "leaf")
    note = f"{len(matches)} answers: capped"
    keyword = PARTITIONS[rng.kind][0]
    if rng.level in ("exact", "studies") or len(rng.prefix) >= PREFIX_LIMITS[keyword]:
        return Answer(len(matches), parsed, "unresolved", note=f"{note}; cannot split")
    if rng.kind != "patient" and not ledger.unlisted(parsed.studies):
        note += "; every study it returned was listed already: pruned"
        return Answer(len(matches), parsed, "pruned", note=note)
    returned = [record[FIELDS[keyword]] for record in parsed.studies.values()]
    letters = next_letters(rng.prefix, [*returned, *ledger.values_under(keyword, rng.prefix)])
    return Answer(len(matches), parsed, "split", extend(rng, letters), note=note)


def _partition_root(rng, ledger):
    if rng.kind == "pid" and ledger.walk_settled():
        note = "not needed: the patient walk counted every patient's studies"
        return Answer(None, Parsed(), "pruned", note=note)
    children = extend(rng, ledger.alphabet(PARTITIONS[rng.kind][0]))
    return Answer(None, Parsed(), "split", children, note="one node per first character")


def _patients(rng, ledger, matches, capped, note="patients: capped"):
    """A patient-level answer: split when capped, else ask the studies of each patient the
    PACS counts more studies for than the crawl has listed (all, when it gives no count).
    `matches` None: not asked (see `_known_capped`)."""
    count = None if matches is None else len(matches)
    patients = parse_patients(matches or [])
    if capped:
        if rng.level == "exact" or len(rng.prefix) >= PREFIX_LIMITS["PatientID"]:
            return Answer(count, Parsed(), "unresolved", note="capped; cannot split")
        known = [*patients, *ledger.values_under("PatientID", rng.prefix)]
        children = extend(rng, next_letters(rng.prefix, known))
        return Answer(count, Parsed(), "split", children, note=note)
    listed = ledger.listed_per_patient(patients)
    short = [
        pid for pid, n in patients.items() if askable(pid) and (n is None or n > listed.get(pid, 0))
    ]
    children = [Range("patient", "studies", prefix=pid) for pid in short]
    note = f"{len(patients)} patients; {len(short)} with studies not listed yet"
    return Answer(len(matches), Parsed(), "split" if children else "leaf", children, note=note)


def _known_capped(rng, ledger):
    """A patient-level prefix under which this crawl has already listed more distinct
    PatientIDs than the cap: the PACS holds them all, so its answer can only be capped,
    and asking it would return nothing but a sample. Such a node is split straight from
    the PatientIDs the crawl knows (its answer's sample of PatientIDs is not looked at:
    only a PatientID that is in no listed study and starts differently from every known
    one is missed that way, as it is below any capped node whose sample does not show it).
    """
    if rng.kind != "patient" or rng.level != "prefix":
        return False
    limit = ledger.cap_limit()
    if not limit:
        return False
    known = ledger.values_under("PatientID", rng.prefix)
    return sum(1 for value in known if value.startswith(rng.prefix)) > limit


# -- what the leaves prove ---------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """How a finished crawl's tree ended: the facts `verdict` judges."""

    universal_capped: bool  # the first, universal query answered at the cap
    dated_only: bool  # a `since` crawl: only studies dated from then on were asked for
    open_nodes: int  # nodes still pending, failed or capped without a split
    cap: int | None
    walked: tuple = ()  # partitions that ran (kinds of PARTITIONS)
    walk_settled: bool = False
    pruned: int = 0


def verdict(coverage):
    """(complete, unproven): complete only when every study the PACS holds is provably in
    some leaf answered under the cap; otherwise a sentence saying what could still hide."""
    c = coverage
    if c.open_nodes:
        return False, (
            f"{c.open_nodes} range{'s' * (c.open_nodes != 1)} still answer at the C-FIND cap "
            "(or failed), so studies in them may be missing from the inventory."
            + (" " + _hiding(c) if c.universal_capped else "")
        )
    if c.dated_only or not c.universal_capped:
        return True, ""
    return False, _hiding(c)


def _hiding(c):
    cap = f" (at {c.cap})" if c.cap else ""
    covered = "Every study with a usable StudyDate or StudyTime is in a leaf under the cap"
    if "patient" in c.walked and c.walk_settled:
        covered += (
            ", and so is every study of a patient the patient walk listed under the cap: "
            "PatientIDs starting with a digit, a letter or another character the PACS "
            "returned, followed below a capped prefix as far as the PatientIDs the crawl "
            "knows lead (the patient walk counted them)"
        )
    hidden = "a study with neither a date nor a time"
    if "patient" in c.walked and c.walk_settled:
        hidden += (
            " whose PatientID is empty, starts with a character no query asked for, or "
            "branches away from the PatientIDs the crawl knows under a capped prefix,"
        )
    searched = [PARTITIONS[k][1] for k in ("pid", "acc", "name") if k in c.walked]
    also = ""
    if searched:
        also = (
            f" The {', '.join(searched)} trees searched for such studies too, but they prove "
            "nothing" + (f" ({c.pruned} capped ranges that held nothing new were not split)"
                         if c.pruned else "") + "."
        )  # fmt: skip
    return (
        f"The universal C-FIND was capped{cap}, so no single answer lists every study. "
        f"{covered}; {hidden} is in none, and C-FIND cannot show that no such study exists."
        f"{also} A second witness (inventory scan of the PACS storage, or import-listing of "
        "its database, then inventory compare) can prove it."
    )
