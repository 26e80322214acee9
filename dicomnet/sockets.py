"""The TCP options of every DICOM association (and the S3 uploads), set in one place.

A DIMSE request goes out as two PDUs (command, then identifier or data set); with
Nagle's algorithm the second waits for the peer to acknowledge the first, which it
delays by up to 40 ms: a study-level C-FIND on Orthanc took 46 ms instead of 4. So every
association socket sends at once (TCP_NODELAY); pynetdicom's, which read in small
pieces, also acknowledge at once (TCP_QUICKACK, which Linux resets after each read).
"""

import contextlib
import socket


def send_at_once(sock):
    """TCP_NODELAY on `sock` (ours or an accepted one)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def acknowledge_at_once(sock):
    """TCP_QUICKACK, where the platform has it (Linux); re-armed before each read."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def connect(address, timeout):
    """A TCP connection to `address` that sends at once; OSError when it cannot open."""
    sock = socket.create_connection(address, timeout=timeout)
    try:
        return send_at_once(sock)
    except OSError:
        sock.close()
        raise
