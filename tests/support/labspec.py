"""LABFILE mappings (tests/lab/README.md) for the tests, one VM a call: ``lab_spec(vm_spec("web01", "windows"))``."""

from __future__ import annotations

from typing import Any


def vm_spec(name: str, guest: str = "none", state: str = "Running", **extra: Any) -> dict[str, Any]:
    """One VM: its guest (windows, linux or none) and state; ``extra``: integration_services and the like."""
    return {"name": name, "state": state, "guest": guest, **extra}


def lab_spec(*vms: dict[str, Any], language: str = "en-US", host: str = "hv01", **extra: Any) -> dict[str, Any]:
    """A lab: the Hyper-V host ``host`` in ``language`` with these VMs; ``extra``: faults, hvsocket_services."""
    return {"host": {"name": host, "language": language}, "vms": list(vms), **extra}
