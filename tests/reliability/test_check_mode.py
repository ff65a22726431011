"""Check mode: every module and every role, on the host, a Windows guest and a Linux guest, reports the
changes it would make and makes none (lab counters.writes unchanged, host and guests as before)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import escaped_lab, host_view, play, run_plays, windows_guest_view

pytestmark = pytest.mark.needs_root

GSI = "guest_service_interface"
SESSION = "999E53D4-3D5C-4C3E-8779-BED06EC056E1"  # a built-in hv-socket entry
AGENT = "00000AC9-FACB-11E6-BD58-64006A7986D3"


def info(tmp: Path, lab, hosts: str, name: str) -> dict:
    run = run_plays(
        tmp, lab, [play(hosts, [{"name": "i", "hyperv.integration.guest_integration_service_info": {}}])], name=name
    )
    assert run.rc == 0, run.stdout
    return {r["host"]: r["result"] for r in run.results if r["task"] == "i"}


def test_every_module_and_role_in_check_mode_writes_nothing(tmp_path: Path) -> None:
    labfile = {
        "host": {"name": "hv01", "language": "de-DE"},
        "vms": [
            {"name": "win01", "guest": "windows"},
            {"name": "lin01", "guest": "linux"},
            {"name": "off01", "state": "Off", "guest": "none"},
        ],
        "hvsocket_services": {AGENT: "old-name"},
    }
    with escaped_lab(tmp_path / "lab", labfile) as lab:
        _check(tmp_path, lab)


def _check(tmp_path: Path, lab) -> None:
    # Make the Linux guest differ from what the check-mode tasks ask, for real, before looking.
    prep = run_plays(
        tmp_path,
        lab,
        [
            play(
                "linux_guests",
                [
                    {
                        "name": "prep",
                        "hyperv.integration.guest_integration_service": {
                            "services": {"key_value_pair_exchange": "stopped"}
                        },
                    }
                ],
            )
        ],
        name="prep",
    )
    assert prep.rc == 0, prep.stdout
    linux_before = info(tmp_path, lab, "linux_guests", "linux-before")
    windows_before = info(tmp_path, lab, "windows_guests", "windows-before")
    state = lab.state()
    before = {"writes": state["counters"]["writes"], "host": host_view(state), "windows": windows_guest_view(state)}

    host_tasks = [
        {
            "name": "vm_integration_service",
            "hyperv.integration.vm_integration_service": {
                "name": ["win01", "lin01", "off01"],
                "services": {GSI: "enabled", "vss": "disabled"},
                "wait": True,
            },
        },
        {
            "name": "vm_integration_service vms",
            "hyperv.integration.vm_integration_service": {
                "vms": [{"name": "win01", "services": {"heartbeat": False}}, {"name": "off01", "services": {GSI: True}}]
            },
        },
        {"name": "vm_integration_service_info", "hyperv.integration.vm_integration_service_info": {}},
        {
            "name": "hvsocket_service",
            "hyperv.integration.hvsocket_service": {
                "services": [
                    {"name": "new-agent", "vsock_port": 5000},
                    {"name": "renamed", "service_id": AGENT},
                    {"service_id": SESSION, "state": "absent", "force": True},
                ]
            },
        },
        {"name": "hvsocket_service_info", "hyperv.integration.hvsocket_service_info": {}},
    ]
    windows_tasks = [
        {
            "name": "guest_integration_service windows",
            "hyperv.integration.guest_integration_service": {
                "services": {"vss": "stopped", "heartbeat": {"start_mode": "Disabled"}},
                "host_time_samples": False,
            },
        },
        {"name": "guest_integration_service_info windows", "hyperv.integration.guest_integration_service_info": {}},
    ]
    linux_tasks = [
        {
            "name": "guest_integration_service linux",
            "hyperv.integration.guest_integration_service": {
                "services": {"key_value_pair_exchange": "started", "vss": "stopped"},
                "hv_sock": True,
            },
        },
        {"name": "guest_integration_service_info linux", "hyperv.integration.guest_integration_service_info": {}},
        {"name": "linux_guest role", "ansible.builtin.include_role": {"name": "hyperv.integration.linux_guest"}},
    ]
    role_tasks = [
        {
            "name": "integration_services role",
            "ansible.builtin.include_role": {"name": "hyperv.integration.integration_services"},
            "vars": {
                "hyperv_integration_services": {GSI: True, "vss": False},
                "integration_services_stop_disabled": True,
            },
        },
        {
            "name": "hvsocket role",
            "ansible.builtin.include_role": {"name": "hyperv.integration.hvsocket"},
            "vars": {"hvsocket_services": [{"name": "role-agent", "vsock_port": 6000}]},
        },
    ]
    run = run_plays(
        tmp_path,
        lab,
        [
            play("hyperv_hosts", host_tasks),
            play("windows_guests", windows_tasks),
            play("linux_guests", linux_tasks),
            play("guests", role_tasks),
        ],
        check=True,
        name="check",
    )
    assert run.rc == 0, run.stdout
    # Each changing task reports the change it would make: the check had something to skip.
    for task, host in [
        ("vm_integration_service", "hv01"),
        ("vm_integration_service vms", "hv01"),
        ("hvsocket_service", "hv01"),
        ("guest_integration_service windows", "win01"),
        ("guest_integration_service linux", "lin01"),
    ]:
        assert run.result(task, host)["result"]["changed"] is True, (task, run.result(task, host))
    assert run.result("vm_integration_service", "hv01")["result"]["wait"]["skipped"].startswith("check mode")
    assert run.recap("win01")["changed"] >= 2 and run.recap("lin01")["changed"] >= 2, run.stdout

    state = lab.state()
    assert state["counters"]["writes"] == before["writes"]
    assert host_view(state) == before["host"]
    assert windows_guest_view(state) == before["windows"]
    assert info(tmp_path, lab, "linux_guests", "linux-after") == linux_before
    assert info(tmp_path, lab, "windows_guests", "windows-after") == windows_before
