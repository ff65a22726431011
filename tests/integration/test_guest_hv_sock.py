"""guest_integration_service hv_sock: Hyper-V sockets loaded now and at boot in a lab Linux guest."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import guest_info, run_playbook

pytestmark = pytest.mark.needs_root

LAB = {
    "host": {"name": "hv01", "language": "fr-FR"},
    "vms": [
        {"name": "lin01", "state": "Running", "guest": "linux"},
        {"name": "win01", "state": "Running", "guest": "windows"},
    ],
}


def _hv_sock(value: bool, name: str = "hv_sock") -> dict:
    return {"name": name, "hyperv.integration.guest_integration_service": {"hv_sock": value}, "ignore_errors": True}


def _info(tmp_path: Path, lab, label: str) -> dict:
    return guest_info(tmp_path, lab, "linux_guests", name=label)["lin01"]


def test_hv_sock_loaded_now_and_at_boot_check_rerun_and_off(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    before = _info(tmp_path, lab, "info0")
    assert before["modules"]["hv_sock"] is False and before["modules_at_boot"] == {"hv_sock": False}

    check = run_playbook(tmp_path, lab, [_hv_sock(True)], hosts="linux_guests", check=True, diff=True, name="check")
    assert check.result("hv_sock")["result"]["changed"] is True
    assert check.result("hv_sock")["result"]["hv_sock"]["after"] == {"loaded": True, "at_boot": True}
    assert _info(tmp_path, lab, "info1")["modules"]["hv_sock"] is False  # check mode changed nothing

    first = run_playbook(tmp_path, lab, [_hv_sock(True)], hosts="linux_guests", diff=True, name="first")
    assert first.result("hv_sock")["status"] == "ok", first.stdout
    assert "/etc/modules-load.d/hv_sock.conf" in " ".join(first.result("hv_sock")["result"]["hv_sock"]["steps"])
    after = _info(tmp_path, lab, "info2")
    assert after["modules"]["hv_sock"] is True and after["modules_at_boot"] == {"hv_sock": True}

    again = run_playbook(tmp_path, lab, [_hv_sock(True)], hosts="linux_guests", name="again")
    assert again.recap("lin01")["changed"] == 0

    off = run_playbook(tmp_path, lab, [_hv_sock(False)], hosts="linux_guests", name="off")
    assert off.result("hv_sock")["status"] == "ok", off.stdout
    gone = _info(tmp_path, lab, "info3")
    assert gone["modules"]["hv_sock"] is False and gone["modules_at_boot"] == {"hv_sock": False}


def test_hv_sock_on_a_windows_guest_is_refused(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    run = run_playbook(tmp_path, lab, [_hv_sock(True)], hosts="windows_guests", name="win")
    result = run.result("hv_sock")
    assert result["status"] == "failed"
    assert "win01" in result["result"]["msg"] and "Linux guest setting" in result["result"]["msg"]
    assert lab.state()["counters"]["writes"] == 0
