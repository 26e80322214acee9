"""Upload caps: every file a form or the API takes has its own size limit (settings
UPLOAD_CAPS_MB), API lists have a length limit, and a request body has Django's."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from cutover.forms import ImportForm
from inventory.forms import CsvImportForm
from migration.forms import LookupTableForm
from tests.cutover.factories import START
from training.forms import MaterialForm

SMALL = {"training_material": 0.001, "lookup_csv": 0.001, "catalogue_csv": 0.001,
         "roadmap_csv": 0.001}  # fmt: skip
BIG = b"a,b\n" * 1000  # 4 KB, over 1 KB


@override_settings(UPLOAD_CAPS_MB=SMALL)
@pytest.mark.parametrize(
    "form, data",
    [
        (LookupTableForm, {"name": "mrn"}),
        (MaterialForm, {"title": "slides"}),
        (CsvImportForm, {}),
        (ImportForm, {}),
    ],
)
def test_each_upload_form_refuses_a_file_over_its_cap(form, data):
    bound = form(data, {"file": SimpleUploadedFile("big.csv", BIG)})
    assert not bound.is_valid()
    assert "larger than 0.001 MB" in str(bound.errors["file"])


@override_settings(UPLOAD_CAPS_MB=SMALL)
def test_a_file_under_its_cap_is_taken():
    bound = LookupTableForm({"name": "mrn"}, {"file": SimpleUploadedFile("s.csv", b"a,b\n")})
    assert bound.is_valid(), bound.errors


@pytest.mark.django_db
def test_the_roadmap_csv_api_refuses_a_file_over_its_cap(cast, client_for):
    from cutover.models import Roadmap

    roadmap = Roadmap.objects.create(name="r", start_date=START)
    with override_settings(UPLOAD_CAPS_MB=SMALL):
        answer = client_for(cast.pm).post(
            f"/roadmap/api/roadmaps/{roadmap.pk}/tasks.csv",
            {"file": SimpleUploadedFile("big.csv", BIG)},
        )
    assert answer.status_code == 400 and "too large" in str(answer.json())


@pytest.mark.django_db
def test_an_api_list_longer_than_the_limit_is_refused(cast, client_for, settings, tmp_path):
    from inventory.models import PacsSource
    from migration.models import Destination

    PacsSource.objects.create(name="p", ae_title="X", host="127.0.0.1", port=104)
    Destination.objects.create(name="d", kind="filesystem", path=str(tmp_path))
    many = [f"A{n}" for n in range(settings.UPLOAD_LIST_MAX_ITEMS + 1)]
    answer = client_for(cast.engineer).post(
        "/migration/api/waves/",
        {"name": "w", "source": "p", "destination": "d", "accession_numbers": many},
        content_type="application/json",
    )
    assert answer.status_code == 400 and "accession_numbers" in answer.json()


def test_a_training_link_with_a_password_is_refused():
    bound = MaterialForm({"title": "slides", "url": "https://user:pw@lms.example/x"})
    assert not bound.is_valid() and "user name or password" in str(bound.errors["url"])
