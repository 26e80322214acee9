"""Are an appointment's priors in the cloud? (read-only queries for pages and the API)"""

from django.db.models import Q

from migration.models import StudyState, WaveStudy
from sync.models import Appointment, AppointmentPrior


def upcoming(since, limit):
    """[{appointment, priors, ready, in_flight}] for appointments from `since` on (and
    those without a time), soonest first."""
    shown = list(
        Appointment.objects.filter(
            Q(scheduled_at__gte=since) | Q(scheduled_at__isnull=True)
        ).order_by("scheduled_at", "pk")[:limit]
    )
    priors = AppointmentPrior.objects.filter(appointment__in=shown).values_list(
        "appointment_id", "study_id"
    )
    by_appointment = {}
    for appointment_id, study_id in priors:
        by_appointment.setdefault(appointment_id, []).append(study_id)
    studies = {s for ids in by_appointment.values() for s in ids}
    states = WaveStudy.objects.filter(study_id__in=studies).values_list("study_id", "state")
    done = {s for s, state in states if state == StudyState.DONE}
    return [_row(a, by_appointment.get(a.pk, []), done) for a in shown]


def _row(appointment, study_ids, done):
    ready = sum(1 for s in study_ids if s in done)
    return {
        "appointment": appointment,
        "priors": len(study_ids),
        "ready": ready,
        "all_ready": ready == len(study_ids),
    }
