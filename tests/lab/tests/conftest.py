from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LAB_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(LAB_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import labclient  # noqa: E402
from hvlab import labfile  # noqa: E402
from hvlab.server import Lab  # noqa: E402
from winrm.protocol import Protocol  # noqa: E402


@dataclass
class RunningLab:
    """A lab served from this test process (same server code as `lab up`, without the fork)."""

    lab: Lab
    username: str
    password: str
    _client: Protocol | None = None

    @property
    def url(self) -> str:
        return self.lab.endpoints[self.lab.host.name].url

    def protocol(self, password: str | None = None, timeout: int = 20) -> Protocol:
        """A new client (own HTTP session) each time: building one costs ~0.1 s, so reuse it."""
        return Protocol(
            self.url,
            transport="basic",
            username=self.username,
            password=password if password is not None else self.password,
            operation_timeout_sec=timeout,
            read_timeout_sec=timeout + 10,
            ca_trust_path=None,
            proxy=None,
        )  # loopback: no CA bundle, no proxy from env

    def state(self) -> dict[str, Any]:
        return self.lab.state()

    def counters(self) -> dict[str, int]:
        return self.state()["counters"]

    def client(self) -> Protocol:
        """The lab's shared client for sequential calls."""
        if self._client is None:
            self._client = self.protocol()
        return self._client

    def call(self, operation: str, params: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
        return labclient.call(self.client(), labclient.request(operation, params, check_mode))

    def info(self, vm_names: list[str] | None = None) -> dict[str, Any]:
        response = self.call("vm_integration_service_info", {"vm_names": vm_names})
        assert response["ok"], response
        return response["result"]

    def set(self, vm_names: list[str], changes: list[dict[str, Any]], check_mode: bool = False) -> dict[str, Any]:
        return self.call("vm_integration_service_set", {"vm_names": vm_names, "changes": changes}, check_mode)

    def guest(self, name: str) -> GuestClient:
        """Client of the Windows guest endpoint with this inventory name."""
        return GuestClient(self, name)


@dataclass
class GuestClient:
    """The guest library's operations (protocol doc section 7) on one Windows guest endpoint."""

    running: RunningLab
    name: str
    _client: Protocol | None = None

    @property
    def url(self) -> str:
        return self.running.lab.endpoints[self.name].url

    def protocol(self, timeout: int = 20) -> Protocol:
        return Protocol(
            self.url,
            transport="basic",
            username=self.running.username,
            password=self.running.password,
            operation_timeout_sec=timeout,
            read_timeout_sec=timeout + 10,
            ca_trust_path=None,
            proxy=None,
        )

    def client(self) -> Protocol:
        if self._client is None:
            self._client = self.protocol()
        return self._client

    def call(self, operation: str, params: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
        return labclient.call(self.client(), labclient.request(operation, params, check_mode))

    def info(self, names: list[str]) -> dict[str, Any]:
        response = self.call("guest_service_info", {"names": names})
        assert response["ok"], response
        return response["result"]

    def set(self, services: list[dict[str, Any]], check_mode: bool = False) -> dict[str, Any]:
        items = [{"state": None, "start_mode": None, **item} for item in services]
        response = self.call("guest_service_set", {"services": items}, check_mode)
        assert response["ok"], response
        return response["result"]

    def counters(self) -> dict[str, int]:
        return self.running.state()["endpoints"][self.name]["counters"]


@pytest.fixture
def make_lab() -> Iterator[Any]:
    started: list[Lab] = []

    def factory(config: dict[str, Any] | str, linux_guest: Any = None, lab_dir: Path | None = None) -> RunningLab:
        """linux_guest: None keeps Linux VMs static (these tests do not need the Linux guest
        image); pass a factory, or hvlab.server.AUTO for hvlab.linux_guest when it exists."""
        data = labfile.read_yaml(config) if isinstance(config, str) else config
        lab = Lab(labfile.parse(data), "lab-admin", secrets.token_urlsafe(12), lab_dir, linux_guest)
        lab.start()
        started.append(lab)
        ep = lab.endpoints[lab.host.name]
        return RunningLab(lab, ep.username, ep.password)

    yield factory
    for lab in started:
        lab.stop()


BASIC_LAB = {
    "host": {"name": "hv01", "language": "en-US"},
    "vms": [
        {"name": "web01", "state": "Running", "guest": "windows"},
        {"name": "db01", "state": "Off", "guest": "linux"},
        {"name": "bare", "state": "Running", "guest": "none"},
    ],
}


@pytest.fixture
def basic_lab(make_lab: Any) -> RunningLab:
    return make_lab(BASIC_LAB)
