"""LABFILE mappings (tests/lab/README.md) for the tests, one VM a call: ``lab_spec(vm_spec("web01", "windows"))``."""

from __future__ import annotations

from typing import Any

# How the inventory reaches the lab's host and Windows guests (LABFILE host.connection): the
# connections the README names. Tests that run per connection parametrise over these.
CONNECTIONS = ("winrm", "psrp", "ssh")


def vm_spec(name: str, guest: str = "none", state: str = "Running", **extra: Any) -> dict[str, Any]:
    """One VM: its guest (windows, linux or none) and state; ``extra``: integration_services and the like."""
    return {"name": name, "state": state, "guest": guest, **extra}


def lab_spec(
    *vms: dict[str, Any], language: str = "en-US", host: str = "hv01", connection: str = "winrm", **extra: Any
) -> dict[str, Any]:
    """A lab: the Hyper-V host ``host`` in ``language``, reached over ``connection``, with these VMs;
    ``extra``: faults, hvsocket_services."""
    return {"host": {"name": host, "language": language, "connection": connection}, "vms": list(vms), **extra}
