"""The environment catalogue as data: which models, forms, columns and natural keys.

CSV import is all or nothing: every row is checked with the model's form first, and if one
row is wrong nothing is saved and every error is reported with its line number. Rows are
matched on their natural key (name, or system and role), so importing twice updates.
Relations are written by name: a source or integration column names a PACS source or an
integration; many-valued columns (capabilities, integrations) separate names with ";".
"""

import csv
import io
from dataclasses import dataclass

from django.db import transaction

from core.scrub import safe_writer
from inventory import forms
from inventory.models import (
    AccessRole,
    AuditLogLocation,
    Integration,
    PacsSource,
    SharingWorkflow,
    Viewer,
    ViewerCapability,
)

MAX_ROWS = 5000


@dataclass(frozen=True)
class Kind:
    slug: str
    title: str
    model: type
    form: type
    key: tuple  # natural key fields
    columns: tuple  # CSV columns, in order
    relations: dict  # column -> (model, lookup field, many?)
    intro: str = ""


KINDS = {
    kind.slug: kind
    for kind in (
        Kind(
            "integrations",
            "Integrations",
            Integration,
            forms.IntegrationForm,
            ("name",),
            ("name", "kind", "protocol", "direction", "owner", "endpoint", "state", "source",
             "notes"),
            {"source": (PacsSource, "name", False)},
            "EMR, RIS, billing and batch/file interfaces the PACS exchanges data with.",
        ),
        Kind(
            "workflows",
            "Image-sharing workflows",
            SharingWorkflow,
            forms.SharingWorkflowForm,
            ("name",),
            ("name", "mechanism", "from_party", "to_party", "monthly_volume", "owner",
             "integrations", "notes"),
            {"integrations": (Integration, "name", True)},
            "How images travel inside and out of the hospital today.",
        ),
        Kind(
            "viewers",
            "Viewers",
            Viewer,
            forms.ViewerForm,
            ("name",),
            ("name", "vendor", "version", "kind", "users", "capabilities", "notes"),
            {"capabilities": (ViewerCapability, "name", True)},
            "Viewers in use and the diagnostic capabilities clinicians rely on.",
        ),
        Kind(
            "access-roles",
            "User access controls",
            AccessRole,
            forms.AccessRoleForm,
            ("system", "name"),
            ("system", "name", "user_count", "permissions", "source", "viewer"),
            {"source": (PacsSource, "name", False), "viewer": (Viewer, "name", False)},
            "Roles of the legacy systems and how many users hold each.",
        ),
        Kind(
            "audit-logs",
            "Audit log locations",
            AuditLogLocation,
            forms.AuditLogLocationForm,
            ("system",),
            ("system", "location", "log_format", "retention_days", "owner", "source",
             "integration", "notes"),
            {"source": (PacsSource, "name", False), "integration": (Integration, "name", False)},
            "Where each legacy system keeps its audit trail.",
        ),
    )
}  # fmt: skip


class CsvImportError(Exception):
    """The CSV was not imported; `errors` lists (line, message)."""

    def __init__(self, errors):
        super().__init__("; ".join(f"line {line}: {message}" for line, message in errors[:5]))
        self.errors = errors


def entries(kind, limit=None):
    """(entry, [cell per column]) for every entry of `kind`, relations by name."""
    many = [c for c, (_m, _f, is_many) in kind.relations.items() if is_many]
    single = [c for c, (_m, _f, is_many) in kind.relations.items() if not is_many]
    rows = kind.model.objects.all().select_related(*single).prefetch_related(*many)
    for obj in rows[:limit] if limit else rows:
        yield obj, [_cell(kind, obj, column) for column in kind.columns]


def export_rows(kind):
    """The CSV rows (header first) of every entry of `kind`."""
    yield list(kind.columns)
    for _obj, cells in entries(kind):
        yield cells


def _cell(kind, obj, column):
    if column in kind.relations:
        _model, field, many = kind.relations[column]
        if many:
            return "; ".join(getattr(o, field) for o in getattr(obj, column).all())
        related = getattr(obj, column)
        return getattr(related, field) if related else ""
    value = getattr(obj, column)
    return "" if value is None else value


def export_csv(kind):
    buffer = io.StringIO()
    safe_writer(buffer).writerows(export_rows(kind))
    return buffer.getvalue()


def import_csv(kind, text):
    """Create or update entries from CSV text; returns (created, updated). All or nothing."""
    rows, errors = _read(kind, text)
    prepared = []
    for line, row in rows:
        instance = _existing(kind, row)
        if instance is not None:  # columns the file leaves out keep their values
            row = {**{c: str(_cell(kind, instance, c)) for c in kind.columns}, **row}
        data, problems = _form_data(kind, row)
        form = kind.form(data=data, instance=instance)
        if problems or not form.is_valid():
            errors += [(line, p) for p in problems] + [(line, m) for m in _form_errors(form)]
        else:
            prepared.append(form)
    if errors:
        raise CsvImportError(errors)
    created = sum(1 for form in prepared if form.instance.pk is None)
    with transaction.atomic():
        for form in prepared:
            form.save()
    return created, len(prepared) - created


def _read(kind, text):
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in kind.key if c not in header]
    if missing:
        raise CsvImportError([(1, f"missing column(s): {', '.join(missing)}")])
    unknown = [h for h in header if h not in kind.columns]
    if unknown:
        raise CsvImportError([(1, f"unknown column(s): {', '.join(unknown)}")])
    rows = []
    for number, row in enumerate(reader, start=2):
        if number > MAX_ROWS + 1:
            raise CsvImportError([(number, f"more than {MAX_ROWS} rows")])
        clean = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        if any(clean.values()):
            rows.append((number, clean))
    return rows, []


def _existing(kind, row):
    lookup = {field: row.get(field, "") for field in kind.key}
    return kind.model.objects.filter(**lookup).first()


def _form_data(kind, row):
    """Form data for one row: relations by name turned into primary keys."""
    data, problems = {}, []
    for column in kind.columns:
        if column not in row:
            continue
        value = row[column]
        if column not in kind.relations:
            data[column] = value
            continue
        model, field, many = kind.relations[column]
        names = [n.strip() for n in value.split(";") if n.strip()] if many else [value]
        pks, free = [], []
        for name in filter(None, names):
            found = model.objects.filter(**{f"{field}__iexact": name}).first()
            if model is ViewerCapability and (found is None or not found.standard):
                free.append(name)
            elif found is not None:
                pks.append(found.pk)
            else:
                problems.append(f"{column}: no {model._meta.verbose_name} named {name!r}")
        data[column] = pks if many else (pks[0] if pks else "")
        if free:
            data["other_capabilities"] = "; ".join(free)
    return data, problems


def _form_errors(form):
    return [f"{field}: {' '.join(messages)}" for field, messages in form.errors.items()]
