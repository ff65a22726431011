"""`tests/lab/lab up|state|down` through subprocess, as other tests and the demo use it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import labclient
import pytest
import yaml
from support.labspec import lab_spec, vm_spec

LAB_SCRIPT = Path(__file__).resolve().parent.parent / "lab"


def lab(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(LAB_SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def lab_dir(tmp_path: Path) -> Any:
    directory = tmp_path / "lab"
    yield directory
    lab("down", "--dir", str(directory), check=False)  # never leave a lab behind


def write_labfile(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


LABFILE = lab_spec(
    vm_spec("web01", "windows", integration_services={"guest_service_interface": False}),
    vm_spec("Prüf'VM", "linux", "Off"),
    language="de-DE",
    hvsocket_services={"{00000ac9-facb-11e6-bd58-64006a7986d3}": "Prüf'Agent $(x)"},
    faults=[],
)


def test_up_state_down(tmp_path: Path, lab_dir: Path) -> None:
    labfile = write_labfile(tmp_path / "lab.yml", LABFILE)
    up = lab("up", str(labfile), "--dir", str(lab_dir))
    assert "hv01 at http://127.0.0.1:" in up.stdout
    pid = int((lab_dir / "lab.pid").read_text())
    assert alive(pid)

    inventory = yaml.safe_load((lab_dir / "inventory.yml").read_text())
    host = inventory["all"]["children"]["hyperv_hosts"]["hosts"]["hv01"]
    assert {
        k: host[k]
        for k in (
            "ansible_host",
            "ansible_connection",
            "ansible_winrm_transport",
            "ansible_winrm_scheme",
            "ansible_user",
            "ansible_shell_type",
            "ansible_winrm_server_cert_validation",
        )
    } == {
        "ansible_host": "127.0.0.1",
        "ansible_connection": "winrm",
        "ansible_winrm_transport": "basic",
        "ansible_winrm_scheme": "http",
        "ansible_user": "lab-admin",
        "ansible_shell_type": "powershell",
        "ansible_winrm_server_cert_validation": "ignore",
    }
    assert len(host["ansible_password"]) >= 16

    response = labclient.call(
        labclient.connect_to(host),
        labclient.request(
            "vm_integration_service_set",
            {"vm_names": ["prüf'vm"], "changes": [{"guid": "6C09BB55-D683-4DA0-8931-C9BF705F6480", "enabled": True}]},
        ),
    )
    assert response["result"]["vms"][0]["integration_services"][0]["name"] == "Gastdienstschnittstelle"

    state = json.loads(lab("state", "--dir", str(lab_dir)).stdout)
    assert set(state) >= {"vms", "hvsocket_services", "counters"}
    assert state["hvsocket_services"] == {
        "00000AC9-FACB-11E6-BD58-64006A7986D3": "Prüf'Agent $(x)",
        "999E53D4-3D5C-4C3E-8779-BED06EC056E1": "VM Session Service",
        "A5201C21-2770-4C11-A68E-F182EDB29220": "VM Session Service-2",
    }
    assert state["hvsocket_registry"][-1]["key"] == "{00000ac9-facb-11e6-bd58-64006a7986d3}"
    assert state["counters"]["commands"] == 1 and state["counters"]["writes"] == 1
    vm = state["vms"]["Prüf'VM"]
    assert vm["state"] == "Off"
    assert vm["integration_services"]["guest_service_interface"] == {
        "enabled": True,
        "primary_status": None,
        "secondary_status": None,
        "name": "Gastdienstschnittstelle",
        "id": vm["integration_services"]["guest_service_interface"]["id"],
        "answers_in": 0.0,  # guest_answer_delay 0: nothing to wait for
    }
    assert state["vms"]["web01"]["integration_services"]["heartbeat"]["secondary_status"] == "Ok"
    assert state["host"]["language"] == "de-DE"

    # The Windows guest: its own endpoint, in the guests group with the host's credentials.
    guests = inventory["all"]["children"]["guests"]["children"]
    assert guests["linux_guests"]["hosts"] == {}  # Prüf'VM is off: no Linux guest double
    web = guests["windows_guests"]["hosts"]["web01"]
    assert (web["hyperv_host"], web["hyperv_vm_name"]) == ("hv01", "web01")
    assert web["ansible_port"] != host["ansible_port"]
    assert {k: v for k, v in web.items() if k not in ("ansible_port", "hyperv_host", "hyperv_vm_name")} == {
        k: v for k, v in host.items() if k != "ansible_port"
    }
    response = labclient.call(
        labclient.connect_to(web),
        labclient.request(
            "guest_service_set", {"services": [{"name": "vmicvss", "state": "stopped", "start_mode": None}]}
        ),
    )
    assert response["result"]["services"][0]["after"]["status"] == "Stopped"
    state = json.loads(lab("state", "--dir", str(lab_dir)).stdout)
    assert state["vms"]["web01"]["integration_services"]["vss"]["primary_status"] == "LostCommunication"
    assert state["vms"]["web01"]["guest"]["services"]["vmicvss"]["status"] == "Stopped"
    assert state["endpoints"]["web01"]["counters"]["writes"] == 1
    assert state["counters"]["commands"] == 2 and state["counters"]["writes"] == 2

    down = lab("down", "--dir", str(lab_dir))
    assert "stopped" in down.stdout
    assert not alive(pid)
    assert (lab_dir / "lab.log").stat().st_size > 0  # the log is kept
    assert not (lab_dir / "lab.json").exists() and not (lab_dir / "lab.pid").exists()
    assert "nothing running" in lab("down", "--dir", str(lab_dir)).stdout  # idempotent
    gone = lab("state", "--dir", str(lab_dir), check=False)
    assert gone.returncode == 1 and "no lab running" in gone.stderr


def test_two_labs_side_by_side_and_up_twice(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    labfile = write_labfile(tmp_path / "lab.yml", LABFILE)
    try:
        procs = [
            subprocess.Popen(
                [str(LAB_SCRIPT), "up", str(labfile), "--dir", str(d)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for d in dirs
        ]
        assert [p.wait(timeout=30) for p in procs] == [0, 0]
        ports = {json.loads(lab("state", "--dir", str(d)).stdout)["host"]["url"] for d in dirs}
        assert len(ports) == 2
        again = lab("up", str(labfile), "--dir", str(dirs[0]), check=False)
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        pids = [int((d / "lab.pid").read_text()) for d in dirs if (d / "lab.pid").exists()]
        for d in dirs:
            lab("down", "--dir", str(d), check=False)
    assert pids and not any(alive(pid) for pid in pids)


def test_up_is_fast_with_1000_vms(tmp_path: Path, lab_dir: Path) -> None:
    # 1000 Windows guests: 1000 guest endpoints besides the host's.
    data = {
        "host": {"name": "big"},
        "vms": [{"name": f"vm-{i:04d}", "state": "Running", "guest": "windows"} for i in range(1000)],
    }
    labfile = write_labfile(tmp_path / "big.yml", data)
    start = time.monotonic()
    lab("up", str(labfile), "--dir", str(lab_dir))
    assert time.monotonic() - start < 2.0
    state = json.loads(lab("state", "--dir", str(lab_dir)).stdout)
    assert len(state["vms"]) == 1000 and len(state["endpoints"]) == 1001
    inventory = yaml.safe_load((lab_dir / "inventory.yml").read_text())
    guests = inventory["all"]["children"]["guests"]["children"]["windows_guests"]["hosts"]
    assert len(guests) == 1000
    last = guests["vm-0999"]
    response = labclient.call(
        labclient.connect_to(last), labclient.request("guest_service_info", {"names": ["vmicvss"]})
    )
    assert response["result"]["services"][0]["status"] == "Running"
    start = time.monotonic()
    lab("down", "--dir", str(lab_dir))
    assert time.monotonic() - start < 2.0


def test_labfile_errors_fail_up_clearly(tmp_path: Path, lab_dir: Path) -> None:
    labfile = write_labfile(tmp_path / "bad.yml", {"vms": [{"name": "a"}], "faults": [{"type": "meteor_strike"}]})
    result = lab("up", str(labfile), "--dir", str(lab_dir), check=False)
    assert result.returncode == 1
    assert "unknown fault type 'meteor_strike'" in result.stderr
    assert not (lab_dir / "lab.pid").exists()
    labfile = write_labfile(tmp_path / "bad2.yml", {"vms": [], "guests": []})
    result = lab("up", str(labfile), "--dir", str(lab_dir), check=False)
    assert result.returncode == 1 and "unknown key(s) guests" in result.stderr
    result = lab("up", str(tmp_path / "missing.yml"), "--dir", str(lab_dir), check=False)
    assert result.returncode == 1 and "not found" in result.stderr


def test_down_kills_a_lab_whose_control_endpoint_is_gone(tmp_path: Path, lab_dir: Path) -> None:
    labfile = write_labfile(tmp_path / "lab.yml", LABFILE)
    lab("up", str(labfile), "--dir", str(lab_dir))
    pid = int((lab_dir / "lab.pid").read_text())
    info = json.loads((lab_dir / "lab.json").read_text())
    info["control_url"] = "http://127.0.0.1:9"  # unreachable: down must fall back to signals
    (lab_dir / "lab.json").write_text(json.dumps(info))
    lab("down", "--dir", str(lab_dir))
    assert not alive(pid)
    assert os.path.exists(lab_dir / "lab.log")
