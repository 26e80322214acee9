"""The validation pages: who may see and do what, the validated badge and run progress,
the reconciliation report (page, CSV, print), render review with signed verdicts and
audited PHI, the discrepancy queue; nothing shows PHI to roles without view_phi."""

import csv
import io

import pytest
from auditlog.models import LogEntry
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from core.models import PHIAccess
from devstack import synthetic
from inventory.models import PacsSource, Study
from migration import discrepancies, validation_views
from migration.models import (
    Destination,
    Discrepancy,
    RenderReview,
    StoredInstance,
    StudyState,
    ValidationRun,
    Wave,
    WaveState,
    WaveStudy,
)
from migration.storage import open_store, sha256_hex

pytestmark = pytest.mark.django_db

VIEWERS = ("engineer", "pm", "staff", "lead", "admin")
OUTSIDERS = ("clinician", "nobody")
REVIEWERS = ("engineer", "pm", "lead", "admin")


@pytest.fixture
def wave(tmp_path):
    """A finished wave of three CT studies in a folder destination, with manifests."""
    source = PacsSource.objects.create(name="legacy", ae_title="LEGACY", host="127.0.0.1", port=104)
    destination = Destination.objects.create(name="folder", kind="filesystem", path=str(tmp_path))
    wave = Wave.objects.create(
        name="wave-v", source=source, destination=destination, state=WaveState.DONE
    )
    store = open_store(destination)
    studies = synthetic.iter_studies(studies=3, rows=16, cols=16, modality="CT", seed=11)
    for n, datasets in enumerate(studies):
        ds = datasets[0]
        study = Study.objects.create(
            source=source, study_uid=str(ds.StudyInstanceUID), patient_id=f"PID{n:03d}",
            patient_name=f"Doe^Jane{n}", accession_number=f"ACC{n:03d}", modalities="CT",
            num_instances=1,
        )  # fmt: skip
        row = WaveStudy.objects.create(
            wave=wave, study=study, state=StudyState.DONE, instances_stored=1
        )
        data = synthetic.dataset_bytes(ds)
        put = store.put_instance(
            study.study_uid, str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), data,
            sha256_hex(data),
        )  # fmt: skip
        StoredInstance.objects.create(
            ledger=row, sop_uid=str(ds.SOPInstanceUID), series_uid=str(ds.SeriesInstanceUID),
            sop_class=str(ds.SOPClassUID), transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
            size=len(data), sha256=put.sha256, key=put.key,
        )  # fmt: skip
    return wave


def reconciled(wave, verdicts=None):
    """A finished whole-wave reconciliation run with one row per ledger row."""
    rows = []
    for n, row in enumerate(wave.ledger.select_related("study").order_by("pk")):
        verdict = (verdicts or {}).get(n, "complete")
        missing = 1 if verdict.startswith("missing") else 0
        rows.append({
            "ledger_id": row.pk, "study_uid": row.study.study_uid, "state": row.state,
            "reported_at_inventory": 1, "on_pacs_now": 1, "in_destination": 1 - missing,
            "verdict": verdict, "missing": missing, "extra": 0,
        })  # fmt: skip
    totals = {
        "wave": wave.name, "studies": len(rows),
        "complete": sum(r["verdict"] == "complete" for r in rows),
        "missing_instances": sum(r["missing"] for r in rows), "extra_instances": 0,
        "conflicted": 0, "quarantined": 0, "reported_at_inventory": len(rows),
        "on_pacs_now": len(rows), "in_destination": sum(r["in_destination"] for r in rows),
        "discrepancy_count": 0,
    }  # fmt: skip
    run = ValidationRun.objects.create(
        wave=wave, kind=ValidationRun.Kind.RECONCILE, state=ValidationRun.State.DONE,
        progress_done=len(rows), progress_total=len(rows), totals=totals,
        finished_at=timezone.now(),
    )  # fmt: skip
    discrepancies.save_report_rows(run, rows)
    return run


def open_discrepancy(wave, kind=Discrepancy.Kind.TAG, **fields):
    row = wave.ledger.select_related("study").order_by("pk").first()
    stored = row.instances.first()
    return Discrepancy.objects.create(
        wave=wave, ledger=row, study_uid=row.study.study_uid, series_uid=stored.series_uid,
        sop_uid=stored.sop_uid, kind=kind, subject="StudyDescription",
        detail="StudyDescription differs", **fields,
    )  # fmt: skip


def first_row(wave):
    return wave.ledger.select_related("study").order_by("pk").first()


def page_urls(wave):
    row = first_row(wave)
    return [
        reverse("migration:validation_overview"),
        reverse("migration:validation", args=[wave.name]),
        reverse("migration:validation_state", args=[wave.name]),
        reverse("migration:validation_report", args=[wave.name]),
        reverse("migration:validation_report_print", args=[wave.name]),
        reverse("migration:source_report", args=[wave.source.name]),
        reverse("migration:wave_discrepancies", args=[wave.name]),
        reverse("migration:discrepancies"),
        reverse("migration:review", args=[wave.name, row.pk]),
    ]


def test_validation_pages_are_for_roles_that_view_migration(cast, client_for, wave):
    reconciled(wave)
    open_discrepancy(wave)
    for url in page_urls(wave):
        for name in VIEWERS:
            assert client_for(getattr(cast, name)).get(url).status_code == 200, (url, name)
        for name in OUTSIDERS:
            assert client_for(getattr(cast, name)).get(url).status_code == 403, (url, name)


def test_no_validation_page_shows_patient_data_to_a_role_without_view_phi(cast, client_for, wave):
    reconciled(wave)
    open_discrepancy(wave)
    for url in page_urls(wave):
        html = client_for(cast.pm).get(url).content.decode()
        assert "Doe^Jane" not in html and "PID00" not in html and "ACC00" not in html, url
    assert not PHIAccess.objects.exists()


def test_the_wave_page_shows_a_clear_validated_badge_only_when_reconciled_and_nothing_open(
    cast, client_for, wave
):
    url = reverse("migration:validation", args=[wave.name])
    client = client_for(cast.pm)

    assert "✘ Not validated" in client.get(url).content.decode()
    reconciled(wave)
    html = client.get(url).content.decode()
    assert "✔ Validated" in html and 'data-validated="true"' in html
    open_discrepancy(wave)
    html = client.get(url).content.decode()
    assert "✘ Not validated" in html and "1 discrepancy" in html
    assert 'data-live-topic="validation.wave-v"' in html


def test_the_wave_page_shows_the_running_run_and_the_sample_size_the_backend_proposes(
    cast, client_for, wave
):
    ValidationRun.objects.create(
        wave=wave, kind=ValidationRun.Kind.SPOTCHECK, state=ValidationRun.State.RUNNING,
        progress_done=1, progress_total=4,
    )  # fmt: skip

    html = client_for(cast.engineer).get(reverse("migration:validation", args=[wave.name]))
    html = html.content.decode()

    assert 'aria-valuenow="25"' in html and "Spot-check" in html and "Running" in html
    assert 'name="sample" type="number" min="1" value="3"' in html
    assert "Start a reconciliation" in html and "Start a spot-check" in html


def test_only_roles_that_validate_see_and_may_use_the_run_buttons(cast, client_for, wave):
    url = reverse("migration:validation_run", args=[wave.name, "spotcheck"])
    page = reverse("migration:validation", args=[wave.name])
    for name in ("pm", "lead", "staff"):
        client = client_for(getattr(cast, name))
        assert "Start a spot-check" not in client.get(page).content.decode()
        assert client.post(url, {"sample": "2"}).status_code == 403, name
    assert not ValidationRun.objects.exists()

    response = client_for(cast.engineer).post(url, {"sample": "2", "seed": "7"})

    assert response.status_code == 302
    run = ValidationRun.objects.get()
    assert (run.kind, run.sample_size, run.seed, run.started_by) == (
        "spotcheck",
        2,
        7,
        cast.engineer,
    )


def test_a_draft_wave_cannot_be_validated_and_says_why(cast, client_for, wave):
    Wave.objects.filter(pk=wave.pk).update(state=WaveState.DRAFT)
    url = reverse("migration:validation_run", args=[wave.name, "reconcile"])

    response = client_for(cast.engineer).post(url, follow=True)

    assert "nothing was migrated to validate" in response.content.decode()
    assert not ValidationRun.objects.exists()


def test_the_reconciliation_report_has_totals_a_verdict_per_study_and_a_filter(
    cast, client_for, wave
):
    run = reconciled(wave, {1: "missing 1"})
    url = reverse("migration:validation_report", args=[wave.name])

    html = client_for(cast.lead).get(url).content.decode()
    problems = client_for(cast.lead).get(url, {"verdict": "problems"}).content.decode()

    assert f"Reconciliation {run.pk}" in html
    assert '<dd data-total="studies">3</dd>' in html and '<dd data-total="complete">2</dd>' in html
    assert '<dd data-total="missing_instances">1</dd>' in html
    assert html.count('class="verdict">complete<') == 2 and "missing 1" in html
    assert "missing 1" in problems and 'class="verdict">complete<' not in problems


def test_the_reconciliation_report_downloads_as_csv_with_every_study(cast, client_for, wave):
    reconciled(wave, {2: "missing 1"})
    url = reverse("migration:validation_report", args=[wave.name])

    response = client_for(cast.pm).get(url, {"format": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="reconciliation-wave-v.csv"' in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][:3] == ["wave", "ledger id", "study instance UID"] and lines[0][-4] == "verdict"
    assert lines[0][-1] == "transcoded"
    uids = {row.study.study_uid for row in wave.ledger.select_related("study")}
    assert {line[2] for line in lines[1:]} == uids
    assert [line[6] for line in lines[1:]] == ["complete", "complete", "missing 1"]
    assert all(line[0] == "wave-v" for line in lines[1:])
    assert "Doe^Jane" not in text


def test_the_printable_report_is_for_the_steering_committee_without_navigation(
    cast, client_for, wave
):
    reconciled(wave)
    url = reverse("migration:validation_report_print", args=[wave.name])

    html = client_for(cast.pm).get(url).content.decode()

    assert "<nav" not in html and "live-status" not in html and "Log out" not in html
    assert "validation-print.css" in html and "steering committee" in html
    assert "Validated: every study complete" in html and "signature" in html
    assert html.count('<tr class="verdict-complete">') == 3


def test_the_pacs_report_adds_up_its_waves_and_exports_them(cast, client_for, wave):
    reconciled(wave, {0: "missing 1"})
    url = reverse("migration:source_report", args=[wave.source.name])

    html = client_for(cast.pm).get(url).content.decode()
    response = client_for(cast.pm).get(url, {"format": "csv"})

    assert '<dd data-total="studies">3</dd>' in html and "Not every wave validated" in html
    assert len(list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))) == 4
    printable = client_for(cast.pm).get(
        reverse("migration:source_report_print", args=[wave.source.name])
    )
    assert "<nav" not in printable.content.decode()


def test_the_review_page_shows_phi_only_to_view_phi_and_records_that_it_did(cast, client_for, wave):
    row = first_row(wave)
    url = reverse("migration:review", args=[wave.name, row.pk])

    for name in ("pm",):
        html = client_for(getattr(cast, name)).get(url).content.decode()
        assert "Doe^Jane0" not in html and "PID000" not in html
    assert not PHIAccess.objects.exists()
    html = client_for(cast.engineer).get(url).content.decode()

    assert "Doe^Jane0" in html and "PID000" in html and "ACC000" in html
    access = PHIAccess.objects.get()
    assert (access.user, access.what, access.object_id) == (
        cast.engineer,
        "migration.render_review",
        str(row.study_id),
    )


def test_the_review_page_offers_both_thumbnails_and_signing_to_reviewers_only(
    cast, client_for, wave
):
    row = first_row(wave)
    sop = row.instances.get().sop_uid
    url = reverse("migration:review", args=[wave.name, row.pk])

    html = client_for(cast.lead).get(url).content.decode()
    staff_html = client_for(cast.staff).get(url).content.decode()
    pm_html = client_for(cast.pm).get(url).content.decode()

    assert f"{sop}/source.png" in html and f"{sop}/destination.png" in html
    assert "Renders correctly" in html and "Flag a problem" in html
    assert f"{sop}/source.png" in staff_html and "Renders correctly" not in staff_html
    assert "Renders correctly" in pm_html and "thumbs-withheld" in pm_html  # no view_phi
    assert f"{sop}/source.png" not in pm_html


def test_the_destination_thumbnail_is_a_png_of_the_pixels_and_nothing_else(cast, client_for, wave):
    row = first_row(wave)
    stored = row.instances.get()
    url = reverse("migration:thumbnail", args=[wave.name, row.pk, stored.sop_uid, "destination"])

    response = client_for(cast.staff).get(url)

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, no-store"
    assert PHIAccess.objects.filter(user=cast.staff, what="migration.thumbnail").count() == 1
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (16, 16) and image.mode == "L" and not image.info
    assert b"Doe" not in response.content and b"PID" not in response.content
    assert client_for(cast.clinician).get(url).status_code == 403
    assert client_for(cast.pm).get(url).status_code == 403  # view_migration, not view_phi


def test_a_damaged_cloud_copy_answers_with_an_image_saying_it_cannot_render(
    cast, client_for, wave, tmp_path
):
    row = first_row(wave)
    stored = row.instances.get()
    (tmp_path / stored.key).write_bytes(b"DICM but not really")
    url = reverse("migration:thumbnail", args=[wave.name, row.pk, stored.sop_uid, "destination"])

    response = client_for(cast.lead).get(url)

    assert response.status_code == 422 and response["Content-Type"] == "image/svg+xml"
    assert b"Cannot render" in response.content


def test_a_reviewer_signs_renders_correctly_and_the_signature_is_stored_and_audited(
    cast, client_for, wave
):
    row = first_row(wave)
    sop = row.instances.get().sop_uid
    url = reverse("migration:review_sign", args=[wave.name, row.pk])

    response = client_for(cast.pm).post(url, {"sop": sop, "verdict": "ok"}, HTTP_HX_REQUEST="true")

    review = RenderReview.objects.get()
    assert (review.reviewer, review.verdict, review.sop_uid) == (cast.pm, "ok", sop)
    html = response.content.decode()
    assert "Signed: <strong>Renders correctly</strong> by" in html and ">pm<" in html
    assert review.signed_at.strftime("%Y-%m-%d %H:%M") in html
    assert LogEntry.objects.get_for_object(review).filter(action=LogEntry.Action.CREATE).exists()
    assert not Discrepancy.objects.exists()
    page = client_for(cast.lead).get(reverse("migration:review", args=[wave.name, row.pk]))
    assert f'id="review-{review.pk}"' in page.content.decode()


def test_flagging_a_problem_needs_a_note_and_opens_a_render_discrepancy(cast, client_for, wave):
    row = first_row(wave)
    sop = row.instances.get().sop_uid
    url = reverse("migration:review_sign", args=[wave.name, row.pk])
    client = client_for(cast.lead)

    refused = client.post(url, {"sop": sop, "verdict": "problem"}, HTTP_HX_REQUEST="true")
    assert "a note is required" in refused.content.decode()
    assert not RenderReview.objects.exists()

    client.post(url, {"sop": sop, "verdict": "problem", "note": "image is blank"})

    review = RenderReview.objects.get()
    found = Discrepancy.objects.get()
    assert (found.kind, found.status, found.sop_uid, found.ledger) == ("render", "open", sop, row)
    assert f"render review {review.pk}" in found.detail and "image is blank" in found.detail
    assert (
        "✘ Not validated"
        in client.get(reverse("migration:validation", args=[wave.name])).content.decode()
    )


def test_a_later_renders_correctly_settles_the_render_problem_flagged_on_that_instance(
    cast, client_for, wave
):
    row = first_row(wave)
    sop = row.instances.get().sop_uid
    url = reverse("migration:review_sign", args=[wave.name, row.pk])
    client_for(cast.lead).post(url, {"sop": sop, "verdict": "problem", "note": "too dark"})

    client_for(cast.pm).post(url, {"sop": sop, "verdict": "ok"})

    found = Discrepancy.objects.get()
    assert (found.status, found.resolved_by) == ("fixed", cast.pm)


def test_staff_and_clinicians_cannot_sign_reviews(cast, client_for, wave):
    row = first_row(wave)
    url = reverse("migration:review_sign", args=[wave.name, row.pk])
    for name in ("staff", "clinician"):
        response = client_for(getattr(cast, name)).post(
            url, {"sop": row.instances.get().sop_uid, "verdict": "ok"}
        )
        assert response.status_code == 403, name
    assert not RenderReview.objects.exists()


def test_any_study_opens_for_review_by_uid_or_ledger_id(cast, client_for, wave):
    row = first_row(wave)
    url = reverse("migration:review_open", args=[wave.name])
    target = reverse("migration:review", args=[wave.name, row.pk])
    client = client_for(cast.pm)

    assert client.get(url, {"study": row.study.study_uid})["Location"] == target
    assert client.get(url, {"study": str(row.pk)})["Location"] == target
    missing = client.get(url, {"study": "1.2.3.999"}, follow=True)
    assert "No study of this wave" in missing.content.decode()


def test_the_queue_filters_by_status_and_kind(cast, client_for, wave):
    tag = open_discrepancy(wave)
    pixel = open_discrepancy(wave, kind=Discrepancy.Kind.PIXEL)
    accepted = open_discrepancy(wave, status=Discrepancy.Status.ACCEPTED, reason="known")
    url = reverse("migration:wave_discrepancies", args=[wave.name])
    client = client_for(cast.lead)

    active = client.get(url).content.decode()
    pixels = client.get(url, {"kind": "pixel"}).content.decode()
    everything = client.get(url, {"status": ""}).content.decode()

    assert f"discrepancy-{tag.pk}" in active and f"discrepancy-{accepted.pk}" not in active
    assert f"discrepancy-{pixel.pk}" in pixels and f"discrepancy-{tag.pk}" not in pixels
    assert f"discrepancy-{accepted.pk}" in everything and "reason: known" in everything
    assert 'data-live-topic="validation.wave-v"' in active
    assert "Re-migrate" not in active, "a lead reads the queue but does not work it"
    refreshed = client.get(url, {"kind": "pixel"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in refreshed and f"discrepancy-{pixel.pk}" in refreshed


def test_an_engineer_assigns_and_accepts_with_a_required_reason(cast, client_for, wave):
    found = open_discrepancy(wave)
    client = client_for(cast.engineer)

    def act(verb, **data):
        url = reverse("migration:discrepancy_action", args=[found.pk, verb])
        return client.post(url, data, HTTP_HX_REQUEST="true").content.decode()

    html = act("assign", owner=cast.engineer.pk)
    found.refresh_from_db()
    assert found.owner == cast.engineer and f'value="{cast.engineer.pk}" selected' in html
    assert "cannot work on discrepancies" in act("assign", owner=cast.pm.pk)
    assert "a reason is required" in act("accept", reason="  ")
    found.refresh_from_db()
    assert found.status == "open"

    html = act("accept", reason="description normalised on purpose")

    found.refresh_from_db()
    assert (found.status, found.reason, found.resolved_by) == (
        "accepted",
        "description normalised on purpose",
        cast.engineer,
    )
    assert "Accepted" in html and 'data-action="accept"' not in html


def test_re_migrate_queues_the_study_again_and_marks_the_discrepancy(cast, client_for, wave):
    found = open_discrepancy(wave)
    url = reverse("migration:discrepancy_action", args=[found.pk, "remigrate"])
    assert client_for(cast.pm).post(url).status_code == 403

    html = client_for(cast.engineer).post(url, HTTP_HX_REQUEST="true").content.decode()

    found.refresh_from_db()
    assert found.status == "remigrating" and "Re-migrating" in html
    assert WaveStudy.objects.get(pk=found.ledger_id).state == StudyState.DONE  # for a worker
    discrepancies.run_remigration(found.ledger_id, cast.engineer)  # what the worker's task runs
    assert WaveStudy.objects.get(pk=found.ledger_id).state == StudyState.QUEUED


def test_the_reconciliation_report_shows_a_page_of_studies_and_links_the_next(
    cast, client_for, wave, monkeypatch
):
    """A wave may hold millions of studies: the screen shows a page, the CSV keeps all."""
    monkeypatch.setattr(validation_views, "REPORT_PAGE_ROWS", 2)
    reconciled(wave, {2: "missing 1"})
    url = reverse("migration:validation_report", args=[wave.name])

    first = client_for(cast.lead).get(url).content.decode()
    after = wave.ledger.order_by("pk")[1].pk
    second = client_for(cast.lead).get(url, {"after": after, "at": 2}).content.decode()

    assert first.count('class="verdict">complete<') == 2 and "missing 1" not in first
    assert "Studies 1–2 of 3." in first and f'href="?after={after}&amp;at=2&amp;run=' in first
    assert "missing 1" in second and "Studies 3–3 of 3." in second and 'rel="next"' not in second
    one_verdict = client_for(cast.lead).get(url, {"verdict": "missing 1"}).content.decode()
    assert "missing 1" in one_verdict and "Studies 1–1." in one_verdict  # no total kept
