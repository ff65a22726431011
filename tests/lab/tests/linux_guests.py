"""The lab's Linux guest double booted for the lab's own tests (they need root: marked needs_root)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hvlab.linux_guest import IC_DEVICES, LinuxGuest

DEFAULT_OFFERS = frozenset(key for key in IC_DEVICES if key != "guest_service_interface")  # Hyper-V defaults


def booted(name: str, vm_id: str, directory: Path) -> Iterator[LinuxGuest]:
    """Body of a guest fixture (the image built first): the guest offered Hyper-V's defaults and
    started; stopped afterwards."""
    vm = LinuxGuest(name, vm_id, directory)
    vm.offers_changed(DEFAULT_OFFERS)
    vm.start()
    yield vm
    vm.stop()


def sh(guest: LinuxGuest, script: str, timeout: float = 30) -> str:
    """Run a shell script in the guest; it must succeed. Its output, stripped."""
    result = guest.run_in_guest(["sh", "-c", script], timeout=timeout)
    assert result.returncode == 0, f"{script!r}: {result.returncode} {result.stdout} {result.stderr}"
    return result.stdout.strip()
