"""Priors first, end to end: an SIU^S12 over MLLP for a patient with 5 unmigrated priors,
sent while a 200-study bulk wave runs on a real worker, gets AA, and those 5 are verified
in the cloud before the bulk wave has finished, most recent and same modality first;
nothing is lost or migrated twice."""

from datetime import date

import pytest

from migration import actions as migration_actions
from migration.models import StudyState, Wave, WaveState, WaveStudy
from sync.models import Appointment, AppointmentPrior
from tests.migration import support as mig
from tests.sync import support
from tests.waiting import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
PATIENT = "PRIOR-PAT-5"


def prior_studies():
    """3 CT and 2 MR studies of one patient, on different days."""
    ct = support.tiny_studies(3, seed=1811, modality="CT", patient_id=PATIENT,
                              date_from=date(2019, 1, 1), date_to=date(2023, 1, 1))  # fmt: skip
    mr = support.tiny_studies(2, seed=1812, modality="MR", patient_id=PATIENT,
                              date_from=date(2020, 6, 1), date_to=date(2024, 6, 1))  # fmt: skip
    return ct, mr


def test_an_siu_puts_five_priors_in_the_cloud_before_a_200_study_bulk_wave_ends(
    orthanc_factory, migration_s3, bucket, migration_worker, mllp_listener
):
    orthanc = orthanc_factory(aet="PRIORPACS")
    bulk_studies = support.tiny_studies(200, seed=1810, date_from=date(2010, 1, 1),
                                        date_to=date(2018, 1, 1))  # fmt: skip
    ct, mr = prior_studies()
    for studies in (bulk_studies, ct, mr):
        support.upload(orthanc, studies)
    source = mig.make_source(orthanc, name="priors-legacy", max_associations=2)
    mig.make_inventory(source, {**bulk_studies, **ct, **mr})  # the priors come last
    destination = mig.s3_destination(migration_s3, bucket)
    bulk, info = migration_actions.create_wave(name="bulk", source=source, destination=destination)
    assert info["studies"] == 205
    migration_actions.change_wave(bulk, "start")
    wait_for(lambda: bulk.ledger.filter(state=StudyState.DONE).count() >= 5, message="bulk")

    ack = support.send(mllp_listener.port, support.siu("SIU-1", PATIENT, modality="CT"))
    assert ack["MSA"][1:3] == ["AA", "SIU-1"]

    priors = set(ct) | set(mr)
    remaining = {}

    def priors_done():
        done = WaveStudy.objects.filter(study__study_uid__in=priors, state=StudyState.DONE)
        if done.count() < 5:
            return False
        remaining["bulk"] = bulk.ledger.exclude(state=StudyState.DONE).count()
        remaining["state"] = Wave.objects.get(pk=bulk.pk).state
        return True

    wait_for(priors_done, timeout=300, message="the 5 priors verified")
    assert remaining["state"] == WaveState.RUNNING and remaining["bulk"] > 0, remaining

    appointment = Appointment.objects.get(control_id="SIU-1")
    assert appointment.state == Appointment.State.QUEUED and appointment.modality == "CT"
    ranked = list(AppointmentPrior.objects.filter(appointment=appointment).order_by("rank"))
    expected = sorted(ct, key=lambda u: str(ct[u][0].StudyDate), reverse=True) + sorted(
        mr, key=lambda u: str(mr[u][0].StudyDate), reverse=True
    )
    assert [p.study.study_uid for p in ranked] == expected
    assert {p.outcome for p in ranked} == {"moved"}  # out of the bulk wave's queue
    for uid in priors:
        (row,) = WaveStudy.objects.filter(study__study_uid=uid)  # moved, not duplicated
        assert row.wave.name.startswith("urgent-") and row.wave.priority > bulk.priority
        assert row.instances_stored == row.instances_reported == 1

    wait_for(lambda: Wave.objects.get(pk=bulk.pk).state == WaveState.DONE, timeout=600,
                 message="the bulk wave to finish")  # fmt: skip
    assert WaveStudy.objects.filter(study__source=source).count() == 205
    assert WaveStudy.objects.filter(study__source=source, state=StudyState.DONE).count() == 205
    keys = mig.listed_keys(migration_s3.client(), bucket, "studies/")
    assert len([k for k in keys if k.endswith(".dcm")]) == 205
