"""The lab Linux guest loads the modules that modules-load.d names when it boots, as
systemd-modules-load does on a real guest (the kernel stand-in does it in the container)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hvlab.linux_guest import LinuxGuest
from labclient import build_guest_image

pytestmark = pytest.mark.needs_root


def test_hv_sock_listed_in_modules_load_d_is_loaded_after_a_restart(tmp_path: Path) -> None:
    build_guest_image()
    vm = LinuxGuest("boot01", "0c7c2a55-47a4-5d55-8d1e-5b1c3d6a7f01", tmp_path)
    vm.start()
    try:
        assert vm.run_in_guest(["test", "-e", "/sys/module/hv_sock"]).returncode == 1
        written = vm.run_in_guest(["sh", "-c", "echo hv_sock > /etc/modules-load.d/hv_sock.conf"])
        assert written.returncode == 0, written.stderr
        vm.stop()
        vm.start()
        assert vm.run_in_guest(["test", "-d", "/sys/module/hv_sock"]).returncode == 0
        vm.run_in_guest(["rm", "/etc/modules-load.d/hv_sock.conf"])
        vm.stop()
        vm.start()
        assert vm.run_in_guest(["test", "-e", "/sys/module/hv_sock"]).returncode == 1
    finally:
        vm.stop()
