"""Reading a migrated study back from both sides, for validation and render review.

The source side re-retrieves from the legacy PACS through the same DIMSE code as the
engine and holds one of the PACS's association slots while it does, so validation
obeys the same association limit as migration. The destination side reads the objects
the manifest (`StoredInstance`) names.
"""

import time
from contextlib import contextmanager

from django.conf import settings

from migration import dicom, throttle
from migration.dicom import RetrieveError
from migration.models import StoredInstance
from migration.storage import open_store


@contextmanager
def pacs_slot(source, wait_seconds=None):
    """Hold one association slot of `source` (waiting for one to free up)."""
    slots = throttle.Slots(source.pk)
    deadline = time.monotonic() + float(wait_seconds or settings.MIGRATION_DIMSE_TIMEOUT * 4)
    token = slots.acquire(max(1, source.max_associations))
    while token is None:
        if time.monotonic() > deadline:
            raise RetrieveError("association_limit", "no free association slot on the PACS")
        time.sleep(0.2)
        token = slots.acquire(max(1, source.max_associations))
    try:
        yield token
    finally:
        slots.release(token)


def each_source_instance(source, study_uid, on_instance):
    """Re-retrieve a whole study from the PACS; each instance's bytes go to `on_instance`
    as they arrive (nothing is kept here). Returns the `dicom.Retrieved` tally."""
    pacs = dicom.Pacs.from_source(source)
    with pacs_slot(source):
        expected = dicom.query_study(pacs, study_uid, listed=True)
        return dicom.retrieve(pacs, study_uid, expected.sop_classes, on_instance)


def source_instance(source, study_uid, series_uid, sop_uid, sop_class=None):
    """One instance's bytes from the PACS: an IMAGE-level C-GET, or the study's C-MOVE
    filtered to that instance for PACS that only move. Naming `sop_class` lets the C-GET
    propose one context per transfer syntax, so the PACS sends the object as stored
    instead of transcoding it (which some PACS cannot do, e.g. from JPEG 2000)."""
    pacs = dicom.Pacs.from_source(source)
    received = {}
    with pacs_slot(source):
        if pacs.method == "move":
            dicom.c_move(pacs, study_uid, lambda data: _keep_if(data, sop_uid, received))
        else:
            identifier = dicom.image_identifier(study_uid, series_uid, sop_uid)
            classes = [sop_class] if sop_class else []
            dicom.c_get(pacs, study_uid, classes, lambda data: received.setdefault(sop_uid, data),
                        identifier)  # fmt: skip
    if sop_uid not in received:
        raise RetrieveError("not_found", f"the PACS sent nothing for instance {sop_uid}")
    return received[sop_uid]


def _keep_if(data, sop_uid, received):
    if dicom.sop_instance_uid(data) == sop_uid:
        received[sop_uid] = data


def destination_instance(stored, store=None):
    """The stored bytes of one manifest row (`StoredInstance`), read from the destination
    (S3 GET, WADO-RS or the filesystem)."""
    store = store or open_store(stored.ledger.wave.destination)
    return store.read(stored.key)


def stored_instances(ledger_row):
    """The manifest rows of the canonical copies of one ledger row, by SOP UID."""
    rows = ledger_row.instances.filter(role=StoredInstance.Role.STORED)
    return {row.sop_uid: row for row in rows}
