"""Mapping profiles: ordered tag rules that turn legacy objects into the cloud schema.

A rule is a dict with an "op" (see RULES). Character-set repair rules run first, on the
raw bytes as read (data declared ISO_IR 100 that is really UTF-8, or another charset, is
re-decoded and written as ISO_IR 192); the tag rules then run in their order.
`validate_rules` says what is wrong with a profile, rule by rule, so forms can reject it.
"""

import codecs
import csv
import io
import re

from pydicom import dcmread, dcmwrite
from pydicom.charset import python_encoding as charset_codecs
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.tag import Tag

# op: (required fields, optional fields, one-line help)
RULES = {
    "set": (("tag", "value"), (), "set a tag to a value"),
    "replace": (("tag", "old", "new"), (), "replace text inside a tag's value"),
    "prefix": (("tag", "value"), (), "put text in front of a tag's value"),
    "remove": (("tag",), (), "remove a tag"),
    "copy": (("from", "to"), (), "copy one tag's value into another"),
    "map": (("tag", "table"), ("missing",), "map a value through a lookup table"),
    "issuer": (("value",), (), "add IssuerOfPatientID"),
    "charset_repair": (("actual",), ("declared",), "re-decode text, write it as ISO_IR 192"),
}
MISSING = ("keep", "quarantine")
TEXT_VRS = {
    "AE",
    "AS",
    "CS",
    "DA",
    "DS",
    "DT",
    "IS",
    "LO",
    "LT",
    "PN",
    "SH",
    "ST",
    "TM",
    "UC",
    "UI",
    "UR",
    "UT",
}
CHARSET_VRS = {"SH", "LO", "ST", "LT", "UT", "PN", "UC"}
PROTECTED = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"}
_HEX_TAG = re.compile(r"^\(?([0-9A-Fa-f]{4}),?\s*([0-9A-Fa-f]{4})\)?$")


class MappingError(ValueError):
    """An instance cannot be mapped (e.g. a value missing from a lookup table)."""


def parse_tag(text):
    """A pydicom Tag from a keyword ("PatientID") or "(0010,0020)" / "00100020"."""
    text = str(text or "").strip()
    match = _HEX_TAG.match(text)
    if match:
        return Tag(int(match[1], 16), int(match[2], 16))
    tag = tag_for_keyword(text)
    if tag is None:
        raise ValueError(f"unknown tag {text!r}")
    return Tag(tag)


def tag_name(tag):
    return keyword_for_tag(tag) or f"({tag.group:04X},{tag.element:04X})"


def validate_rules(rules, table_names=()):
    """Human-readable problems with a list of rules; empty when the profile is valid."""
    if not isinstance(rules, list):
        return ["the rules must be a list"]
    problems = []
    for index, rule in enumerate(rules, start=1):
        problems += [f"rule {index}: {p}" for p in _rule_problems(rule, set(table_names))]
    return problems


def _rule_problems(rule, tables):
    if not isinstance(rule, dict) or rule.get("op") not in RULES:
        return [f"'op' must be one of {', '.join(RULES)}"]
    required, optional, _help = RULES[rule["op"]]
    missing = [name for name in required if rule.get(name) in (None, "")]
    unknown = sorted(set(rule) - {"op", *required, *optional})
    problems = [f"{rule['op']} needs '{name}'" for name in missing]
    problems += [f"unknown field '{name}'" for name in unknown]
    for field in ("tag", "from", "to"):
        if field in rule and field not in missing:
            problems += _tag_problems(rule["op"], field, rule[field])
    if rule["op"] == "issuer":
        problems += _tag_problems("issuer", "tag", "IssuerOfPatientID")
    if rule["op"] == "map" and rule.get("table") and rule["table"] not in tables:
        problems.append(f"unknown lookup table {rule['table']!r}")
    if rule.get("missing", "keep") not in MISSING:
        problems.append(f"'missing' must be one of {', '.join(MISSING)}")
    if rule["op"] == "charset_repair":
        problems += _charset_problems(rule)
    return problems


def _tag_problems(op, field, text):
    try:
        tag = parse_tag(text)
    except ValueError as exc:
        return [str(exc)]
    if tag.group in (0x0002, 0x7FE0) or tag.is_private:
        return [f"{text!r} cannot be mapped (file meta, pixel data or private)"]
    if op == "remove" and keyword_for_tag(tag) in PROTECTED:
        return [f"{text!r} identifies the object and cannot be removed"]
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return [f"{text!r} is not in the DICOM dictionary"]
    if vr == "UI" and field != "from":
        return [f"{text!r} is a UID: UIDs identify objects and keys, and are never mapped"]
    if op != "remove" and vr not in TEXT_VRS:
        return [f"{text!r} has VR {vr}; only text values can be mapped"]
    return []


def _charset_problems(rule):
    problems = []
    try:
        codecs.lookup(rule["actual"])
    except (LookupError, KeyError, TypeError):
        problems.append(f"unknown character encoding {rule.get('actual')!r}")
    declared = rule.get("declared")
    if declared and declared not in charset_codecs:
        problems.append(f"unknown SpecificCharacterSet {declared!r}")
    return problems


# --- applying ---------------------------------------------------------------------------


def apply_rules(ds, rules, tables=None):
    """Apply `rules` to a dataset read from bytes (values not yet decoded); mutates it.
    Returns the names of the tags that changed. Raises MappingError."""
    tables = tables or {}
    changed = []
    for rule in [r for r in rules if r["op"] == "charset_repair"]:
        changed += repair_charset(ds, rule["actual"], rule.get("declared"))
    for rule in rules:
        if rule["op"] != "charset_repair":
            changed += _APPLY[rule["op"]](ds, rule, tables)
    return changed


def _set(ds, tag, value):
    ds[tag] = DataElement(tag, dictionary_VR(tag), value)
    return [tag_name(tag)]


def _value(ds, tag):
    return "" if tag not in ds else str(ds[tag].value or "")


def _op_set(ds, rule, tables):
    return _set(ds, parse_tag(rule["tag"]), str(rule["value"]))


def _op_replace(ds, rule, tables):
    tag = parse_tag(rule["tag"])
    old = _value(ds, tag)
    new = old.replace(str(rule["old"]), str(rule["new"]))
    return _set(ds, tag, new) if tag in ds and new != old else []


def _op_prefix(ds, rule, tables):
    tag = parse_tag(rule["tag"])
    return _set(ds, tag, str(rule["value"]) + _value(ds, tag)) if tag in ds else []


def _op_remove(ds, rule, tables):
    tag = parse_tag(rule["tag"])
    if tag in ds:
        del ds[tag]
        return [tag_name(tag)]
    return []


def _op_copy(ds, rule, tables):
    source = parse_tag(rule["from"])
    return _set(ds, parse_tag(rule["to"]), _value(ds, source)) if source in ds else []


def _op_map(ds, rule, tables):
    tag = parse_tag(rule["tag"])
    table = tables.get(rule["table"], {})
    old = _value(ds, tag)
    if old in table:
        return _set(ds, tag, table[old])
    if rule.get("missing", "keep") == "quarantine":
        raise MappingError(f"{tag_name(tag)} has no entry in lookup table {rule['table']!r}")
    return []


def _op_issuer(ds, rule, tables):
    return _set(ds, Tag(0x0010, 0x0021), str(rule["value"]))


_APPLY = {
    "set": _op_set,
    "replace": _op_replace,
    "prefix": _op_prefix,
    "remove": _op_remove,
    "copy": _op_copy,
    "map": _op_map,
    "issuer": _op_issuer,
}


def repair_charset(ds, actual, declared=None):
    """Re-decode the text of a dataset whose SpecificCharacterSet lies, and mark it UTF-8.

    Applies when the declared set is `declared` (any single-byte set when not given). Each
    raw text value is decoded as `actual`, falling back to the declared set when the bytes
    are not valid in `actual`. Returns the names of the tags re-decoded.
    """
    current = ds.get_item(Tag(0x0008, 0x0005))
    current = _raw_text(current.value).strip("\x00 ") if current is not None else ""
    if current == "ISO_IR 192" or (declared and current != declared):
        return []
    fallback = charset_codecs.get(current or "ISO_IR 100", "latin_1")
    repaired = []
    for tag in list(ds.keys()):
        item = ds.get_item(tag)
        if item is None or item.VR not in CHARSET_VRS or not isinstance(item.value, bytes):
            continue
        raw = item.value
        if raw.isascii():
            continue
        try:
            text = raw.decode(actual)
        except UnicodeDecodeError:
            text = raw.decode(fallback, errors="replace")
        ds[tag] = DataElement(tag, item.VR, text.rstrip("\x00 "))
        repaired.append(tag_name(tag))
    ds.SpecificCharacterSet = "ISO_IR 192"
    return repaired


def _raw_text(value):
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")


def read(data):
    return dcmread(io.BytesIO(data))


def encode(ds):
    """The dataset as Part-10 bytes, in its original transfer syntax."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def map_bytes(data, rules, tables=None):
    """Convenience for one instance: bytes in, mapped bytes out."""
    ds = read(data)
    apply_rules(ds, rules, tables)
    return encode(ds)


# --- preview and lookup tables ----------------------------------------------------------


def preview(data, rules, tables=None):
    """Tag by tag, one instance before and after the rules: rows of
    {"tag", "name", "before", "after", "changed"} (pixel data summarised)."""
    before = read(data)
    after = read(data)
    apply_rules(after, rules, tables)
    tags = sorted(set(before.keys()) | set(after.keys()))
    return [
        {
            "tag": f"({tag.group:04X},{tag.element:04X})",
            "name": tag_name(tag),
            "before": _shown(before, tag),
            "after": _shown(after, tag),
            "changed": _shown(before, tag) != _shown(after, tag),
        }
        for tag in tags
    ]


def _shown(ds, tag):
    if tag not in ds:
        return None
    element = ds[tag]
    if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"):
        size = len(element.value) if element.value is not None else 0
        return f"<{element.VR}, {size} {'item(s)' if element.VR == 'SQ' else 'bytes'}>"
    return str(element.value)[:200]


def parse_lookup_csv(text):
    """{old: new} from CSV text with two columns; a header row ("legacy,new") is skipped
    when its first cell is not found elsewhere. Raises ValueError naming the bad line."""
    entries = {}
    reader = csv.reader(io.StringIO(text))
    for number, row in enumerate(reader, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) < 2 or not cells[0]:
            raise ValueError(f"line {number}: expected two columns, old value and new value")
        if number == 1 and cells[0].lower() in ("legacy", "old", "from", "source", "patientid"):
            continue
        entries[cells[0]] = cells[1]
    if not entries:
        raise ValueError("the file holds no rows")
    return entries
