"""vm_integration_service_info end to end against the lab's Hyper-V host."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import run_playbook
from support.labspec import CONNECTIONS, lab_spec, vm_spec
from support.public_names import IC_KEYS


def info_task(name=None) -> dict:
    args = {} if name is None else {"name": name}
    return {
        "name": "info",
        "hyperv.integration.vm_integration_service_info": args,
        "register": "out",
        "ignore_errors": True,
    }


def lab_with_states(language: str = "de-DE") -> dict:
    return lab_spec(
        vm_spec("web01", "windows"),
        vm_spec("ウェブ 02", "linux", "Off"),
        vm_spec("bare", integration_services={"guest_service_interface": True}),
        language=language,
    )


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_every_vm_with_every_ic_by_key(tmp_path: Path, start_lab, connection: str) -> None:
    lab = start_lab(lab_with_states(), connection=connection)
    run = run_playbook(tmp_path, lab, [info_task()])
    assert run.rc == 0, run.stdout
    assert run.recap("hv01")["changed"] == 0
    vms = {vm["name"]: vm for vm in run.result("info")["result"]["vms"]}
    assert list(vms) == ["web01", "ウェブ 02", "bare"]
    state = lab.state()

    web = vms["web01"]
    assert web["state"] == "Running"
    assert web["integration_services_version"] == "10.0.20348"
    assert web["integration_services_state"] == "Up to date"
    assert web["heartbeat"] == "OkApplicationsHealthy"
    assert sorted(ic["key"] for ic in web["integration_services"]) == sorted(IC_KEYS)
    by_key = {ic["key"]: ic for ic in web["integration_services"]}
    assert by_key["heartbeat"]["name"] == "Takt"  # as the German host names it
    assert by_key["guest_service_interface"]["enabled"] is False
    assert by_key["vss"]["primary_status"] == "Ok"
    assert by_key["heartbeat"]["id"].startswith("Microsoft:")
    assert by_key["heartbeat"]["id"].endswith("\\84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47")
    for key in IC_KEYS:
        lab_ic = state["vms"]["web01"]["integration_services"][key]
        assert by_key[key]["enabled"] == lab_ic["enabled"]
        assert by_key[key]["primary_status"] == lab_ic["primary_status"]

    off = vms["ウェブ 02"]
    assert off["state"] == "Off"
    assert off["heartbeat"] is None
    assert all(ic["primary_status"] is None for ic in off["integration_services"])

    assert off["integration_services_version"] is None  # a Linux guest in the lab reports none

    bare = vms["bare"]
    assert bare["heartbeat"] == "NoContact"
    assert {ic["key"]: ic["primary_status"] for ic in bare["integration_services"]}["vss"] == "NoContact"


def test_named_vms_in_the_order_asked(tmp_path: Path, start_lab) -> None:
    lab = start_lab(lab_with_states("zh-TW"))
    run = run_playbook(tmp_path, lab, [info_task(["bare", "WEB01"])])
    assert run.rc == 0, run.stdout
    assert [vm["name"] for vm in run.result("info")["result"]["vms"]] == ["bare", "web01"]


def test_unknown_vm_fails_with_its_name(tmp_path: Path, start_lab) -> None:
    lab = start_lab(lab_with_states())
    run = run_playbook(tmp_path, lab, [info_task(["web01", "ghost"])])
    assert run.result("info")["status"] == "failed"
    result = run.result("info")["result"]
    assert "'ghost'" in result["msg"] and result["missing_vms"] == ["ghost"]


def test_info_in_check_mode_still_reports(tmp_path: Path, start_lab) -> None:
    lab = start_lab(lab_with_states())
    run = run_playbook(tmp_path, lab, [info_task("web01")], check=True)
    assert run.rc == 0, run.stdout
    assert run.result("info")["result"]["vms"][0]["name"] == "web01"
