"""The hvsocket role: one registration call per Hyper-V host, hv_sock in Linux guests, GUIDs as facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import guest_info, run_playbook
from support.labspec import CONNECTIONS, lab_spec, vm_spec

pytestmark = pytest.mark.needs_root

PORT_2761 = "00000AC9-FACB-11E6-BD58-64006A7986D3"
BACKUP = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
HOSTILE = "Agent \"$(Get-Date)\" `n 'é'"
LAB = lab_spec(vm_spec("lin01", "linux"), vm_spec("win01", "windows"), vm_spec("win02", "windows"), language="de-DE")
SERVICES = [
    {"name": HOSTILE, "vsock_port": 2761},
    {"name": "backup", "service_id": BACKUP.lower()},
]


def role(services: list[dict]) -> list[dict]:
    return [
        {
            "name": "role",
            "ansible.builtin.include_role": {"name": "hyperv.integration.hvsocket"},
            "vars": {"hvsocket_services": services},
        },
        {"name": "ids", "ansible.builtin.debug": {"var": "hvsocket_service_ids"}},
    ]


def host_commands(lab) -> int:
    return lab.state()["host"]["counters"]["commands"]


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_role_registers_once_per_host_sets_facts_and_loads_hv_sock(tmp_path: Path, start_lab, connection: str) -> None:
    lab = start_lab(LAB, connection=connection)
    before = lab.state()["hvsocket_services"]

    start = host_commands(lab)
    check = run_playbook(tmp_path, lab, role(SERVICES), hosts="guests", check=True, name="check")
    assert check.rc == 0, check.stdout
    assert lab.state()["counters"]["writes"] == 0 and lab.state()["hvsocket_services"] == before
    assert host_commands(lab) - start == 1

    start = host_commands(lab)
    first = run_playbook(tmp_path, lab, role(SERVICES), hosts="guests", name="first")
    assert first.rc == 0, first.stdout
    assert host_commands(lab) - start == 1  # three guests, one Hyper-V host: one call
    registry = lab.state()["hvsocket_services"]
    assert registry[PORT_2761] == HOSTILE and registry[BACKUP] == "backup"
    assert {k: v for k, v in registry.items() if k not in (PORT_2761, BACKUP)} == before
    for guest in ("lin01", "win01", "win02"):
        ids = first.result("ids", guest)["result"]["hvsocket_service_ids"]
        assert ids == {HOSTILE: PORT_2761, "backup": BACKUP}

    linux = guest_info(tmp_path, lab, "linux_guests")["lin01"]
    assert linux["modules"]["hv_sock"] is True and linux["modules_at_boot"] == {"hv_sock": True}

    again = run_playbook(tmp_path, lab, role(SERVICES), hosts="guests", name="again")
    assert again.rc == 0, again.stdout
    for guest in ("lin01", "win01", "win02"):
        assert again.recap(guest)["changed"] == 0, again.stdout

    removed = [dict(s, state="absent") for s in SERVICES]
    gone = run_playbook(tmp_path, lab, role(removed), hosts="guests", name="gone")
    assert gone.rc == 0, gone.stdout
    assert lab.state()["hvsocket_services"] == before
    assert gone.result("ids", "win01")["result"]["hvsocket_service_ids"] == {}


def test_guest_without_hyperv_host_fails_before_any_change(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    extra = {"all": {"hosts": {"stray": {"ansible_connection": "local"}}}}
    run = run_playbook(tmp_path, lab, role(SERVICES), hosts="stray", extra_inventory=extra, name="stray")
    assert run.rc != 0
    assert "stray has no hyperv_host variable" in run.stdout
    assert lab.state()["counters"]["writes"] == 0
