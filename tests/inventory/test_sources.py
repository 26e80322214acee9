"""PACS sources: `pacs add|echo|list`, the Test connection button, and the clear messages
for a refusing, rejecting or silent PACS."""

import io
import socket

import pytest
from django.core.management import CommandError, call_command

from devstack.services.base import LOOPBACK, free_port
from inventory import actions
from inventory.models import PacsSource
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
    with pytest.raises(CommandError, match="move_destination: C-MOVE needs the AE title"):
        run(
            "pacs",
            "add",
            "bad",
            "--ae-title",
            "AE",
            "--host",
            "h",
            "--port",
            "1",
            "--retrieve",
            "move",
        )
    assert not PacsSource.objects.exists()


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
    with pytest.raises(CommandError, match=r"association rejected \(.*Called AE title not"):
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
         "calling_ae_title": "MIGRATOR", "max_associations": "2", "find_pause_ms": "0"},
    )  # fmt: skip
    assert bad.status_code == 200 and "C-MOVE needs the AE title" in bad.content.decode()
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
