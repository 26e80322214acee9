"""Helpers of the egress tests: a loopback HTTP server that records what it receives
(the "exfiltration" target), and a record of every socket connection this process
attempts (so a test can show the metadata address was never contacted)."""

import contextlib
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_connections = []
_hooked = []


def _audit(event, args):
    if event == "socket.connect" and len(args) > 1:
        _connections.append(args[1])


class ConnectionRecord:
    """`with ConnectionRecord() as seen:` lists the addresses connected to meanwhile."""

    def __enter__(self):
        if not _hooked:
            sys.addaudithook(_audit)
            _hooked.append(True)
        self.start = len(_connections)
        self.addresses = []
        return self

    def __exit__(self, *exc):
        self.addresses = [a for a in _connections[self.start :] if isinstance(a, tuple)]

    def hosts(self):
        return {address[0] for address in self.addresses}


class RecordingServer:
    """A loopback HTTP server answering every request with `status` (and `headers`,
    `body`), keeping each request's method, path, headers and body."""

    def __init__(self, status=200, headers=None, body=b"{}"):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length) if length else b"",
                    }
                )
                self.send_response(server.status)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(server.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any  # noqa: N815

            def log_message(self, *args):
                pass

        self.status, self.headers, self.body = status, headers or {}, body
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def received(self, text):
        """Did any request carry `text` anywhere (path, headers, body)?"""
        needle = text.encode() if isinstance(text, str) else text
        for request in self.requests:
            blob = (request["path"] + repr(request["headers"])).encode() + request["body"]
            if needle in blob:
                return True
        return False
