"""The environment catalogue: validated forms, list pages, CSV import/export with real
relations, all-or-nothing imports, and its API."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inventory.catalogue import KINDS, CsvImportError, export_csv, import_csv
from inventory.models import (
    AccessRole,
    Integration,
    PacsSource,
    SharingWorkflow,
    Viewer,
    ViewerCapability,
)

pytestmark = pytest.mark.django_db

INTEGRATIONS = """name,kind,protocol,direction,owner,endpoint,state,source,notes
Epic ADT,emr,hl7v2,inbound,Interface team,mllp://10.1.1.5:2575,active,main,orders and ADT
RIS orders,ris,hl7v2,both,RIS admin,mllp://10.1.1.6:2575,active,,
Billing export,billing,file,outbound,Finance,/mnt/billing,planned,,nightly batch
"""


@pytest.fixture
def source():
    return PacsSource.objects.create(name="main", ae_title="MAIN", host="h", port=104)


def test_the_standard_viewer_capability_checklist_exists():
    names = set(ViewerCapability.objects.filter(standard=True).values_list("name", flat=True))
    assert {"Window/level", "Zoom/pan", "MPR", "Hanging protocols", "Fusion", "Cine"} <= names
    assert len(names) == 10


def test_integrations_import_from_csv_with_their_pacs_and_export_the_same(source):
    created, updated = import_csv(KINDS["integrations"], INTEGRATIONS)

    assert (created, updated) == (3, 0)
    epic = Integration.objects.get(name="Epic ADT")
    assert (epic.protocol, epic.direction, epic.source) == ("hl7v2", "inbound", source)
    exported = export_csv(KINDS["integrations"])
    assert "Epic ADT,emr,hl7v2,inbound,Interface team,mllp://10.1.1.5:2575,active,main" in exported
    assert import_csv(KINDS["integrations"], exported) == (0, 3)


def test_a_csv_with_one_bad_row_imports_nothing_and_names_every_error(source):
    bad = INTEGRATIONS + "Fax gateway,fax,carrier-pigeon,inbound,,,active,nosuch,\n"

    with pytest.raises(CsvImportError) as caught:
        import_csv(KINDS["integrations"], bad)

    messages = [f"{line}: {m}" for line, m in caught.value.errors]
    assert any(m.startswith("5: source: no PACS source named 'nosuch'") for m in messages)
    assert any(m.startswith("5: kind:") for m in messages)
    assert any(m.startswith("5: protocol:") for m in messages)
    assert any(m.startswith("5: owner:") for m in messages)
    assert not Integration.objects.exists()


def test_workflows_and_viewers_keep_their_relations_through_csv(source):
    import_csv(KINDS["integrations"], INTEGRATIONS)
    import_csv(
        KINDS["workflows"],
        "name,mechanism,from_party,to_party,monthly_volume,owner,integrations\n"
        "Tumour board,qr,Radiology,Oncology,120,Dr. Lind,Epic ADT; RIS orders\n",
    )
    import_csv(
        KINDS["viewers"],
        "name,vendor,version,kind,users,capabilities\n"
        "Diagnostic WS,Acme,7.2,diagnostic,40,Window/level; MPR; Fusion; 3D printing export\n",
    )

    board = SharingWorkflow.objects.get()
    assert set(board.integrations.values_list("name", flat=True)) == {"Epic ADT", "RIS orders"}
    viewer = Viewer.objects.get()
    caps = {c.name: c.standard for c in viewer.capabilities.all()}
    assert caps == {"Window/level": True, "MPR": True, "Fusion": True, "3D printing export": False}
    assert "Fusion; MPR; Window/level; 3D printing export" in export_csv(KINDS["viewers"])


def test_access_roles_are_imported_with_user_counts(source):
    import_csv(
        KINDS["access-roles"],
        "system,name,user_count,permissions,source\n"
        "PACS,Radiologist,85,read/report,main\nPACS,Technologist,40,store,main\n",
    )
    assert dict(AccessRole.objects.values_list("name", "user_count")) == {
        "Radiologist": 85,
        "Technologist": 40,
    }
    with pytest.raises(CsvImportError, match="user_count"):
        import_csv(KINDS["access-roles"], "system,name,user_count\nPACS,Clerk,-3\n")


def test_engineers_add_and_import_on_the_pages_and_project_managers_only_read(
    source, cast, client_for
):
    pm = client_for(cast.pm)
    assert pm.get("/inventory/catalogue/integrations/").status_code == 200
    assert pm.post("/inventory/catalogue/integrations/", {"name": "x"}).status_code == 403

    engineer = client_for(cast.engineer)
    invalid = engineer.post("/inventory/catalogue/integrations/", {"name": "Lab"})
    assert invalid.status_code == 200 and "This field is required." in invalid.content.decode()
    upload = SimpleUploadedFile("i.csv", INTEGRATIONS.encode(), content_type="text/csv")
    done = engineer.post("/inventory/catalogue/integrations/import/", {"file": upload})
    assert done.status_code == 302 and Integration.objects.count() == 3
    page = engineer.get("/inventory/catalogue/integrations/").content.decode()
    assert "Epic ADT" in page and "mllp://10.1.1.5:2575" in page
    bad = SimpleUploadedFile("i.csv", b"name,colour\nx,red\n", content_type="text/csv")
    refused = engineer.post("/inventory/catalogue/integrations/import/", {"file": bad})
    assert refused.status_code == 400 and "unknown column(s): colour" in refused.content.decode()
    csv_text = engineer.get("/inventory/catalogue/integrations.csv").content.decode()
    assert csv_text.splitlines()[0].startswith("name,kind,protocol")


def test_the_viewer_form_takes_checklist_and_free_capabilities(cast, client_for):
    window = ViewerCapability.objects.get(code="window_level")
    response = client_for(cast.engineer).post(
        "/inventory/catalogue/viewers/",
        {"name": "Web viewer", "kind": "clinical", "capabilities": [window.pk],
         "other_capabilities": "Teaching files; Dictation"},
    )  # fmt: skip
    assert response.status_code == 302
    names = set(Viewer.objects.get().capabilities.values_list("name", flat=True))
    assert names == {"Window/level", "Teaching files", "Dictation"}


def test_the_catalogue_api_creates_with_validation(source, cast, client_for):
    url = "/inventory/api/catalogue/integrations/"
    payload = {"name": "PACS→VNA", "kind": "other", "protocol": "dicom", "direction": "outbound",
               "owner": "PACS team", "source": source.pk}  # fmt: skip
    assert client_for(cast.pm).post(url, payload).status_code == 403
    created = client_for(cast.engineer).post(url, payload)
    assert created.status_code == 201 and created.json()["source"] == source.pk
    bad = client_for(cast.engineer).post(url, {**payload, "name": "x", "protocol": "smoke"})
    assert bad.status_code == 400 and "protocol" in bad.json()
    assert client_for(cast.pm).get(url).json()["count"] == 1
