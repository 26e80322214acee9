"""Second witnesses without a PACS: the storage scan reads headers only and never writes,
a listing is read or refused as a whole, a compare joins what only the witness holds, and
the compare page, its CSV and the API follow the access rules."""

import csv
import io
import json
import os

import pytest
from django.core.management import CommandError, call_command

from devstack import synthetic
from inventory import actions, witness
from inventory.models import CrawlRun, PacsSource, Study, Witness

UIDS = [f"1.2.826.0.1.3680043.9.{n}" for n in range(6)]


@pytest.fixture
def storage(tmp_path):
    """A folder of four Part-10 files (three studies), one not DICOM, one cut short."""
    folder = tmp_path / "storage" / "ab"
    folder.mkdir(parents=True)
    written = synthetic.generate(tmp_path / "gen", studies=3, rows=8, cols=8, instances=1)
    extra = synthetic.generate(tmp_path / "gen2", studies=1, rows=8, cols=8, seed=9)
    for n, path in enumerate([*written, *extra]):
        (folder / f"f{n}").write_bytes(path.read_bytes())
    (folder / "index").write_bytes(b"SQLite format 3\x00" + bytes(200))
    (folder / "cut").write_bytes(written[0].read_bytes()[:300])
    return tmp_path / "storage"


@pytest.fixture
def crawled(db):
    """A source whose last crawl listed UIDS[:4] and was capped."""
    source = PacsSource.objects.create(name="legacy", ae_title="LEGACY", host="h", port=104)
    run = CrawlRun.objects.create(source=source, status="done", complete=False,
                                  unproven="The universal C-FIND was capped (at 37)")  # fmt: skip
    Study.objects.bulk_create(
        Study(source=source, study_uid=uid, seen_run=run, found_by="dated") for uid in UIDS[:4]
    )
    return source, run


def test_a_scan_reads_every_file_read_only_and_lists_the_unreadable_with_their_reason(storage):
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in storage.rglob("*")
              if p.is_file()}  # fmt: skip
    progress = []

    seen = witness.scan(storage, workers=3, progress=lambda done, total: progress.append(total))

    assert (seen.files, seen.studies, seen.instances) == (6, 4, 4)
    reasons = {u["path"]: u["reason"] for u in seen.unreadable}
    assert reasons == {os.path.join("ab", "index"): "not a DICOM Part-10 file",
                       os.path.join("ab", "cut"): reasons[os.path.join("ab", "cut")]}  # fmt: skip
    assert reasons[os.path.join("ab", "cut")] != "not a DICOM Part-10 file"
    assert {row[3] for row in seen.rows} == {"1.2.840.10008.1.2.1"}
    assert len(progress) == 6
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in storage.rglob("*") if p.is_file()}
    assert after == before


def test_a_listing_without_a_study_uid_column_is_refused_and_bad_rows_are_listed():
    with pytest.raises(witness.ListingError, match="no StudyInstanceUID column"):
        witness.read_listing(io.StringIO("uid,date\n1.2.3,2020\n"))

    seen = witness.read_listing(io.StringIO("StudyInstanceUID,Modality\n1.2.3,CT\nnot-a-uid,MR\n"))

    assert seen.studies == 1
    assert seen.unreadable == [{"path": "line 3", "reason": "no valid StudyInstanceUID"}]


@pytest.mark.django_db
def test_compare_joins_the_studies_only_the_witness_holds_and_agreement_proves_the_crawl(
    crawled, tmp_path
):
    source, run = crawled
    listing = tmp_path / "pacs.csv"
    listing.write_text("StudyInstanceUID\n" + "\n".join(UIDS[1:]) + "\n")
    out = io.StringIO()
    call_command("inventory", "import-listing", "legacy", str(listing), "--json", stdout=out)
    assert json.loads(out.getvalue().splitlines()[-1])["studies"] == 5

    out = io.StringIO()
    call_command("inventory", "compare", "legacy", "--json", stdout=out)
    result = json.loads(out.getvalue().splitlines()[-1])

    assert result["only_in_witness"] == UIDS[4:] and result["only_in_crawl"] == UIDS[:1]
    assert (result["crawled_studies"], result["witness_studies"], result["agree"]) == (4, 5, False)
    joined = Study.objects.filter(study_uid__in=UIDS[4:])
    assert set(joined.values_list("found_by", flat=True)) == {"listing"}
    run.refresh_from_db()
    assert run.complete is False and "found 2 studies the crawl did not list" in run.unproven

    Study.objects.filter(study_uid__in=UIDS[4:]).update(seen_run=run)  # a later crawl lists them
    agreeing = tmp_path / "all.csv"
    agreeing.write_text("StudyInstanceUID\n" + "\n".join(UIDS) + "\n")
    call_command("inventory", "import-listing", "legacy", str(agreeing), stdout=io.StringIO())
    assert actions.compare_witness(source)["agree"] is True
    run.refresh_from_db()
    assert run.complete is True and run.unproven == ""
    assert "lists exactly the studies the crawl listed" in run.complete_reason


@pytest.mark.django_db
def test_a_bad_listing_file_stores_nothing(crawled, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Patient,Date\nx,y\n")
    with pytest.raises(CommandError, match="no StudyInstanceUID column"):
        call_command("inventory", "import-listing", "legacy", str(bad))
    assert not Witness.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "read", "operate"),
    [("engineer", 200, True), ("admin", 200, True), ("pm", 200, False), ("lead", 200, False),
     ("staff", 403, False), ("clinician", 403, False), ("nobody", 403, False)],
)  # fmt: skip
def test_the_compare_page_csv_and_api_follow_the_access_rules(
    crawled, cast, client_for, tmp_path, who, read, operate
):
    source, _run = crawled
    seen = witness.read_listing(io.StringIO("StudyInstanceUID\n" + "\n".join(UIDS) + "\n"))
    actions.record_witness(source, "listing", "pacs.csv", seen)
    actions.compare_witness(source)
    client = client_for(getattr(cast, who))

    page = client.get(f"/inventory/sources/{source.pk}/compare/")
    exported = client.get(f"/inventory/sources/{source.pk}/compare.csv")
    api = client.get("/inventory/api/witnesses/")
    compare = client.post(f"/inventory/api/sources/{source.pk}/compare/")
    posted = client.post(f"/inventory/sources/{source.pk}/compare/")

    assert (page.status_code, exported.status_code, api.status_code) == (read, read, read)
    assert compare.status_code == (200 if operate else 403)
    assert posted.status_code == (302 if operate else 403)
    if read == 200:
        text = page.content.decode()
        assert 'data-agree="false"' in text and UIDS[5] in text
        rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
        assert rows[1:] == [[UIDS[4], "witness only", "listing"],
                            [UIDS[5], "witness only", "listing"]]  # fmt: skip
        assert api.json()["results"][0]["comparison"]["only_in_witness"] == UIDS[4:]


@pytest.mark.django_db
def test_the_api_scans_only_below_the_scan_roots_and_takes_a_listing_upload(
    crawled, cast, client_for, settings, tmp_path
):
    source, _run = crawled
    settings.INVENTORY_SCAN_ROOTS = [str(tmp_path / "allowed")]
    client = client_for(cast.engineer)
    refused = client.post(f"/inventory/api/sources/{source.pk}/scan/", {"path": "/etc"})
    assert refused.status_code == 400 and "INVENTORY_SCAN_ROOTS" in refused.json()["detail"]
    (tmp_path / "allowed" / "pacs").mkdir(parents=True)
    queued = client.post(f"/inventory/api/sources/{source.pk}/scan/",
                         {"path": str(tmp_path / "allowed" / "pacs")})  # fmt: skip
    assert queued.status_code == 202 and queued.json()["queued"] is True

    upload = io.BytesIO(("StudyInstanceUID\n" + "\n".join(UIDS) + "\nnope\n").encode())
    upload.name = "export.csv"
    created = client.post(f"/inventory/api/sources/{source.pk}/listing/", {"file": upload})

    assert created.status_code == 201 and created.json()["studies"] == 6
    listed = client.get("/inventory/api/witnesses/").json()["results"][0]
    assert listed["unreadable"] == {"no valid StudyInstanceUID": 1}
    schema = client.get("/api/schema/?format=json").json()["paths"]
    for path in ("scan", "listing", "compare"):
        assert f"/inventory/api/sources/{{id}}/{path}/" in schema
    assert "/inventory/api/witnesses/" in schema
    pm = client_for(cast.pm)  # the same test client, now logged in as a project manager
    scan_url = f"/inventory/api/sources/{source.pk}/scan/"
    assert pm.post(scan_url, {"path": str(tmp_path / "allowed")}).status_code == 403
