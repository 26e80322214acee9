"""CSV import and export of roadmap tasks, and the dependency notation they share with the
template: `AS2` (finish-to-start), `AS2 SS+2`, `MG2 FS-5`; several joined with `;`.

`parse_rows` validates a whole file before anything is saved and reports every problem
with its line number; `cutover.actions.import_tasks` writes the rows.
"""

import csv
import io
import re
from datetime import date

from core.scrub import safe_writer
from cutover.models import Dependency, Task

COLUMNS = [
    "code",
    "workstream",
    "name",
    "kind",
    "owner",
    "duration",
    "start_no_earlier",
    "deadline",
    "percent_complete",
    "status",
    "depends_on",
    "measure",
    "notes",
]
COMPUTED = ["early_start", "early_finish", "late_start", "late_finish", "total_slack", "critical"]
REQUIRED = {"code", "workstream", "name"}
DEP_RE = re.compile(r"^\s*([A-Za-z0-9_.-]{1,20})(?:\s+(FS|SS)\s*([+-]\s*\d{1,4})?)?\s*$", re.I)
CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,20}$")
MAX_ROWS = 5000


class CsvImportError(ValueError):
    def __init__(self, errors):
        self.errors = errors
        super().__init__("; ".join(f"line {line}: {msg}" for line, msg in errors[:20]))


def parse_dependency(text):
    """`"AS2 SS+2"` -> ("AS2", "SS", 2); ValueError on anything else."""
    match = DEP_RE.match(text)
    if not match:
        raise ValueError(f"bad dependency {text!r} (write e.g. AS2, AS2 FS+2 or AS2 SS-1)")
    code, kind, lag = match.groups()
    return code, (kind or "FS").upper(), int((lag or "0").replace(" ", ""))


def parse_dependencies(text):
    return [parse_dependency(part) for part in (text or "").split(";") if part.strip()]


def format_dependency(code, kind, lag):
    if kind == "FS" and not lag:
        return code
    return f"{code} {kind}{lag:+d}" if lag else f"{code} {kind}"


def export_tasks(roadmap):
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow(COLUMNS + COMPUTED)
    deps = {}
    for dep in Dependency.objects.filter(successor__roadmap=roadmap).select_related("predecessor"):
        deps.setdefault(dep.successor_id, []).append(
            format_dependency(dep.predecessor.code, dep.kind, dep.lag)
        )
    for task in roadmap.tasks.select_related("workstream"):
        values = {c: getattr(task, c, "") for c in COLUMNS + COMPUTED}
        values.update(workstream=task.workstream.name, depends_on="; ".join(deps.get(task.pk, [])))
        writer.writerow(["" if values[c] is None else values[c] for c in COLUMNS + COMPUTED])
    return out.getvalue()


def _date(value, field):
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise ValueError(f"{field} must be a date like 2026-03-31, not {value!r}") from None


def _int(value, field, low, high, default):
    if value in ("", None):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{field} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{field} must be between {low} and {high}")
    return number


def _choice(value, choices, field, default):
    value = (value or "").strip().lower() or default
    if value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _row(raw, measures):
    missing = [c for c in sorted(REQUIRED) if not (raw.get(c) or "").strip()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    code = raw["code"].strip()
    if not CODE_RE.match(code):
        raise ValueError(f"code {code!r}: letters, digits, . _ - only, at most 20")
    kind = _choice(raw.get("kind"), Task.Kind.values, "kind", Task.Kind.TASK)
    measure = (raw.get("measure") or "").strip()
    if measure and measure not in measures:
        raise ValueError(f"unknown measure {measure!r} (known: {', '.join(measures)})")
    return {
        "code": code,
        "workstream": raw["workstream"].strip()[:120],
        "name": raw["name"].strip()[:200],
        "kind": kind,
        "owner": (raw.get("owner") or "").strip()[:120],
        "duration": 0 if kind == "milestone" else _int(raw.get("duration"), "duration", 0, 2000, 1),
        "start_no_earlier": _date((raw.get("start_no_earlier") or "").strip(), "start_no_earlier"),
        "deadline": _date((raw.get("deadline") or "").strip(), "deadline"),
        "percent_complete": _int(raw.get("percent_complete"), "percent_complete", 0, 100, 0),
        "status": _choice(raw.get("status"), Task.Status.values, "status", "not_started"),
        "depends_on": parse_dependencies(raw.get("depends_on")),
        "measure": measure,
        "notes": (raw.get("notes") or "").strip(),
    }


def parse_rows(text, known_codes=(), measures=()):
    """Validated rows, or CsvImportError listing every bad line. Dependencies may name a
    code of the file or one already in the roadmap (`known_codes`)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    if not set(header) >= REQUIRED:
        missing = ", ".join(sorted(REQUIRED - set(header)))
        raise CsvImportError([(1, f"the header needs the columns {missing}")])
    reader.fieldnames = header
    rows, errors, seen = [], [], set()
    for line, raw in enumerate(reader, start=2):
        if line - 1 > MAX_ROWS:
            errors.append((line, f"more than {MAX_ROWS} rows"))
            break
        try:
            row = _row(raw, measures)
        except ValueError as exc:
            errors.append((line, str(exc)))
            continue
        if row["code"] in seen:
            errors.append((line, f"code {row['code']} appears twice"))
        seen.add(row["code"])
        rows.append((line, row))
    codes = seen | set(known_codes)
    for line, row in rows:
        for code, _kind, _lag in row["depends_on"]:
            if code not in codes:
                errors.append((line, f"depends on unknown task {code}"))
    if errors:
        raise CsvImportError(sorted(errors))
    if not rows:
        raise CsvImportError([(2, "no rows")])
    return [row for _line, row in rows]
