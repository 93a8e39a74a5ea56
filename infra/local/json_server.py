"""A small threaded HTTP server answering JSON, for the embedded stack's shop API emulators."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, str, Mapping[str, str], bytes], tuple[int, Any]]  # (method, path, headers, body)


class JsonServer:
    """Serves ``answer`` on 127.0.0.1 (``port`` 0: any free port) until stopped."""

    def __init__(self, answer: Answer, name: str) -> None:
        self._answer, self._name = answer, name
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, f"{self._name} is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, port: int = 0) -> None:
        answer = self._answer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, reply = answer(self.command, self.path, self.headers, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name=self._name, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def shop_and_path(target: str, host: str) -> tuple[str, str]:
    """The shop a request is for (``/shops/<name>/...``, else the Host header) and the path within it."""
    if target.startswith("/shops/"):
        name, _, rest = target.removeprefix("/shops/").partition("/")
        return name, "/" + rest
    return host.split(":")[0], target
