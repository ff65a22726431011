"""Counters: commands, writes (never in check mode), requests and bytes; no lost writes."""

from __future__ import annotations

import threading
from typing import Any

import labclient

GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"


def test_counters_count_what_happened(basic_lab: Any) -> None:
    assert basic_lab.counters() == {
        "commands": 0,
        "calls": 0,
        "rejected": 0,
        "writes": 0,
        "requests": 0,
        "bytes_received": 0,
        "bytes_sent": 0,
        "put_files": 0,
        "put_file_bytes": 0,
        "file_copies": 0,
    }
    basic_lab.info()
    basic_lab.set(["web01", "bare"], [{"guid": GSI, "enabled": True}], check_mode=True)
    labclient.run(basic_lab.client(), "hostname", [], None)
    after = basic_lab.counters()
    assert (after["commands"], after["calls"], after["rejected"], after["writes"]) == (3, 2, 1, 0)
    basic_lab.set(["web01", "bare"], [{"guid": GSI, "enabled": True}])
    basic_lab.set(["web01", "bare"], [{"guid": GSI, "enabled": True}])  # already so: no write
    counters = basic_lab.counters()
    assert (counters["commands"], counters["writes"]) == (5, 2)
    # Create, Command, Send, Receive, Signal, Delete per call (no Send for the raw command)
    assert counters["requests"] == 5 * 6 - 1
    assert counters["bytes_received"] > 0 and counters["bytes_sent"] > 0
    state = basic_lab.state()
    assert state["host"]["counters"] == state["endpoints"]["hv01"]["counters"] == counters


def test_twenty_concurrent_connections_lose_no_write(make_lab: Any) -> None:
    names = [f"vm{i:02d}" for i in range(20)]
    lab = make_lab({"vms": [{"name": n, "guest": "linux"} for n in names]})
    barrier = threading.Barrier(20)

    def worker(name: str) -> None:
        protocol = lab.protocol()
        barrier.wait()
        # Every worker toggles its own VM and, all together, the same IC of vm00.
        response = labclient.call(
            protocol,
            labclient.request(
                "vm_integration_service_set", {"vm_names": [name, "vm00"], "changes": [{"guid": GSI, "enabled": True}]}
            ),
        )
        assert response["ok"]

    assert labclient.in_threads(worker, names) == []
    state = lab.state()
    assert all(vm["integration_services"]["guest_service_interface"]["enabled"] for vm in state["vms"].values())
    assert state["counters"]["writes"] == 20  # each VM changed exactly once
    assert state["counters"]["commands"] == 20 and state["counters"]["calls"] == 20
