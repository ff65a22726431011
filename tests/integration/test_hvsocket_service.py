"""hvsocket_service(_info) end to end against the lab's Hyper-V host registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import run_playbook
from support.labspec import CONNECTIONS

SESSION = "999E53D4-3D5C-4C3E-8779-BED06EC056E1"
PORT_2761 = "00000AC9-FACB-11E6-BD58-64006A7986D3"
HOSTILE = 'Prüf\'Agent "$(Remove-Item C:\\)" `whoami`; {ウェブ}'
LAB = {
    "host": {"name": "hv01", "language": "de-DE"},
    "vms": [{"name": "web01", "state": "Running", "guest": "windows"}],
}


def task(args: dict, name: str = "reg") -> dict:
    return {"name": name, "hyperv.integration.hvsocket_service": args, "ignore_errors": True}


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_register_vsock_port_rerun_and_remove_exactly_it(tmp_path: Path, start_lab, connection: str) -> None:
    lab = start_lab(LAB, connection=connection)
    before = lab.state()["hvsocket_services"]
    assert before.get(SESSION) == "VM Session Service"

    check = run_playbook(tmp_path, lab, [task({"name": "agent", "vsock_port": 2761})], check=True, name="check")
    assert check.result("reg")["result"]["changed"] is True
    assert lab.state()["counters"]["writes"] == 0 and PORT_2761 not in lab.state()["hvsocket_services"]

    first = run_playbook(tmp_path, lab, [task({"name": "agent", "vsock_port": 2761})], name="first")
    result = first.result("reg")["result"]
    assert first.result("reg")["status"] == "ok", first.stdout
    assert (result["service_id"], result["name"], result["vsock_port"]) == (PORT_2761, "agent", 2761)
    assert lab.state()["hvsocket_services"][PORT_2761] == "agent"

    again = run_playbook(tmp_path, lab, [task({"name": "agent", "vsock_port": 2761})], name="again")
    assert again.recap("hv01")["changed"] == 0

    gone = run_playbook(tmp_path, lab, [task({"vsock_port": 2761, "state": "absent"})], name="gone")
    assert gone.result("reg")["status"] == "ok", gone.stdout
    assert lab.state()["hvsocket_services"] == before  # exactly that entry went

    info = run_playbook(tmp_path, lab, [{"name": "info", "hyperv.integration.hvsocket_service_info": {}}], name="info")
    listed = {s["service_id"]: s for s in info.result("info")["result"]["services"]}
    assert listed[SESSION]["builtin"] is True and listed[SESSION]["name"] == "VM Session Service"


def test_name_alone_gives_the_same_guid_on_two_labs(tmp_path: Path, start_lab) -> None:
    ids = []
    for index in (1, 2):
        lab = start_lab(LAB, name="lab%d" % index)
        run = run_playbook(tmp_path, lab, [task({"name": "backup-agent"})], name="byname%d" % index)
        assert run.result("reg")["status"] == "ok", run.stdout
        ids.append(run.result("reg")["result"]["service_id"])
        assert lab.state()["hvsocket_services"][ids[-1]] == "backup-agent"
    assert ids[0] == ids[1]


def test_hostile_element_name_round_trips_exactly(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    run = run_playbook(tmp_path, lab, [task({"name": HOSTILE, "vsock_port": 5000})])
    assert run.result("reg")["status"] == "ok", run.stdout
    assert lab.state()["hvsocket_services"]["00001388-FACB-11E6-BD58-64006A7986D3"] == HOSTILE
    assert run.result("reg")["result"]["name"] == HOSTILE


def test_removing_a_builtin_needs_force(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    refused = run_playbook(tmp_path, lab, [task({"service_id": SESSION, "state": "absent"})], name="refused")
    assert refused.result("reg")["status"] == "failed"
    msg = refused.result("reg")["result"]["msg"]
    assert "VM Session Service" in msg and "force" in msg and "Nothing was changed" in msg
    counters = lab.state()["counters"]
    assert counters["writes"] == 0 and counters["commands"] == 0
    assert lab.state()["hvsocket_services"][SESSION] == "VM Session Service"


def test_bad_input_is_refused_before_the_host(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    tasks = [
        task({"name": "x", "service_id": "not-a-guid"}, "bad_guid"),
        task({"name": "x", "vsock_port": 4294967295}, "bad_port"),
        task({"name": "", "vsock_port": 1}, "empty_name"),
        task({"name": "x", "vsock_port": 1, "service_id": SESSION}, "both"),
    ]
    run = run_playbook(tmp_path, lab, tasks)
    assert "service_id must be a GUID" in run.result("bad_guid")["result"]["msg"]
    assert "vsock_port must be a whole number" in run.result("bad_port")["result"]["msg"]
    assert "non-empty" in run.result("empty_name")["result"]["msg"]
    assert "not both" in run.result("both")["result"]["msg"]
    assert lab.state()["counters"]["commands"] == 0
