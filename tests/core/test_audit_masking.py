"""PHI in the audit log: every model that declares PHI_FIELDS has them masked whole in
its django-auditlog entries (creation and change alike)."""

import json

import pytest
from auditlog.models import LogEntry

from core.audit import PHI_MASK, phi_models
from inventory.models import PacsSource
from migration.models import Destination, LookupTable, Wave
from training.models import Feedback

pytestmark = pytest.mark.django_db
PHI = ("ACC-77341", "PID-55012", "MRN-90817", "DOE^JANE")


def entries_text(obj):
    return json.dumps([e.changes for e in LogEntry.objects.get_for_object(obj)])


def test_the_phi_fields_are_declared_with_their_models():
    declared = {f"{m._meta.label_lower}.{f}" for m, fields in phi_models().items() for f in fields}
    assert {"migration.wave.accession_numbers", "migration.wave.patient_ids",
            "migration.lookuptable.entries", "training.feedback.accession_number",
            "inventory.study.patient_name"} <= declared  # fmt: skip


def test_wave_selections_and_lookup_tables_are_masked_in_audit_entries(tmp_path):
    source = PacsSource.objects.create(name="p", ae_title="X", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="d", kind="filesystem", path=str(tmp_path))
    wave = Wave.objects.create(
        name="w", source=source, destination=destination,
        accession_numbers=["ACC-77341"], patient_ids=["PID-55012"],
    )  # fmt: skip
    wave.patient_ids = ["PID-55012", "PID-55013"]
    wave.save()
    table = LookupTable.objects.create(name="mrn", entries={"PID-55012": "MRN-90817"})
    table.entries = {"PID-55012": "MRN-90818"}
    table.save()

    for obj in (wave, table):
        text = entries_text(obj)
        assert LogEntry.objects.get_for_object(obj).count() == 2
        assert PHI_MASK in text
        assert not any(value in text for value in PHI) and "MRN-90818" not in text
    assert "patient_ids" in entries_text(wave)  # the change itself is still recorded


def test_feedback_accession_numbers_are_masked_in_audit_entries(cast):
    feedback = Feedback.objects.create(
        reporter=cast.clinician, accession_number="ACC-77341", description="slow",
        viewer="web", kind="bug", severity="low",
    )  # fmt: skip
    assert "ACC-77341" not in entries_text(feedback)
