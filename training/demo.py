"""Demo content for `make run`: departments, a module with its checklist, upcoming sessions,
a highlight, and the demo clinician as a lead user. Idempotent."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from training import actions
from training.models import Department, Highlight, Module, TrainingSession

CHECKLIST = [
    "Open a study from the worklist",
    "Compare with priors side by side",
    "Measure a length and an angle",
    "Use and switch hanging protocols",
    "Report a problem with the feedback form",
]


def seed_training_demo(clinician_username="clinician"):
    for name in ("Radiology", "Emergency", "Cardiology", "Oncology"):
        Department.objects.get_or_create(name=name)
    module = Module.objects.filter(title="Cloud viewer essentials").first()
    if module is None:
        module = actions.create_module(
            "Cloud viewer essentials",
            summary="Everything you need on day one with the cloud viewer.",
            items=CHECKLIST,
        )
    if not TrainingSession.objects.exists():
        _sessions(module)
    if not Highlight.objects.exists():
        Highlight.objects.create(
            title="Priors side by side",
            body="Drag a prior from the timeline next to the current study; scrolling is linked.",
            pinned=True,
        )
    clinician = get_user_model().objects.filter(username=clinician_username).first()
    if clinician is not None:
        radiology = Department.objects.get(name="Radiology")
        actions.set_profile(clinician, department=radiology, is_lead=True)


def _sessions(module):
    start = timezone.localtime().replace(hour=8, minute=0, second=0, microsecond=0)
    for days, capacity, where in ((2, 12, "Radiology seminar room"), (5, 2, ""), (9, 20, "")):
        starts = start + timedelta(days=days)
        TrainingSession.objects.create(
            module=module,
            starts_at=starts,
            ends_at=starts + timedelta(hours=1),
            capacity=capacity,
            location=where,
            virtual_link="" if where else "https://meet.hospital.example/cloud-viewer",
        )
