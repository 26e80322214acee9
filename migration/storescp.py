"""The worker host's one long-lived Storage SCP for C-MOVE, and how a study run receives
through it.

`python manage.py storescp` listens on MIGRATION_STORAGE_SCP_PORT as AE
MIGRATION_STORAGE_SCP_AET and takes many associations at once (the PACS opens one per
C-MOVE). A study run that is about to send a C-MOVE first opens a *route*: it connects
to the SCP's local socket (MIGRATION_STORAGE_SCP_SOCKET) and registers the Study
Instance UID and the AE title it moves as (the move originator). Each instance the PACS
stores is routed by the StudyInstanceUID in its data set and the Move Originator AE
Title of its C-STORE request (by the study alone when one run asked for it), and
written to the route's socket as one frame (4-byte length, the DICOM file). The SCP
answers the PACS only once the frame is written, so a run whose pipeline is full stops
reading, the socket's buffer fills, and the PACS waits:
per study the queue is the two sockets' buffers plus the run's own bounded pipeline,
and memory stays flat.

An instance no route asked for (another study, a run that ended or died mid-C-MOVE) is
kept aside in MIGRATION_STORAGE_SCP_ASIDE with a JSON note of why, and accepted: it is
never dropped. A run that dies leaves its study to the next attempt (the ledger's lease),
which retrieves it again, so nothing a dead worker held is lost.
"""

import contextlib
import hashlib
import json
import logging
import os
import queue
import socket
import socketserver
import struct
import threading
import time
from io import BytesIO
from pathlib import Path

from django.conf import settings
from pydicom import dcmread

from dicomnet import leanscp, syntaxes, tls

log = logging.getLogger(__name__)
FRAME = struct.Struct(">I")
SUCCESS = 0x0000
SEND_BUFFER = 1 << 20
ISO = "%Y-%m-%dT%H:%M:%SZ"


class RouteError(RuntimeError):
    """The route could not be opened or broke: the message says why (no PHI)."""


def socket_path():
    return str(settings.MIGRATION_STORAGE_SCP_SOCKET)


# --- the SCP's side -------------------------------------------------------------------


class Route:
    """One study run's registration: frames go to its socket, one writer at a time."""

    def __init__(self, sock, study, originator, timeout):
        self.sock = sock
        self.study = study
        self.originator = originator
        self.lock = threading.Lock()
        self.open = True
        self.sent = 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.settimeout(timeout)

    @property
    def key(self):
        return (self.study, self.originator)

    def send(self, data):
        """Write one instance; False when the run no longer reads (ended, died, stuck)."""
        with self.lock:
            if not self.open:
                return False
            try:
                self.sock.sendall(FRAME.pack(len(data)))
                self.sock.sendall(data)
            except OSError:
                self.open = False
                return False
            self.sent += 1
            return True

    def close(self):
        with self.lock:
            self.open = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)


class Router:
    """Routes by (StudyInstanceUID, move originator); keeps aside what nobody asked for."""

    def __init__(self, aside_dir, on_kept=None):
        self.routes = {}
        self.lock = threading.Lock()
        self.aside_dir = Path(aside_dir)
        self.aside_dir.mkdir(parents=True, exist_ok=True)
        self.kept_aside = 0
        self.on_kept = on_kept

    def register(self, route):
        """None, or why the route cannot be registered."""
        with self.lock:
            current = self.routes.get(route.key)
            if current is not None and current.open:
                return f"study {route.study} is already being received for {route.originator}"
            self.routes[route.key] = route
        return None

    def unregister(self, route):
        with self.lock:
            if self.routes.get(route.key) is route:
                del self.routes[route.key]

    def find(self, study, originator):
        """The route for this instance: by study and originator, else by study alone when
        one run asked for it (a PACS may name no originator, or the wrong one: pynetdicom's
        C-MOVE SCP names itself)."""
        with self.lock:
            route = self.routes.get((study, originator))
            if route is not None:
                return route
            found = [route for (uid, _o), route in self.routes.items() if uid == study]
            return found[0] if len(found) == 1 else None

    def deliver(self, data, originator, calling_aet=""):
        """Hand one received DICOM file on, or keep it aside; the C-STORE status."""
        study = study_uid_of(data)
        route = self.find(study, originator) if study else None
        if route is not None and route.send(data):
            return SUCCESS
        if route is not None:
            reason = "the study run that asked for it stopped receiving (ended or died)"
        elif not study:
            reason = "it has no readable StudyInstanceUID"
        else:
            reason = f"no study run on this host asked for study {study}" + (
                f" as {originator}" if originator else " (the PACS named no move originator)"
            )
        self.keep_aside(data, study, originator, calling_aet, reason)
        return SUCCESS

    def keep_aside(self, data, study, originator, calling_aet, reason):
        digest = hashlib.sha256(data).hexdigest()
        target = self.aside_dir / f"{digest}.dcm"
        _write_atomically(target, data)
        sop, sop_class = _instance_uids(data)
        note = {"study_instance_uid": study, "sop_instance_uid": sop, "sop_class_uid": sop_class,
                "move_originator": originator, "calling_ae_title": calling_aet,
                "reason": reason, "size": len(data), "sha256": digest, "path": str(target),
                "received_at": time.strftime(ISO, time.gmtime())}  # fmt: skip
        _write_atomically(target.with_suffix(".json"), json.dumps(note).encode())
        with self.lock:
            self.kept_aside += 1
        log.warning("storescp: kept aside %s (study %s): %s", digest[:12], study, reason)
        if self.on_kept is not None:
            self.on_kept(note)


def _write_atomically(path, data):
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def study_uid_of(data):
    """The StudyInstanceUID of a received DICOM file ("" when it has none or cannot be
    read): found by walking the data set's first elements (`scan_study_uid`, about 30
    times cheaper than pydicom, which builds an element object for each), by pydicom
    where that walk cannot tell (deflated, an unusual encoding)."""
    found = scan_study_uid(data)
    if found is not None:
        return found
    try:
        ds = dcmread(BytesIO(data), stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
    except Exception:
        return ""
    return str(ds.get("StudyInstanceUID", "") or "").strip()


STUDY_UID_TAG = 0x0020000D
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}  # fmt: skip
VRS = LONG_VRS | {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO",
                  b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}  # fmt: skip
IMPLICIT_LITTLE, EXPLICIT_BIG = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"
SCANNABLE = {IMPLICIT_LITTLE, EXPLICIT_BIG, "1.2.840.10008.1.2.1"}


class _UnscannableError(Exception):
    pass


def scan_study_uid(data):
    """StudyInstanceUID from the bytes of a Part-10 file ("" when absent), or None when
    this walk cannot tell: not a Part-10 file, a deflated or other uncommon syntax (an
    encapsulated syntax encodes its header as Explicit VR Little Endian, and is walked),
    an undefined-length UN, or anything out of bounds."""
    if len(data) < 144 or data[128:132] != b"DICM" or data[132:138] != b"\x02\x00\x00\x00UL":
        return None
    start = 144 + int.from_bytes(data[140:144], "little")
    syntax = _meta_syntax(data, 144, start)
    if syntax is None or ("1.2.840.10008.1.2.4." not in syntax and syntax not in SCANNABLE):
        return None
    order = ">" if syntax == EXPLICIT_BIG else "<"
    walker = _Walker(data, order, implicit=syntax == IMPLICIT_LITTLE)
    try:
        return walker.find(start, STUDY_UID_TAG)
    except (_UnscannableError, struct.error, IndexError, ValueError):
        return None


def _meta_syntax(data, pos, end):
    while pos + 8 <= end:
        group, element = struct.unpack_from("<HH", data, pos)
        vr, length = data[pos + 4 : pos + 6], struct.unpack_from("<H", data, pos + 6)[0]
        header = 8
        if vr in LONG_VRS:
            length, header = struct.unpack_from("<I", data, pos + 8)[0], 12
        if (group, element) == (0x0002, 0x0010):
            return data[pos + header : pos + header + length].rstrip(b"\x00 ").decode("ascii")
        pos += header + length
    return None


class _Walker:
    """Walks encoded data elements, skipping values (and undefined-length sequences)."""

    def __init__(self, data, order, implicit):
        self.data, self.implicit = data, implicit
        self.tag = struct.Struct(order + "HH")
        self.short = struct.Struct(order + "H")
        self.long = struct.Struct(order + "I")

    def element(self, pos):
        """(tag, value position, value length) of the element at `pos`."""
        group, number = self.tag.unpack_from(self.data, pos)
        tag = (group << 16) | number
        if self.implicit or group == 0xFFFE:
            return tag, pos + 8, self.long.unpack_from(self.data, pos + 4)[0]
        vr = self.data[pos + 4 : pos + 6]
        if vr not in VRS:
            raise _UnscannableError("no VR where Explicit VR has one")
        if vr in LONG_VRS:
            if vr == b"UN" and self.long.unpack_from(self.data, pos + 8)[0] == UNDEFINED:
                raise _UnscannableError("an undefined-length UN")
            return tag, pos + 12, self.long.unpack_from(self.data, pos + 8)[0]
        return tag, pos + 8, self.short.unpack_from(self.data, pos + 6)[0]

    def find(self, pos, wanted):
        """The value of the top-level element `wanted` (a string), "" when absent."""
        while pos < len(self.data):
            tag, start, length = self.element(pos)
            if tag == wanted:
                if start + length > len(self.data):
                    raise _UnscannableError("truncated")
                return self.data[start : start + length].rstrip(b"\x00 ").decode("ascii")
            if tag >= 0xFFFE0000:
                raise _UnscannableError("a delimiter outside a sequence")
            if tag > wanted:
                return ""
            pos = self.skip_sequence(start) if length == UNDEFINED else start + length
            if pos > len(self.data):
                raise _UnscannableError("an element runs past the end")
        return ""

    def skip_sequence(self, pos):
        """The position after an undefined-length sequence whose items start at `pos`."""
        while True:
            tag, start, length = self.element(pos)
            if tag == SEQUENCE_END:
                return start
            if tag != ITEM:
                raise _UnscannableError("not an item")
            pos = self.skip_item(start) if length == UNDEFINED else start + length

    def skip_item(self, pos):
        while True:
            tag, start, length = self.element(pos)
            if tag == ITEM_END:
                return start
            pos = self.skip_sequence(start) if length == UNDEFINED else start + length


def _instance_uids(data):
    """(SOP Instance UID, SOP Class UID) of a received file, ("", "") when unreadable."""
    try:
        ds = dcmread(BytesIO(data), stop_before_pixels=True,
                     specific_tags=["SOPInstanceUID", "SOPClassUID"])  # fmt: skip
    except Exception:
        return "", ""
    return str(ds.get("SOPInstanceUID", "") or ""), str(ds.get("SOPClassUID", "") or "")


class Recorder(threading.Thread):
    """Hands the notes of instances kept aside to `record(host, notes)` (the command
    passes `actions.record_kept_aside`, which stores them and raises the alert), in
    batches, on a thread of its own: the PACS's association never waits for the
    database, and a database that is down loses no note (the JSON beside each file
    stays; the next batch retries)."""

    def __init__(self, record, host, batch_seconds=1.0):
        super().__init__(daemon=True, name="storescp-aside")
        self.record = record
        self.host = host
        self.batch_seconds = batch_seconds
        self.notes = queue.Queue()
        self.pending = []

    def __call__(self, note):
        self.notes.put(note)

    def run(self):
        from django.db import close_old_connections

        while True:
            self._collect()
            if not self.pending:
                continue
            close_old_connections()
            try:
                self.record(self.host, self.pending)
                self.pending = []
            except Exception:
                log.exception("storescp: recording %d kept-aside note(s) failed", len(self.pending))
                time.sleep(self.batch_seconds)

    def _collect(self):
        """Wait for a note, then gather what arrives within `batch_seconds`."""
        if not self.pending:
            self.pending.append(self.notes.get())
        deadline = time.monotonic() + self.batch_seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.pending.append(self.notes.get(timeout=left))
            except queue.Empty:
                break


def kept_aside(aside_dir=None):
    """The notes of every instance kept aside, oldest first."""
    folder = Path(aside_dir or settings.MIGRATION_STORAGE_SCP_ASIDE)
    notes = [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.exists() else []
    return sorted(notes, key=lambda note: note["received_at"])


class _Control(socketserver.BaseRequestHandler):
    """One route: the registration line, then wait for END (or EOF: the run is gone)."""

    def handle(self):
        reader = self.request.makefile("rb")
        try:
            request = json.loads(reader.readline(4096) or b"{}")
            study, originator = str(request["study"]), str(request.get("originator", ""))
        except (ValueError, KeyError):
            self.request.sendall(b"ERR malformed registration\n")
            return
        route = Route(self.request, study, originator, self.server.send_timeout)
        with route.lock:
            error = self.server.router.register(route)
            self.request.sendall(b"OK\n" if error is None else f"ERR {error}\n".encode())
        if error is not None:
            return
        try:
            self.request.settimeout(None)
            reader.readline(64)
        except OSError:
            pass
        finally:
            self.server.router.unregister(route)
            route.close()


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path, router, send_timeout):
        Path(path).unlink(missing_ok=True)
        super().__init__(path, _Control)
        os.chmod(path, 0o600)
        self.router = router
        self.send_timeout = send_timeout


def serve(aet=None, port=None, bind=None, path=None, aside=None, ready=None, stop=None,
          record=None):  # fmt: skip
    """Run the Storage SCP and its control socket until `stop` (an Event) is set; what
    is kept aside goes to `record(host, notes)` too, when given."""
    aet = aet or settings.MIGRATION_STORAGE_SCP_AET
    port = int(port or settings.MIGRATION_STORAGE_SCP_PORT)
    bind = bind or settings.MIGRATION_STORAGE_SCP_BIND
    timeout = float(settings.MIGRATION_DIMSE_TIMEOUT)
    recorder = Recorder(record, socket.gethostname()) if record is not None else None
    if recorder is not None:
        recorder.start()
    router = Router(aside or settings.MIGRATION_STORAGE_SCP_ASIDE, on_kept=recorder)
    control = ControlServer(path or socket_path(), router, timeout * 2)
    threading.Thread(target=control.serve_forever, daemon=True, name="storescp-control").start()

    def on_store(data, fields, calling_aet):
        return router.deliver(data, leanscp.move_originator(fields), calling_aet)

    server = leanscp.LeanScp(
        aet, (bind, port), on_store, syntaxes.UIDS, timeout=timeout,
        limit=int(settings.MIGRATION_STORAGE_SCP_ASSOCIATIONS), ssl_context=server_tls(),
    )  # fmt: skip
    threading.Thread(target=server.serve_forever, daemon=True, name="storescp").start()
    if ready is not None:
        ready(aet, bind, port, control.server_address)
    try:
        (stop or threading.Event()).wait()
    finally:
        server.shutdown()
        control.shutdown()
        control.server_close()
        Path(control.server_address).unlink(missing_ok=True)
    return router


def server_tls():
    """The SCP's SSLContext when MIGRATION_STORAGE_SCP_TLS_CERT is set (DICOM TLS)."""
    if not settings.MIGRATION_STORAGE_SCP_TLS_CERT:
        return None
    files = tls.TlsFiles(
        settings.MIGRATION_STORAGE_SCP_TLS_CA,
        settings.MIGRATION_STORAGE_SCP_TLS_CERT,
        settings.MIGRATION_STORAGE_SCP_TLS_KEY,
    )
    return tls.server_context(files)


# --- the study run's side -------------------------------------------------------------


class Receiving:
    """A study run's route: registered on enter; each frame goes to `receive(data)` in a
    reader thread (which blocks while the run's pipeline is full); `finish()` asks the
    SCP to close the route and drains what is still on the way."""

    def __init__(self, study, originator, receive, on_stop=None, timeout=60.0, path=None):
        self.study, self.originator = study, originator
        self.receive = receive
        self.on_stop = on_stop
        self.timeout = timeout
        self.path = path or socket_path()
        self.sock = None
        self.received = 0
        self.broken = None
        self.reader = threading.Thread(target=self._read, daemon=True, name="scp-route")

    def __enter__(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect(self.path)
            line = json.dumps({"study": self.study, "originator": self.originator})
            sock.sendall(line.encode() + b"\n")
            answer = _read_line(sock)
        except OSError as exc:
            sock.close()
            raise RouteError(
                f"no Storage SCP runs on this host (socket {self.path}: "
                f"{type(exc).__name__}); start `python manage.py storescp`"
            ) from None
        if answer != b"OK":
            sock.close()
            raise RouteError(f"the Storage SCP refused the route: {answer[4:].decode()}")
        sock.settimeout(None)
        self.sock = sock
        self.reader.start()
        return self

    def _read(self):
        try:
            while True:
                header = _read_exactly(self.sock, FRAME.size)
                if header is None:
                    return
                data = _read_exactly(self.sock, FRAME.unpack(header)[0])
                if data is None:
                    raise RouteError("the Storage SCP closed the route mid-instance")
                self.received += 1
                if not self.receive(data) and self.on_stop is not None:
                    self.on_stop()
        except (OSError, RouteError) as exc:
            self.broken = f"the route from the Storage SCP broke ({exc})"

    def finish(self):
        """Close the route once the PACS has ended the C-MOVE and read what is left."""
        with contextlib.suppress(OSError):
            self.sock.sendall(b"END\n")
        self.reader.join(self.timeout)
        if self.reader.is_alive():
            self.broken = f"the Storage SCP did not close the route in {self.timeout:.0f}s"

    def __exit__(self, *exc):
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
        if self.reader.is_alive():
            self.reader.join(5)


def _read_line(sock, limit=4096):
    line = bytearray()
    while not line.endswith(b"\n") and len(line) < limit:
        chunk = sock.recv(1)
        if not chunk:
            break
        line += chunk
    return bytes(line).strip()


def _read_exactly(sock, size):
    """`size` bytes, or None at a clean end of stream before the first byte: one
    MSG_WAITALL receive into the bytes object handed on (no second copy), finished by
    plain receives when a signal or the peer cut it short."""
    data = sock.recv(size, socket.MSG_WAITALL)
    if len(data) == size:
        return data
    if not data:
        return None
    parts, got = [data], len(data)
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise RouteError("the stream ended mid-frame")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
