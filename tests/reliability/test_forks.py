"""20 forks against one Hyper-V host at once: no lost and no doubled writes."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from reliability_support import escaped_lab, play, run_plays

GSI = "guest_service_interface"
FORKS = 20
VMS = ["vm%02d" % i for i in range(FORKS // 2)]
DELAY = 0.5  # every host command answers this late, so that the 20 connections overlap


def port_guid(port: int) -> str:
    return "%08X-FACB-11E6-BD58-64006A7986D3" % port


def aliases(lab) -> dict:
    """FORKS inventory hosts that all reach the lab's one Hyper-V host; two aliases per VM, each with
    its own two ICs of that VM, and its own hv-socket port."""
    inventory = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))
    connection = inventory["all"]["children"]["hyperv_hosts"]["hosts"]["hv01"]
    hosts = {}
    for i in range(FORKS):
        services = {GSI: "enabled", "heartbeat": "disabled"} if i % 2 == 0 else {"vss": "disabled", "shutdown": False}
        hosts["alias%02d" % i] = dict(connection, my_vm=VMS[i // 2], my_services=services, my_port=7000 + i)
    return {"all": {"children": {"aliases": {"hosts": hosts}}}}


def test_twenty_forks_one_host_no_lost_or_doubled_writes(tmp_path: Path) -> None:
    labfile = {
        "host": {"name": "hv01"},
        "vms": [{"name": n, "guest": "none"} for n in [*VMS, "shared"]],
        "faults": [{"type": "delay", "seconds": DELAY}],
    }
    with escaped_lab(tmp_path / "lab", labfile) as lab:
        tasks = [
            {
                "name": "own VM",
                "hyperv.integration.vm_integration_service": {"name": "{{ my_vm }}", "services": "{{ my_services }}"},
            },
            {
                "name": "same wish",
                "hyperv.integration.vm_integration_service": {"name": "shared", "services": {GSI: "enabled"}},
            },
            {
                "name": "own port",
                "hyperv.integration.hvsocket_service": {"name": "agent-{{ my_port }}", "vsock_port": "{{ my_port }}"},
            },
        ]
        inventory = aliases(lab)
        started = time.monotonic()
        run = run_plays(
            tmp_path, lab, [play("aliases", tasks, strategy="free")], name="forks", extra_inventory=inventory
        )
        elapsed = time.monotonic() - started
        assert run.rc == 0, run.stdout
        state = lab.state()

        changed = sum(1 for r in run.results if r["result"].get("changed"))
        # 20 x 2 ICs, 20 registrations, and the one IC all 20 asked for: written once, by one of them.
        assert state["counters"]["writes"] == FORKS * 2 + FORKS + 1
        assert state["host"]["counters"]["commands"] == 3 * FORKS
        assert changed == 2 * FORKS + 1
        assert sum(1 for r in run.results if r["task"] == "same wish" and r["result"]["changed"]) == 1
        for vm in VMS:
            ics = {k: v["enabled"] for k, v in state["vms"][vm]["integration_services"].items()}
            assert ics == {
                "heartbeat": False,
                "shutdown": False,
                "time_synchronization": True,
                "key_value_pair_exchange": True,
                "vss": False,
                GSI: True,
            }, (vm, ics)
        assert state["vms"]["shared"]["integration_services"][GSI]["enabled"] is True
        assert all(state["hvsocket_services"][port_guid(7000 + i)] == "agent-%d" % (7000 + i) for i in range(FORKS))
        # Serially, the 60 delayed commands alone would take 60 x DELAY = 30 s; the run also pays for
        # ansible itself (20 forks on this machine's 2 cores, measured 14-15.5 s in all). Two thirds of
        # the serial time still proves the forks overlapped, without failing on a busy machine.
        assert elapsed < 3 * FORKS * DELAY * 2 / 3, elapsed

        again = run_plays(
            tmp_path, lab, [play("aliases", tasks, strategy="free")], name="again", extra_inventory=inventory
        )
        assert again.rc == 0, again.stdout
        assert not any(r["result"].get("changed") for r in again.results)
        assert lab.state()["counters"]["writes"] == state["counters"]["writes"]
