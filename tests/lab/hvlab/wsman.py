"""WS-Management (WinRM) endpoint over HTTP with Basic auth, on 127.0.0.1.

One lab process serves several endpoints (the Hyper-V host now; Windows guests later), each on
its own port with its own backend, faults, counters and shells. Only the actions pywinrm and
ansible's winrm connection use are answered; everything else is a logged SOAP fault.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hmac
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from .counters import Counters
from .faults import FaultSet
from .protocol import CommandResult
from .shells import ShellTable
from .winrs import DropConnection, WsmanService

log = logging.getLogger("hvlab.wsman")
CONTENT_TYPE = "application/soap+xml;charset=UTF-8"


class Backend(Protocol):
    """Runs one command line with its stdin (None when no Send came) and returns its output."""

    def run(self, command: str, arguments: list[str], stdin: bytes | None) -> CommandResult: ...


@dataclass
class Endpoint:
    name: str  # inventory name of the machine this endpoint stands for
    kind: str  # "hyperv_host" (later: "windows_guest")
    backend: Backend
    faults: FaultSet
    counters: Counters
    username: str
    password: str
    shells: ShellTable = field(default_factory=ShellTable)
    recent: collections.deque[dict[str, Any]] = field(default_factory=lambda: collections.deque(maxlen=50))
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wsman"

    def snapshot(self) -> dict[str, Any]:
        recent = list(self.recent)  # one atomic copy: other threads append while we iterate
        return {
            "kind": self.kind,
            "port": self.port,
            "url": self.url,
            "counters": self.counters.snapshot(),
            "open_shells": self.shells.count(),
            "faults": self.faults.snapshot(),
            "recent_commands": [dict(r) for r in recent],
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 20+ clients connect at once in the concurrency test
    allow_reuse_address = True


class WsmanHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests/pywinrm expect
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle plus the client's delayed
        # ACK adds ~40 ms to every SOAP round trip.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def endpoint(self) -> Endpoint:
        return self.server.endpoint  # type: ignore[attr-defined]

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _sep, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        ep = self.endpoint
        # Windows user names compare case-insensitively; passwords do not.
        return hmac.compare_digest(user.lower().encode(), ep.username.lower().encode()) and hmac.compare_digest(
            password.encode(), ep.password.encode()
        )

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", CONTENT_TYPE)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.endpoint.counters.add("bytes_sent", len(body))

    def do_POST(self) -> None:
        ep = self.endpoint
        ep.counters.add("requests")
        if "Content-Length" not in self.headers:
            self.close_connection = True
            self._reply(411, b"")
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ep.counters.add("bytes_received", len(body))
        if self.path.split("?", 1)[0].rstrip("/").lower() != "/wsman":
            self._reply(404, b"")
            return
        if not self._authorised():
            log.warning("%s: 401 for %s", ep.name, self.client_address[0])
            self._reply(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        try:
            status, reply = self.server.service.handle(body, self.client_address[0])  # type: ignore[attr-defined]
        except DropConnection:
            self.close_connection = True  # no reply at all: the client sees the connection vanish
            return
        self._reply(status, reply)

    def do_GET(self) -> None:
        self._reply(405, b"", {"Allow": "POST"})


def start(endpoint: Endpoint) -> None:
    """Bind a random free port on 127.0.0.1 and serve in a background thread."""
    server = _Server(("127.0.0.1", 0), WsmanHandler)
    server.endpoint = endpoint  # type: ignore[attr-defined]
    server.service = WsmanService(endpoint)  # type: ignore[attr-defined]
    endpoint.server = server
    endpoint.thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"wsman-{endpoint.name}", daemon=True
    )
    endpoint.thread.start()
    log.info("%s: %s endpoint on %s", endpoint.name, endpoint.kind, endpoint.url)


def stop(endpoint: Endpoint) -> None:
    if endpoint.server is not None:
        endpoint.server.shutdown()
        endpoint.server.server_close()
