"""WS-Management (WinRM) endpoint over HTTP with Basic auth, on 127.0.0.1.

One lab process serves several endpoints (the Hyper-V host and one per Windows guest), each on
its own port with its own backend, faults, counters and shells. One thread accepts connections for
all of them (a lab with 1000 Windows VMs has 1000 endpoints); each connection gets its own thread.
Only the actions pywinrm and ansible's winrm connection use are answered; everything else is a
logged SOAP fault.

An endpoint whose machine is unreachable (a Windows guest whose VM is not Running) accepts each TCP
connection and closes it at once, without reading or answering: pywinrm raises a requests
ConnectionError ("Connection aborted"), which ansible's winrm connection reports as UNREACHABLE.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hmac
import logging
import selectors
import socket
import socketserver
import threading
from collections.abc import Callable
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
    kind: str  # "hyperv_host" | "windows_guest"
    backend: Backend
    faults: FaultSet
    counters: Counters
    username: str
    password: str
    shells: ShellTable = field(default_factory=ShellTable)
    recent: collections.deque[dict[str, Any]] = field(default_factory=lambda: collections.deque(maxlen=50))
    reachable: Callable[[], bool] = lambda: True  # False: connections are closed unanswered
    vm_name: str | None = None  # windows_guest: the VM this endpoint is the guest of
    refused_connections: int = 0
    _refused_lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    listener: Listener | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wsman"

    def refuse(self, client: str) -> None:
        with self._refused_lock:
            self.refused_connections += 1
        log.warning("%s: connection from %s closed unanswered (VM %r is not Running)", self.name, client, self.vm_name)

    def snapshot(self) -> dict[str, Any]:
        recent = list(self.recent)  # one atomic copy: other threads append while we iterate
        return {
            "kind": self.kind,
            "vm": self.vm_name,
            "reachable": self.reachable(),
            "refused_connections": self.refused_connections,
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

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the address (socket.getfqdn) for every endpoint.
        socketserver.TCPServer.server_bind(self)
        host, self.server_port = self.server_address[:2]
        self.server_name = str(host)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        endpoint: Endpoint = self.endpoint  # type: ignore[attr-defined]
        if endpoint.reachable():
            return True
        endpoint.refuse(client_address[0])
        return False  # socketserver closes the connection without reading from it


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
        if not ep.reachable():  # a kept-alive connection from before the VM stopped
            ep.refuse(self.client_address[0])
            self.close_connection = True
            return
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


class Listener:
    """Accepts connections for many endpoints in one thread (selectors), and hands each one to
    its endpoint's ThreadingHTTPServer, which serves it in a thread of its own."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.endpoints = list(endpoints)
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self.thread: threading.Thread | None = None
        for endpoint in self.endpoints:
            server = _Server(("127.0.0.1", 0), WsmanHandler)  # bind a random free port now
            server.endpoint = endpoint  # type: ignore[attr-defined]
            server.service = WsmanService(endpoint)  # type: ignore[attr-defined]
            endpoint.server = server
            endpoint.listener = self

    def start(self) -> None:
        self.thread = threading.Thread(target=self._serve, name="wsman-accept", daemon=True)
        self.thread.start()
        for endpoint in self.endpoints:
            log.info("%s: %s endpoint on %s", endpoint.name, endpoint.kind, endpoint.url)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            for endpoint in self.endpoints:
                assert endpoint.server is not None
                selector.register(endpoint.server.socket, selectors.EVENT_READ, endpoint.server)
            while not self._stopping.is_set():
                for key, _events in selector.select(timeout=1.0):
                    if key.data is not None and not self._stopping.is_set():
                        self._accept(key.data)

    @staticmethod
    def _accept(server: _Server) -> None:
        # What socketserver's serve_forever does for one ready listening socket.
        try:
            request, client_address = server.get_request()
        except OSError:
            return
        if server.verify_request(request, client_address):
            try:
                server.process_request(request, client_address)  # ThreadingMixIn: a new thread
            except Exception:
                server.handle_error(request, client_address)
                server.shutdown_request(request)
        else:
            server.shutdown_request(request)

    def stop(self) -> None:
        self._stopping.set()
        self._wake_w.send(b"x")
        if self.thread is not None:
            self.thread.join(5.0)
        for endpoint in self.endpoints:
            if endpoint.server is not None:
                endpoint.server.server_close()
        self._wake_r.close()
        self._wake_w.close()


def start(endpoint: Endpoint) -> Listener:
    """Bind a random free port on 127.0.0.1 for one endpoint and serve it in the background."""
    listener = Listener([endpoint])
    listener.start()
    return listener


def stop(endpoint: Endpoint) -> None:
    if endpoint.listener is not None:
        endpoint.listener.stop()
