"""Real ansible runs over `ansible_connection: winrm` against the lab."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

BIN = Path(sys.executable).parent
ACTION_PLUGINS = Path(__file__).resolve().parent / "ansible" / "action_plugins"
GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"

pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-playbook").exists(), reason="ansible-playbook not installed next to this python"
)


def ansible(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        ANSIBLE_ACTION_PLUGINS=str(ACTION_PLUGINS),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCAL_TEMP=str(cwd / "tmp"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    return subprocess.run(
        [str(BIN / tool), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def inventory(lab: Any, tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(lab.lab.inventory(lab.username, lab.password)), encoding="utf-8")
    return path


PLAYBOOK = f"""
- hosts: hyperv_hosts
  gather_facts: false
  tasks:
    - lab_call: {{operation: vm_integration_service_info, params: {{vm_names: null}}}}
      register: info
    - lab_call:
        operation: vm_integration_service_set
        params: {{vm_names: ["ウェブ 01", "a$(b)`c;{{d}}"], changes: [{{guid: {GSI}, enabled: true}}]}}
      check_mode: true
      register: dry
    - lab_call:
        operation: vm_integration_service_set
        params: {{vm_names: ["ウェブ 01"], changes: [{{guid: {GSI}, enabled: true}}]}}
        pre_encoded: true
      register: real
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{{{ playbook_dir }}}}/out.json"
        content: "{{{{ {{'info': hostvars.hv01.info, 'dry': hostvars.hv01.dry,
                       'real': hostvars.hv01.real}} | to_json }}}}"
"""


def test_playbook_over_winrm(make_lab: Any, tmp_path: Path) -> None:
    lab = make_lab(
        {
            "host": {"name": "hv01", "language": "zh-TW"},
            "vms": [{"name": "ウェブ 01", "guest": "windows"}, {"name": "a$(b)`c;{d}"}],
        }
    )
    (tmp_path / "site.yml").write_text(PLAYBOOK, encoding="utf-8")
    result = ansible("ansible-playbook", ["-i", str(inventory(lab, tmp_path)), "site.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    vms = out["info"]["response"]["result"]["vms"]
    assert [vm["name"] for vm in vms] == ["ウェブ 01", "a$(b)`c;{d}"]
    assert vms[0]["integration_services"][0]["name"] == "客體服務介面"
    assert all(vm["integration_services"][0]["after"] for vm in out["dry"]["response"]["result"]["vms"])
    assert out["real"]["response"]["result"]["vms"][0]["integration_services"][0]["changed"] is True
    state = lab.state()
    assert state["counters"]["commands"] == 3 and state["counters"]["calls"] == 3
    assert state["counters"]["writes"] == 1  # the check-mode task wrote nothing
    assert not state["vms"]["a$(b)`c;{d}"]["integration_services"]["guest_service_interface"]["enabled"]


def test_raw_command_is_rejected(basic_lab: Any, tmp_path: Path) -> None:
    result = ansible(
        "ansible", ["-i", str(inventory(basic_lab, tmp_path)), "hv01", "-m", "raw", "-a", "Get-VM"], tmp_path
    )
    assert result.returncode != 0
    assert "is not the hyperv.integration bootstrap" in result.stdout + result.stderr
    assert basic_lab.counters()["rejected"] == 1


@pytest.mark.parametrize("at", ["send", "receive"])
def test_dropped_connection_fails_the_task(make_lab: Any, tmp_path: Path, at: str) -> None:
    lab = make_lab({"vms": [{"name": "v", "guest": "linux"}], "faults": [{"type": "drop_connection", "at": at}]})
    (tmp_path / "site.yml").write_text(
        f"""
- hosts: hyperv_hosts
  gather_facts: false
  tasks:
    - lab_call:
        operation: vm_integration_service_set
        params: {{vm_names: [v], changes: [{{guid: {GSI}, enabled: true}}]}}
""",
        encoding="utf-8",
    )
    result = ansible("ansible-playbook", ["-i", str(inventory(lab, tmp_path)), "site.yml"], tmp_path)
    assert result.returncode != 0
    assert "failed=1" in result.stdout or "unreachable=1" in result.stdout
    # send: the command never ran; receive: it ran and only the answer was lost.
    assert lab.counters()["writes"] == (1 if at == "receive" else 0)


GUEST_PLAYBOOK = """
- hosts: windows_guests
  gather_facts: false
  tasks:
    - lab_call: {operation: guest_service_info, params: {names: [vmicvss, vmicheartbeat]}}
      register: info
    - lab_call:
        operation: guest_service_set
        params: {services: [{name: vmicvss, state: stopped, start_mode: null}]}
      register: stopped
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{ playbook_dir }}/out.json"
        content: "{{ {'info': hostvars['web01'].info, 'stopped': hostvars['web01'].stopped,
                      'vm': hostvars[guest].hyperv_vm_name, 'host': hostvars[guest].hyperv_host} | to_json }}"
      vars:
        guest: "{{ groups['windows_guests'] | reject('equalto', 'web01') | first }}"
"""


def test_guests_over_winrm(make_lab: Any, tmp_path: Path) -> None:
    lab = make_lab(
        {
            "host": {"name": "hv01", "language": "de-DE"},
            "vms": [
                {"name": "web01", "guest": "windows"},
                {"name": "Aus VM", "state": "Off", "guest": "windows"},
                {"name": "lin01", "guest": "linux"},
            ],
        }
    )
    path = inventory(lab, tmp_path)
    listed = json.loads(ansible("ansible-inventory", ["-i", str(path), "--list"], tmp_path).stdout)
    assert sorted(listed["guests"]["children"]) == ["linux_guests", "windows_guests"]
    assert sorted(listed["windows_guests"]["hosts"]) == sorted(
        ["web01", lab.state()["vms"]["Aus VM"]["inventory_name"]]
    )
    assert "hosts" not in listed.get("linux_guests", {})  # no Linux guest double in this lab

    (tmp_path / "site.yml").write_text(GUEST_PLAYBOOK, encoding="utf-8")
    result = ansible("ansible-playbook", ["-i", str(path), "site.yml"], tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr  # 4: some host was unreachable
    assert re.search(r"guest-[0-9a-f]{8}\s+: ok=0\s+changed=0\s+unreachable=1", result.stdout), result.stdout
    assert re.search(r"web01\s+: ok=2\s", result.stdout), result.stdout
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    services = out["info"]["response"]["result"]["services"]
    assert [s["display_name"] for s in services] == ["Hyper-V-Volumeschattenkopie-Anforderer", "Hyper-V-Taktdienst"]
    assert out["stopped"]["response"]["result"]["services"][0]["changed"] is True
    assert (out["vm"], out["host"]) == ("Aus VM", "hv01")
    state = lab.state()
    assert state["vms"]["web01"]["integration_services"]["vss"]["primary_status"] == "LostCommunication"
    assert state["endpoints"]["web01"]["counters"]["writes"] == 1
    assert state["host"]["counters"]["commands"] == 0
