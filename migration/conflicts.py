"""Applying "use the second copy" to a conflict (one SOP Instance UID, two contents).

The second copy becomes the canonical object and the first moves to a conflict key of
its own, so nothing is lost: the first copy's bytes are copied aside and checked before
the canonical key is overwritten, and the second's conflict copy is removed only once
the canonical key holds the same bytes. The manifest rows, the study's manifest object
and the conflict record then say where each copy is. Every step checks SHA-256, and a
run stopped halfway can be applied again. Afterwards the layout is what the engine would
have written had the second copy arrived first, so re-migrating the study verifies.
"""

import json
from dataclasses import dataclass

from django.db import transaction

from migration.engine import manifest_instances
from migration.models import ACTIVE_STATES, StoredInstance, WaveStudy
from migration.storage import DestinationError, open_store, sha256_hex


class ConflictError(RuntimeError):
    """The decision cannot be applied; the message says why (no PHI)."""


@dataclass
class Copy:
    """One copy as a manifest row describes it."""

    key: str
    sha256: str
    size: int
    sop_class: str
    transfer_syntax: str

    @classmethod
    def of(cls, row):
        return cls(row.key, row.sha256, row.size, row.sop_class, row.transfer_syntax)


def use_second(conflict):
    """Make the conflict's second copy canonical. Returns the changes made, as
    {field: [before, after]} for the audit log. Raises ConflictError."""
    row = WaveStudy.objects.select_related("wave__destination", "study").get(pk=conflict.ledger_id)
    if row.state in ACTIVE_STATES:
        raise ConflictError("the study is being migrated right now: decide once it has finished")
    canonical_row, second_row = _rows(conflict)
    first, second = Copy.of(canonical_row), Copy.of(second_row)
    store = open_store(row.wave.destination)
    study = row.study.study_uid
    first_key = store.conflict_key(study, conflict.series_uid, conflict.sop_uid, first.sha256)
    try:
        store.begin_study(study)
        _move_objects(store, first, second, first_key, canonical_row.key)
    except DestinationError as exc:
        raise ConflictError(f"the destination failed: {exc}") from exc
    return _record(conflict, row, store, (canonical_row, second_row), first_key)


def _rows(conflict):
    """The canonical manifest row and the second copy's (conflict) row of this study."""
    rows = StoredInstance.objects.filter(
        ledger_id=conflict.ledger_id, sop_uid=conflict.sop_uid
    ).select_related("ledger")
    canonical = _with_key(rows, StoredInstance.Role.STORED, conflict.kept_key)
    second = _with_key(rows, StoredInstance.Role.CONFLICT, conflict.other_key)
    if canonical is None or second is None:
        raise ConflictError(
            "only two copies within one study can be swapped; this conflict is with a copy "
            "stored by another study"
        )
    return canonical, second


def _with_key(rows, role, key):
    return next((row for row in rows if row.role == role and row.key == key), None)


def _move_objects(store, first, second, first_key, canonical_key):
    """First copy aside, second copy to the canonical key, second's conflict copy gone;
    each write read back by SHA-256 before the next step."""
    at_canonical = store.existing_sha256(canonical_key)
    if at_canonical == first.sha256:
        if store.existing_sha256(first_key) != first.sha256:
            store.write(first_key, _read(store, canonical_key, first.sha256), first.sha256)
            _check(store, first_key, first.sha256)
        store.write(canonical_key, _read(store, second.key, second.sha256), second.sha256)
    elif at_canonical != second.sha256:
        raise ConflictError("the canonical object holds neither copy: nothing was changed")
    _check(store, canonical_key, second.sha256)
    _check(store, first_key, first.sha256)
    if second.key not in (canonical_key, first_key):
        store.delete(second.key)


def _read(store, key, sha):
    data = store.read(key)
    if sha256_hex(data) != sha:
        raise ConflictError(f"{key.rsplit('/', 1)[-1]} no longer holds the recorded bytes")
    return data


def _check(store, key, sha):
    if store.existing_sha256(key) != sha:
        raise ConflictError(f"{key.rsplit('/', 1)[-1]} did not read back as written")


def _record(conflict, row, store, rows, first_key):
    """Manifest rows, the manifest object and the conflict record follow the objects."""
    canonical_row, second_row = rows
    first, second = Copy.of(canonical_row), Copy.of(second_row)
    changes = {
        "kept_sha256": [conflict.kept_sha256, second.sha256],
        "other_key": [conflict.other_key, first_key],
        "other_sha256": [conflict.other_sha256, first.sha256],
    }
    _set(canonical_row, second, key=canonical_row.key)
    _set(second_row, first, key=first_key)
    conflict.kept_sha256, conflict.other_key = second.sha256, first_key
    conflict.other_sha256, conflict.other_size = first.sha256, first.size
    with transaction.atomic():
        canonical_row.save()
        second_row.save()
        conflict.save(update_fields=["kept_sha256", "other_key", "other_sha256", "other_size"])
        manifest_sha = _rewrite_manifest(store, row)
    changes["manifest_sha256"] = [row.manifest_sha256, manifest_sha]
    return changes


def _set(manifest_row, copy, key):
    manifest_row.key, manifest_row.sha256, manifest_row.size = key, copy.sha256, copy.size
    manifest_row.sop_class, manifest_row.transfer_syntax = copy.sop_class, copy.transfer_syntax


def _rewrite_manifest(store, row):
    """The study's manifest object with the instances as the rows now say; its new
    SHA-256 is kept on the ledger row."""
    if not row.manifest_key:
        return row.manifest_sha256
    try:
        manifest = json.loads(store.read(row.manifest_key))
        manifest["instances"] = manifest_instances(row.instances.all())
        key, sha = store.put_manifest(row.study.study_uid, manifest)
    except (DestinationError, ValueError) as exc:
        raise ConflictError(f"the study's manifest could not be rewritten: {exc}") from exc
    WaveStudy.objects.filter(pk=row.pk).update(manifest_key=key, manifest_sha256=sha)
    return sha
