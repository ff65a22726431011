"""guest_integration_service(_info): this machine (not a Hyper-V guest), and the lab's guests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import run_playbook
from support.labspec import CONNECTIONS


@pytest.mark.skipif(os.path.isdir("/sys/bus/vmbus"), reason="this machine IS a Hyper-V guest (it has a VMBus)")
def test_this_machine_is_not_a_hyperv_guest(tmp_path: Path) -> None:
    tasks = [
        {"name": "info", "hyperv.integration.guest_integration_service_info": {}},
        {
            "name": "set",
            "hyperv.integration.guest_integration_service": {"services": {"key_value_pair_exchange": "started"}},
            "ignore_errors": True,
        },
    ]
    run = run_playbook(tmp_path, None, tasks, hosts="localhost")
    info = run.result("info")
    assert info["status"] == "ok", run.stdout
    assert info["result"]["hyperv_guest"] is False
    assert info["result"]["os"] == "linux"
    assert all(ic["offered"] is False for ic in info["result"]["integration_services"])
    state = run.result("set")
    assert state["status"] == "failed"
    assert "not a Hyper-V guest" in state["result"]["msg"] and "Nothing was changed" in state["result"]["msg"]
    assert state["result"]["changed"] is False


def _lab(vm: dict, language: str = "de-DE") -> dict:
    return {"host": {"name": "hv01", "language": language}, "vms": [vm]}


def _guest_task(services: dict, name: str = "set", **extra) -> dict:
    return {
        "name": name,
        "hyperv.integration.guest_integration_service": dict({"services": services}, **extra),
        "ignore_errors": True,
    }


def _info_task(name: str = "info") -> dict:
    return {"name": name, "hyperv.integration.guest_integration_service_info": {}}


def _host_status(tmp_path: Path, lab, vm: str, key: str) -> str | None:
    run = run_playbook(
        tmp_path,
        lab,
        [{"name": "host", "hyperv.integration.vm_integration_service_info": {"name": vm}}],
        name="host-info",
    )
    assert run.rc == 0, run.stdout
    services = run.result("host")["result"]["vms"][0]["integration_services"]
    return {ic["key"]: ic["primary_status"] for ic in services}[key]


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_windows_guest_vss_stop_and_start_follow_on_the_host(tmp_path: Path, start_lab, connection: str) -> None:
    lab = start_lab(_lab({"name": "win01", "state": "Running", "guest": "windows"}), connection=connection)
    info = run_playbook(tmp_path, lab, [_info_task()], hosts="windows_guests", name="ginfo")
    assert info.rc == 0, info.stdout
    result = info.result("info")["result"]
    assert result["hyperv_guest"] is True and result["os"] == "windows"
    vss = {ic["key"]: ic for ic in result["integration_services"]}["vss"]["service"]
    assert vss["name"] == "vmicvss" and vss["status"] == "Running"
    assert _host_status(tmp_path, lab, "win01", "vss") == "Ok"

    for attempt, expect_changed in (("stop1", 1), ("stop2", 0)):
        run = run_playbook(tmp_path, lab, [_guest_task({"vss": "stopped"})], hosts="windows_guests", name=attempt)
        assert run.result("set")["status"] == "ok", run.stdout
        assert run.recap("win01")["changed"] == expect_changed
    assert _host_status(tmp_path, lab, "win01", "vss") not in ("Ok", None)

    for attempt, expect_changed in (("start1", 1), ("start2", 0)):
        run = run_playbook(
            tmp_path,
            lab,
            [_guest_task({"vss": "started"})],
            hosts="windows_guests",
            name=attempt,
        )
        assert run.result("set")["status"] == "ok", run.stdout
        assert run.recap("win01")["changed"] == expect_changed
    assert _host_status(tmp_path, lab, "win01", "vss") == "Ok"


def test_windows_guest_check_mode_and_errors(tmp_path: Path, start_lab) -> None:
    lab = start_lab(_lab({"name": "win01", "state": "Running", "guest": "windows"}))
    writes = lab.state()["counters"]["writes"]
    check = run_playbook(
        tmp_path,
        lab,
        [_guest_task({"key_value_pair_exchange": {"state": "stopped", "start_mode": "disabled"}})],
        hosts="windows_guests",
        check=True,
        diff=True,
        name="check",
    )
    assert check.result("set")["status"] == "ok", check.stdout
    item = check.result("set")["result"]["integration_services"]["key_value_pair_exchange"]
    assert item["changed"] is True and item["after"] == {"status": "Stopped", "start_mode": "Disabled"}
    assert lab.state()["counters"]["writes"] == writes
    linux_only = run_playbook(
        tmp_path,
        lab,
        [_guest_task({"vss": {"state": "started", "enabled": True}})],
        hosts="windows_guests",
        name="linux-only",
    )
    assert "use start_mode, not enabled" in linux_only.result("set")["result"]["msg"]


def _offered(run, task: str = "info") -> dict[str, bool]:
    return {ic["key"]: ic["offered"] for ic in run.result(task)["result"]["integration_services"]}


@pytest.mark.needs_root
def test_linux_guest_follows_what_the_host_offers(tmp_path: Path, start_lab) -> None:
    lab = start_lab(_lab({"name": "lin01", "state": "Running", "guest": "linux"}))
    gsi = "guest_service_interface"

    first = run_playbook(tmp_path, lab, [_info_task()], hosts="linux_guests", name="info1")
    assert first.rc == 0, first.stdout
    assert first.result("info")["result"]["hyperv_guest"] is True
    offered = _offered(first)
    assert offered[gsi] is False and offered["key_value_pair_exchange"] is True

    not_offered = run_playbook(tmp_path, lab, [_guest_task({gsi: "started"})], hosts="linux_guests", name="no")
    msg = not_offered.result("set")["result"]["msg"]
    assert not_offered.result("set")["status"] == "failed"
    assert "guest_service_interface is not offered" in msg and "vm_integration_service" in msg

    kernel = run_playbook(tmp_path, lab, [_guest_task({"shutdown": "stopped"})], hosts="linux_guests", name="kernel")
    assert kernel.result("set")["status"] == "failed"
    assert "cannot be stopped in the guest" in kernel.result("set")["result"]["msg"]

    host = run_playbook(
        tmp_path,
        lab,
        [
            {
                "name": "enable",
                "hyperv.integration.vm_integration_service": {"name": "lin01", "services": {gsi: "enabled"}},
            }
        ],
        name="host-enable",
    )
    assert host.rc == 0, host.stdout
    second = run_playbook(tmp_path, lab, [_info_task()], hosts="linux_guests", name="info2")
    assert _offered(second)[gsi] is True  # the same running guest now sees the device

    # Debian's units are started by udev when the device appears; whatever did it, the module makes
    # sure the daemon runs, and a second run changes nothing.
    ensure = run_playbook(tmp_path, lab, [_guest_task({gsi: "started"})], hosts="linux_guests", name="ensure")
    assert ensure.result("set")["status"] == "ok", ensure.stdout
    assert ensure.result("set")["result"]["integration_services"][gsi]["after"]["active"] is True
    ensured = run_playbook(tmp_path, lab, [_guest_task({gsi: "started"})], hosts="linux_guests", name="ensured")
    assert ensured.recap("lin01")["changed"] == 0

    stop = run_playbook(tmp_path, lab, [_guest_task({gsi: "stopped"})], hosts="linux_guests", name="stop")
    assert stop.result("set")["status"] == "ok", stop.stdout
    assert stop.recap("lin01")["changed"] == 1
    assert _host_status(tmp_path, lab, "lin01", gsi) == "LostCommunication"  # the host notices

    check = run_playbook(tmp_path, lab, [_guest_task({gsi: "started"})], hosts="linux_guests", check=True, name="check")
    assert check.result("set")["status"] == "ok", check.stdout
    assert check.recap("lin01")["changed"] == 1
    still = run_playbook(tmp_path, lab, [_info_task()], hosts="linux_guests", name="info3")
    daemon = {ic["key"]: ic for ic in still.result("info")["result"]["integration_services"]}[gsi]["daemon"]
    assert daemon["active"] is False  # check mode started nothing
    assert daemon["unit"] == "hv-fcopy-daemon.service"

    start = run_playbook(tmp_path, lab, [_guest_task({gsi: "started"})], hosts="linux_guests", name="start")
    assert start.result("set")["status"] == "ok", start.stdout
    assert start.recap("lin01")["changed"] == 1
    assert start.result("set")["result"]["integration_services"][gsi]["after"]["active"] is True
    again = run_playbook(tmp_path, lab, [_guest_task({gsi: "started"})], hosts="linux_guests", name="again")
    assert again.result("set")["status"] == "ok", again.stdout
    assert again.recap("lin01")["changed"] == 0
    assert _host_status(tmp_path, lab, "lin01", gsi) == "Ok"
