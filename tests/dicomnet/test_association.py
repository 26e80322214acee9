"""One DICOM network layer: pynetdicom's associations and the lean layer's are set up by
`dicomnet.association` from the same Peer, with the same socket options, and fail with
the same error classes (real PACS, real sockets)."""

import socket
import subprocess
import sys

import pytest
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from devstack.services.base import LOOPBACK, free_port
from dicomnet import lean, scu
from dicomnet.association import Peer, associate, association, lean_association
from dicomnet.errors import CALLED_AE_UNKNOWN, ConnectError, DicomNetError, RejectedError
from tests.fixtures_services import TEST_AET


def open_pynetdicom(peer):
    assoc = associate(peer, [(Verification, None)])
    assoc.release()


def open_lean(peer):
    with lean_association(peer, model=lean.FIND_MODEL):
        pass


LAYERS = [open_pynetdicom, open_lean]


@pytest.mark.parametrize("open_association", LAYERS)
def test_both_layers_raise_the_same_rejection_for_an_unknown_called_ae(
    dcmqrscp_pacs, open_association
):
    peer = Peer(dcmqrscp_pacs.host, dcmqrscp_pacs.port, "NOTTHISPACS", TEST_AET)

    with pytest.raises(RejectedError) as raised:
        open_association(peer)

    assert raised.value.permanent
    assert (raised.value.source, raised.value.reason) == CALLED_AE_UNKNOWN
    assert "called AE title not recognized" in str(raised.value)


@pytest.mark.parametrize("open_association", LAYERS)
def test_both_layers_raise_a_connect_error_where_nothing_listens(open_association):
    peer = Peer(LOOPBACK, free_port(), "NOBODY", TEST_AET, timeout=5)

    with pytest.raises(ConnectError) as raised:
        open_association(peer)

    assert isinstance(raised.value, DicomNetError)
    assert isinstance(raised.value.error, ConnectionRefusedError)


def test_both_layers_send_at_once(orthanc_pacs):
    peer = Peer(orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet, TEST_AET)
    find = [(StudyRootQueryRetrieveInformationModelFind, None)]

    with association(peer, find) as assoc:
        ours = assoc.dul.socket.socket
        assert ours.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    with lean_association(peer, model=lean.FIND_MODEL) as assoc:
        assert assoc.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_echo_gives_a_verdict_in_plain_words(orthanc_pacs):
    answered = scu.echo(Peer(orthanc_pacs.host, orthanc_pacs.port, orthanc_pacs.aet, TEST_AET))
    refused = scu.echo(Peer(LOOPBACK, free_port(), "NOBODY", TEST_AET))

    assert answered.ok and answered.ms is not None and "answered C-ECHO" in answered.message
    assert not refused.ok and "connection refused" in refused.message


def test_importing_dicomnet_sets_pynetdicoms_configuration_once():
    script = (
        "from pynetdicom import _config as c; before = c.LOG_HANDLER_LEVEL; import dicomnet.lean; "
        "print(before, c.LOG_HANDLER_LEVEL, c.LOG_REQUEST_IDENTIFIERS, c.LOG_RESPONSE_IDENTIFIERS)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["standard", "none", "False", "False"]
