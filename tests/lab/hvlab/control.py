"""Control endpoint of a running lab (127.0.0.1, own port, bearer token from DIR/lab.json):
GET /lab/state answers the state JSON, POST /lab/shutdown stops the lab process."""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("hvlab.control")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see wsman.py

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        token: str = self.server.token  # type: ignore[attr-defined]
        given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())

    def _route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if not self._authorised():
            self._reply(401, {"error": "missing or wrong bearer token (see DIR/lab.json)"})
            return
        path = self.path.split("?", 1)[0]
        if method == "GET" and path == "/lab/state":
            self._reply(200, self.server.get_state())  # type: ignore[attr-defined]
        elif method == "POST" and path == "/lab/shutdown":
            self._reply(202, {"stopping": True})
            self.server.request_stop()  # type: ignore[attr-defined]
        else:
            self._reply(404, {"error": f"no {method} {path}; try GET /lab/state, POST /lab/shutdown"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")


def start(token: str, get_state: Callable[[], dict[str, Any]], request_stop: Callable[[], None]) -> ThreadingHTTPServer:
    server = _Server(("127.0.0.1", 0), ControlHandler)
    server.token = token  # type: ignore[attr-defined]
    server.get_state = get_state  # type: ignore[attr-defined]
    server.request_stop = request_stop  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="control", daemon=True).start()
    log.info("control endpoint on http://127.0.0.1:%d/lab/state", server.server_address[1])
    return server
