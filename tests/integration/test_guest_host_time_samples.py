"""guest_integration_service host_time_samples: W32Time's Hyper-V time provider in a lab Windows guest,
and the refusal on a Linux guest."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import guest_info, run_playbook

WINDOWS_LAB = {
    "host": {"name": "hv01", "language": "de-DE"},
    "vms": [{"name": "dc01", "state": "Running", "guest": "windows"}],
}


def _samples(value: bool, name: str = "samples") -> dict:
    return {
        "name": name,
        "hyperv.integration.guest_integration_service": {"host_time_samples": value},
        "ignore_errors": True,
    }


def _guest(lab) -> dict:
    state = lab.state()
    return {
        "time": state["vms"]["dc01"]["guest"]["time_provider"],
        "writes": state["endpoints"]["dc01"]["counters"]["writes"],
    }


def _info(tmp_path: Path, lab, label: str) -> dict:
    return guest_info(tmp_path, lab, "windows_guests", name=label)["dc01"]["time_provider"]


def test_windows_guest_stops_host_samples_check_mode_first_then_converges(tmp_path: Path, start_lab) -> None:
    lab = start_lab(WINDOWS_LAB)
    assert _info(tmp_path, lab, "info0") == {"vmic_time_provider_enabled": True}  # a real guest's default

    check = run_playbook(tmp_path, lab, [_samples(False)], hosts="windows_guests", check=True, diff=True, name="check")
    result = check.result("samples")
    assert result["status"] == "ok", check.stdout
    assert result["result"]["changed"] is True and result["result"]["host_time_samples"]["after"] is False
    assert "host_time_samples" in check.stdout  # the diff shows it
    guest = _guest(lab)
    assert guest["writes"] == 0 and guest["time"]["enabled"] == 1  # check mode wrote nothing

    first = run_playbook(tmp_path, lab, [_samples(False)], hosts="windows_guests", diff=True, name="first")
    done = first.result("samples")
    assert done["status"] == "ok", first.stdout
    assert first.recap("dc01")["changed"] == 1
    assert done["result"]["host_time_samples"]["value_before"] == 1
    assert done["result"]["host_time_samples"]["value_after"] == 0
    assert done["result"]["host_time_samples"]["w32time_restarted"] is True
    guest = _guest(lab)
    assert (guest["time"]["enabled"], guest["time"]["kind"]) == (0, "DWord")
    assert guest["time"]["w32time"]["host_samples_in_use"] is False  # W32Time was restarted and read it
    writes = guest["writes"]

    again = run_playbook(tmp_path, lab, [_samples(False)], hosts="windows_guests", name="again")
    assert again.result("samples")["status"] == "ok", again.stdout
    assert again.recap("dc01")["changed"] == 0
    assert _guest(lab)["writes"] == writes and _guest(lab)["time"]["w32time"]["restarts"] == 1

    assert _info(tmp_path, lab, "info1") == {"vmic_time_provider_enabled": False}


@pytest.mark.needs_root
def test_linux_guest_refuses_host_time_samples(tmp_path: Path, start_lab) -> None:
    lab = start_lab({"host": {"name": "hv01", "language": "en-US"}, "vms": [{"name": "lin01", "guest": "linux"}]})
    run = run_playbook(tmp_path, lab, [_samples(False)], hosts="linux_guests", name="lin")
    result = run.result("samples")
    assert result["status"] == "failed"
    msg = result["result"]["msg"]
    assert msg.startswith("Linux guest lin01: host_time_samples is a Windows guest setting"), msg
    assert "time_synchronization" in msg and "/dev/ptp_hyperv" in msg and "Nothing was changed" in msg
    assert lab.state()["counters"]["writes"] == 0
