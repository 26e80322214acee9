"""Real rows of the other apps, for live-bound tasks and the go/no-go screen: a migration
ledger, trained clinicians, legacy and cloud viewers, integrations cut over."""

from datetime import timedelta

from django.utils import timezone

from core.access import CLINICIAN
from cutover import actions
from cutover.models import CloudViewer
from tests.conftest import make_user


def migration_ledger(studies=4, done=3, name="wave-1"):
    """A wave of `studies` ledger rows, `done` of them done; returns (wave, rows)."""
    from inventory.models import PacsSource, Study
    from migration.models import Destination, StudyState, Wave, WaveStudy

    source, _ = PacsSource.objects.get_or_create(
        name="legacy", defaults={"ae_title": "LEGACY", "host": "127.0.0.1", "port": 104}
    )
    destination, _ = Destination.objects.get_or_create(
        name="cloud", defaults={"kind": "filesystem", "path": "/tmp/cloud"}
    )
    wave = Wave.objects.create(name=name, source=source, destination=destination)
    rows = []
    for n in range(studies):
        study = Study.objects.create(source=source, study_uid=f"1.2.826.0.1.{name[-1]}.{n}")
        state = StudyState.DONE if n < done else StudyState.QUEUED
        rows.append(WaveStudy.objects.create(wave=wave, study=study, state=state))
    return wave, rows


def inventory_proven(name="legacy", complete=True):
    """The source's last crawl, finished: proven complete, or capped with what is unproven."""
    from inventory.models import CrawlRun, PacsSource

    source, _ = PacsSource.objects.get_or_create(
        name=name, defaults={"ae_title": "LEGACY", "host": "127.0.0.1", "port": 104}
    )
    unproven = "" if complete else "The universal C-FIND was capped (at 37), so no single answer"
    return CrawlRun.objects.create(
        source=source, status="done", complete=complete, unproven=unproven,
        complete_reason="the universal C-FIND answered under the cap" if complete else "",
    )  # fmt: skip


def finish_ledger(rows):
    from migration.models import StudyState, WaveStudy

    WaveStudy.objects.filter(pk__in=[r.pk for r in rows]).update(state=StudyState.DONE)


def clinicians(department_sizes, trained_per_department):
    """Clinicians with profiles in departments; the first N of each attended the module."""
    from training.models import ClinicianProfile, Department, Enrolment, Module, TrainingSession

    module, _ = Module.objects.get_or_create(title="Cloud viewer basics")
    start = timezone.now() - timedelta(days=2)
    session = TrainingSession.objects.create(
        module=module, starts_at=start, ends_at=start + timedelta(hours=2), capacity=100
    )
    people = {}
    for dept_name, size in department_sizes.items():
        dept, _ = Department.objects.get_or_create(name=dept_name)
        people[dept_name] = []
        for n in range(size):
            user = make_user(f"{dept_name.lower()}{n}", CLINICIAN)
            ClinicianProfile.objects.create(user=user, department=dept)
            attended = n < trained_per_department.get(dept_name, 0)
            Enrolment.objects.create(
                session=session, user=user, status="enrolled", attended=attended or None
            )
            people[dept_name].append(user)
    return session, people


def train(session, users):
    from training.models import Enrolment

    for user in users:
        Enrolment.objects.update_or_create(
            session=session, user=user, defaults={"status": "enrolled", "attended": True}
        )


def legacy_viewers():
    """Two legacy viewers with overlapping capabilities (four distinct ones)."""
    from inventory.models import Viewer, ViewerCapability

    caps = {
        code: ViewerCapability.objects.get_or_create(
            code=code, defaults={"name": name, "standard": True}
        )[0]
        for code, name in [
            ("window_level", "Window/level"),
            ("measurements", "Measurements"),
            ("mpr", "MPR"),
            ("key_images", "Key images"),
        ]
    }
    pacs = Viewer.objects.create(name="Legacy PACS workstation", kind="diagnostic")
    pacs.capabilities.set([caps["window_level"], caps["measurements"], caps["mpr"]])
    web = Viewer.objects.create(name="Legacy web viewer", kind="clinical")
    web.capabilities.set([caps["window_level"], caps["key_images"]])
    return caps


def cloud_viewer_tested(user, result="pass"):
    viewer = CloudViewer.objects.create(name="Cloud viewer", vendor="Acme")
    actions.generate_test_plan(viewer, user)
    for case in viewer.cases.all():
        actions.record_result(case, user, result, "checked on CT and MR")
    return viewer


def cut_over(plan, user):
    for stage in plan.stages.order_by("order"):
        for item in stage.items.filter(signed_at__isnull=True):
            actions.sign_item(item, user)
        actions.open_gate(stage, user)


ARTIFACTS = __import__("pathlib").Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
ARTIFACTS.mkdir(parents=True, exist_ok=True)


def beside(func, *args, **kwargs):
    """Run `func` in another thread, as a web request or a worker would, and return its
    result: Playwright's event loop owns the test thread, and events cannot be sent to
    Redis from inside it."""
    import threading

    from django.db import connection

    outcome = {}

    def run():
        try:
            outcome["value"] = func(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test thread
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
