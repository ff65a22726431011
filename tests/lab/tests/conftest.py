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
sys.path.insert(0, str(LAB_DIR.parent))  # tests/support

import labclient  # noqa: E402
from hvlab import labfile  # noqa: E402
from hvlab.server import Lab  # noqa: E402
from linux_guests import DEFAULT_OFFERS  # noqa: E402
from support.labspec import lab_spec, vm_spec  # noqa: E402
from winrm.protocol import Protocol  # noqa: E402


@dataclass
class EndpointClient:
    """Calls to one endpoint of a lab served from this test process, by its inventory name; sequential
    ones over a shared client."""

    lab: Lab
    name: str
    username: str
    password: str
    _client: Protocol | None = None

    @property
    def url(self) -> str:
        return self.lab.endpoints[self.name].url

    def protocol(self, password: str | None = None, timeout: int = 20) -> Protocol:
        """A new client (own HTTP session) each time: building one costs ~0.1 s, so reuse it."""
        return labclient.connect(self.url, self.username, self.password if password is None else password, timeout)

    def client(self) -> Protocol:
        """The endpoint's shared client for sequential calls."""
        if self._client is None:
            self._client = self.protocol()
        return self._client

    def call(self, operation: str, params: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
        return labclient.call(self.client(), labclient.request(operation, params, check_mode))

    def state(self) -> dict[str, Any]:
        return self.lab.state()


class RunningLab(EndpointClient):
    """A lab served from this test process (same server code as `lab up`, without the fork), reached
    through its Hyper-V host's endpoint."""

    def counters(self) -> dict[str, int]:
        return self.state()["counters"]

    def info(self, vm_names: list[str] | None = None) -> dict[str, Any]:
        response = self.call("vm_integration_service_info", {"vm_names": vm_names})
        assert response["ok"], response
        return response["result"]

    def set(self, vm_names: list[str], changes: list[dict[str, Any]], check_mode: bool = False) -> dict[str, Any]:
        return self.call("vm_integration_service_set", {"vm_names": vm_names, "changes": changes}, check_mode)

    def guest(self, name: str) -> GuestClient:
        """Client of the Windows guest endpoint with this inventory name (the host's credentials)."""
        return GuestClient(self.lab, name, self.username, self.password)


class GuestClient(EndpointClient):
    """The guest library's operations (protocol doc section 7) on one Windows guest endpoint."""

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
        return self.state()["endpoints"][self.name]["counters"]


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
        return RunningLab(lab, lab.host.name, ep.username, ep.password)

    yield factory
    for lab in started:
        lab.stop()


BASIC_LAB = lab_spec(vm_spec("web01", "windows"), vm_spec("db01", "linux", "Off"), vm_spec("bare"))


@pytest.fixture
def basic_lab(make_lab: Any) -> RunningLab:
    return make_lab(BASIC_LAB)


@pytest.fixture
def offers(guest: Any) -> Iterator[Any]:
    """Change the offers of the module's booted Linux guest (its ``guest`` fixture) in a test:
    ``offers(frozenset_of_keys)``; Hyper-V's defaults come back afterwards."""
    yield guest.offers_changed
    guest.offers_changed(DEFAULT_OFFERS)
