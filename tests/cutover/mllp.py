"""A small MLLP listener for the HL7 probe tests: answers each connection in turn with the
next behaviour of a script ("AA", "AE", "AR", "silence", "garbage")."""

import contextlib
import socket
import threading

import hl7

from devstack.services.base import LOOPBACK

SB, EB, CR = b"\x0b", b"\x1c", b"\r"


class MllpListener:
    def __init__(self, script):
        self.script = list(script)
        self.received = []
        self.sock = socket.create_server((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]
        self.host = LOOPBACK
        self._held = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.sock.close()
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()
        self.thread.join(5)

    def _serve(self):
        self.sock.settimeout(0.1)  # so that the loop notices the stop flag
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            behaviour = self.script.pop(0) if self.script else "silence"
            self._answer(conn, behaviour)

    def _read_block(self, conn):
        data = b""
        while not data.endswith(EB + CR):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.strip(SB + EB + CR).decode()

    def _answer(self, conn, behaviour):
        message = hl7.parse(self._read_block(conn))
        self.received.append(message)
        if behaviour == "silence":
            self._held.append(conn)  # keep the connection open, say nothing
            return
        if behaviour == "garbage":
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        else:
            ack = message.create_ack(behaviour)
            if behaviour != "AA":
                ack.segment("MSA").assign_field("Unknown message type", 3)
            conn.sendall(SB + str(ack).encode() + EB + CR)
        conn.close()
