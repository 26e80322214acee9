"""PACS sources: `pacs add|echo|list`, the Test connection button, and the clear messages
for a refusing, rejecting or silent PACS."""

import io
import socket

import pytest
from django.core.management import CommandError, call_command

from core import events
from core.events import subscribe_local
from devstack.services.base import LOOPBACK, free_port
from inventory import actions
from inventory.models import CrawlRun, PacsSource
from migration.dicom import Pacs
from tests.fixtures_services import TEST_AET


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_pacs_add_registers_a_source_and_running_it_again_updates_it():
    out = run(
        "pacs", "add", "main", "--ae-title", "MAINPACS", "--host", "10.0.0.5", "--port", "104"
    )
    assert "added main: MAINPACS@10.0.0.5:104" in out

    run(
        "pacs", "add", "main", "--ae-title", "MAINPACS", "--host", "10.0.0.6", "--port", "11112",
        "--calling-ae", "CCMIG", "--retrieve", "move", "--move-destination", "CCSTORE",
        "--max-associations", "4",
    )  # fmt: skip

    source = PacsSource.objects.get()
    assert (source.host, source.port, source.calling_ae_title) == ("10.0.0.6", 11112, "CCMIG")
    assert (source.retrieve_method, source.move_destination, source.max_associations) == (
        "move",
        "CCSTORE",
        4,
    )
    assert "main\tMAINPACS@10.0.0.6:11112" in run("pacs", "list")


@pytest.mark.django_db
def test_pacs_add_with_a_bad_ae_title_or_port_says_which_field_is_wrong():
    with pytest.raises(CommandError, match="ae_title: An AE title is 1 to 16"):
        run("pacs", "add", "bad", "--ae-title", "A" * 17, "--host", "h", "--port", "104")
    with pytest.raises(CommandError, match="port"):
        run("pacs", "add", "bad", "--ae-title", "AE", "--host", "h", "--port", "70000")
    assert not PacsSource.objects.exists()


@pytest.mark.django_db
def test_a_c_move_source_without_a_move_destination_moves_to_each_hosts_own_scp(settings):
    run("pacs", "add", "moved", "--ae-title", "AE", "--host", "h", "--port", "1",
        "--retrieve", "move")  # fmt: skip
    source = PacsSource.objects.get(name="moved")
    assert (source.retrieve_method, source.move_destination) == ("move", "")
    settings.MIGRATION_STORAGE_SCP_AET = "CCHOST7"
    assert Pacs.from_source(source).move_destination == "CCHOST7"


@pytest.mark.django_db
def test_register_source_is_an_idempotent_upsert():
    first, created = actions.register_source("demo", "LEGACYPACS", LOOPBACK, 4242)
    again, created_again = actions.register_source("demo", "LEGACYPACS", LOOPBACK, 4242)
    assert (created, created_again, first.pk) == (True, False, again.pk)
    assert PacsSource.objects.count() == 1


@pytest.mark.django_db
def test_pacs_echo_reports_the_round_trip_of_a_live_pacs(orthanc_pacs):
    actions.register_source(
        "orthanc", orthanc_pacs.aet, LOOPBACK, orthanc_pacs.port, calling_ae_title=TEST_AET
    )
    out = run("pacs", "echo", "orthanc")
    assert "orthanc: C-ECHO ok in" in out
    source = PacsSource.objects.get()
    assert source.last_echo_ok is True and source.last_echo_ms > 0


@pytest.mark.django_db
def test_pacs_echo_explains_a_refused_connection_a_rejection_and_a_silent_peer(
    dcmqrscp_pacs, settings
):
    settings.INVENTORY_ECHO_TIMEOUT = 1
    actions.register_source("nothing", "PACS", LOOPBACK, free_port())
    actions.register_source("wrong-ae", "NOTTHISAE", LOOPBACK, dcmqrscp_pacs.port)
    silent = socket.socket()
    silent.bind((LOOPBACK, 0))
    silent.listen(1)
    actions.register_source("silent", "PACS", LOOPBACK, silent.getsockname()[1])

    with pytest.raises(CommandError, match="connection refused"):
        run("pacs", "echo", "nothing")
    with pytest.raises(CommandError, match=r"association rejected \(.*called AE title not"):
        run("pacs", "echo", "wrong-ae")
    with pytest.raises(CommandError, match="within 1 s \\(timeout\\)"):
        run("pacs", "echo", "silent")
    with pytest.raises(CommandError, match="no PACS source named 'missing'"):
        run("pacs", "echo", "missing")
    silent.close()
    assert PacsSource.objects.get(name="nothing").last_echo_ok is False


@pytest.mark.django_db
def test_the_test_connection_button_answers_with_a_fragment_for_engineers_only(
    orthanc_pacs, cast, client_for
):
    source, _ = actions.register_source(
        "orthanc", orthanc_pacs.aet, LOOPBACK, orthanc_pacs.port, calling_ae_title=TEST_AET
    )
    url = f"/inventory/sources/{source.pk}/echo/"
    assert client_for(cast.pm).post(url).status_code == 403

    response = client_for(cast.engineer).post(url, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "C-ECHO answered in" in response.content.decode()
    listing = client_for(cast.pm).get("/inventory/sources/").content.decode()
    assert "Test connection" not in listing and "orthanc" in listing


@pytest.mark.django_db
def test_sources_are_added_through_the_form_with_field_errors(cast, client_for):
    client = client_for(cast.engineer)
    bad = client.post(
        "/inventory/sources/",
        {"name": "x", "ae_title": "AE", "host": "h", "port": "104", "retrieve_method": "move",
         "calling_ae_title": "MIGRATOR", "max_associations": "0", "find_pause_ms": "0"},
    )  # fmt: skip
    assert bad.status_code == 200 and "greater than or equal to 1" in bad.content.decode()
    good = client.post(
        "/inventory/sources/",
        {"name": "x", "ae_title": "AE", "host": "h", "port": "104", "retrieve_method": "get",
         "calling_ae_title": "MIGRATOR", "max_associations": "2", "find_pause_ms": "0"},
    )  # fmt: skip
    assert good.status_code == 302
    assert PacsSource.objects.get().name == "x"


@pytest.mark.django_db
def test_pacs_add_names_the_tls_files_and_a_certificate_without_its_key_is_refused():
    run(
        "pacs", "add", "secure", "--ae-title", "TLSPACS", "--host", "h", "--port", "2762",
        "--tls", "--tls-ca", "/etc/pki/ca.pem", "--tls-cert", "/etc/pki/us.pem",
        "--tls-key", "/etc/pki/us.key",
    )  # fmt: skip

    source = PacsSource.objects.get(name="secure")
    assert source.tls and (source.tls_ca_file, source.tls_cert_file, source.tls_key_file) == (
        "/etc/pki/ca.pem", "/etc/pki/us.pem", "/etc/pki/us.key",
    )  # fmt: skip
    with pytest.raises(CommandError, match="tls_key_file: A TLS client certificate needs its key"):
        run("pacs", "add", "half", "--ae-title", "AE", "--host", "h", "--port", "2762",
            "--tls", "--tls-cert", "/etc/pki/us.pem")  # fmt: skip


@pytest.fixture
def activity():
    """The texts of the inventory activity events published once their commit is done."""
    texts = []

    def listen(topic, message):
        if topic == "inventory":
            texts.append(message["data"]["text"])

    subscribe_local(listen)
    yield texts
    events._listeners.remove(listen)


SETTINGS = {"name": "main", "ae_title": "MAIN", "host": "h", "port": "104",
            "retrieve_method": "get", "calling_ae_title": "MIGRATOR",
            "max_associations": "2", "find_pause_ms": "0"}  # fmt: skip


@pytest.mark.django_db
def test_the_page_and_the_api_edit_a_source_through_the_same_action(
    cast, client_for, activity, django_capture_on_commit_callbacks
):
    source, _ = actions.register_source("main", "MAIN", "h", 104)
    client = client_for(cast.engineer)
    url = f"/inventory/api/sources/{source.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(f"/inventory/sources/{source.pk}/", {**SETTINGS, "port": "11112"})
        api = client.patch(url, {"host": "pacs2"}, content_type="application/json")
        bad = client.patch(url, {"port": 0}, content_type="application/json")
    assert (page.status_code, api.status_code, bad.status_code) == (302, 200, 400)
    source.refresh_from_db()
    assert (source.host, source.port) == ("pacs2", 11112)
    updates = [text for text in activity if "updated" in text]
    assert updates == [
        "PACS source main updated (MAIN@h:11112)",
        "PACS source main updated (MAIN@pacs2:11112)",
    ]


@pytest.mark.django_db
def test_a_source_with_an_inventory_is_kept_by_the_page_and_the_api_alike(
    cast, client_for, activity, django_capture_on_commit_callbacks
):
    kept, _ = actions.register_source("kept", "KEPT", "h", 104)
    CrawlRun.objects.create(source=kept)
    client = client_for(cast.engineer)
    api = client.delete(f"/inventory/api/sources/{kept.pk}/")
    page = client.post(f"/inventory/sources/{kept.pk}/delete/", follow=True)
    assert api.status_code == 409 and "has an inventory" in api.json()["detail"]
    assert "not deleted: this source has an inventory" in page.content.decode()
    with pytest.raises(actions.SourceInUseError):
        actions.delete_source(kept)

    for delete in (
        lambda pk: client.delete(f"/inventory/api/sources/{pk}/"),
        lambda pk: client.post(f"/inventory/sources/{pk}/delete/"),
    ):
        empty, _ = actions.register_source("empty", "EMPTY", "h", 104)
        with django_capture_on_commit_callbacks(execute=True):
            assert delete(empty.pk).status_code in (204, 302)
    assert list(PacsSource.objects.values_list("name", flat=True)) == ["kept"]
    assert activity.count("PACS source empty deleted") == 2
    assert client_for(cast.pm).post(f"/inventory/sources/{kept.pk}/delete/").status_code == 403
