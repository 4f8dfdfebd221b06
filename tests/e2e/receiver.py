"""A webhook receiver on loopback for the tests: records what it is sent, fails on request."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Receiver:
    """A webhook receiver on loopback: records every request (path, headers, raw body); paths in `failing` get 500."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        """Serve on a free loopback port; with `tls` (certificate, key), over HTTPS for `localhost`."""
        self.tls = tls
        self.received: list[dict[str, Any]] = []
        self.failing: set[str] = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.received.append({"path": self.path, "headers": {k.lower(): v for k, v in
                                                                             self.headers.items()}, "body": body})
                    status = 500 if self.path in receiver.failing else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        """The receiver's URL for `path`."""
        if self.tls is not None:
            return f"https://localhost:{self.server.server_address[1]}{path}"
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def at(self, path: str) -> list[dict[str, Any]]:
        """Requests received at `path`, in order."""
        with self.lock:
            return [r for r in self.received if r["path"] == path]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
