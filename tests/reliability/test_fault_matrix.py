"""Fault matrix: each lab fault kind end to end, through real ansible-playbook runs, with its expected outcome.

One case per fault kind and per target (host module or role): every fault meets at least one target,
every target at least one fault, and the writing targets meet the faults that strike mid-write (an
answer lost after the command ran, one write failing among many). Every other (target, fault) pair is
asserted at the action plugins, in milliseconds: tests/unit/plugins/action/test_fault_outcomes.py.

For every case: the first run meets the fault; its outcome is asserted (a clear error naming the host
and, where there is one, the VM or service; what was done; or success); nothing outside the request
changed; the rerun (the fault has fired its one time) converges; a third run changes nothing.
The outcome table is in docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import escaped_lab, host_view, play, run_plays
from support.labspec import CONNECTIONS

GSI = "guest_service_interface"
VMS = ["web01", "web02", "web03"]
DECOY = "web04"  # on the same host, never named: must never change
PORTS = [50001, 50002, 50003]


def port_guid(port: int) -> str:
    return "%08X-FACB-11E6-BD58-64006A7986D3" % port


FAULTS = {
    "drop_receive": {"type": "drop_connection", "at": "receive", "times": 1},
    "drop_send": {"type": "drop_connection", "at": "send", "times": 1},
    "one_of_many": None,  # per target: write_error on web02, registry_error on the second service
    "access_denied": {"type": "access_denied", "times": 1},
    "slow_host": {"type": "delay", "seconds": 2.5, "times": 1},
    "task_timeout": {"type": "delay", "seconds": 4, "times": 1},
}
# The slow host answers after the WS-Management OperationTimeout: pywinrm/pypsrp and ansible must poll
# again (never run the command again). ssh has no such timeout: the session just waits for the answer.
# The timed-out task has a task timeout shorter than the host's answer.
SHORT_POLL = {
    "winrm": {"ansible_winrm_operation_timeout_sec": 1, "ansible_winrm_read_timeout_sec": 2},
    "psrp": {"ansible_psrp_operation_timeout": 1, "ansible_psrp_read_timeout": 2},
    "ssh": {},
}
TASK_TIMEOUT = 2

WRITE_TARGETS = ["vm_integration_service", "hvsocket_service", "role_integration_services", "role_hvsocket"]
READ_TARGETS = ["vm_integration_service_info", "hvsocket_service_info"]
CASES = [
    ("vm_integration_service", "one_of_many"),  # write_error on web02's GSI
    ("vm_integration_service", "slow_host"),  # polled past the OperationTimeout: the writes run once
    ("hvsocket_service", "drop_receive"),  # the registrations were made, the answer was lost
    ("role_integration_services", "drop_send"),  # the role's host-side call never ran
    ("role_integration_services", "task_timeout"),  # ANSIBLE_TASK_TIMEOUT (a role's tasks)
    ("role_hvsocket", "one_of_many"),  # registry_error on the second registration
    ("vm_integration_service_info", "task_timeout"),  # the task's own timeout keyword
    ("hvsocket_service_info", "access_denied"),
]
assert {fault for _target, fault in CASES} == set(FAULTS), "every fault kind end to end"
assert {target for target, _fault in CASES} == set(WRITE_TARGETS + READ_TARGETS), "every target end to end"
# Over psrp and ssh: one case per fault kind, each on a target of another kind than over winrm where
# that costs nothing, so that every fault kind meets each connection's way of carrying a call.
OTHER_CONNECTION_CASES = [
    ("vm_integration_service", "drop_receive"),
    ("role_integration_services", "drop_send"),
    ("hvsocket_service", "one_of_many"),
    ("vm_integration_service_info", "access_denied"),
    ("vm_integration_service", "slow_host"),
    ("hvsocket_service_info", "task_timeout"),
]
assert {fault for _target, fault in OTHER_CONNECTION_CASES} == set(FAULTS), "every fault kind per connection"
ALL_CASES = [("winrm", t, f) for t, f in CASES] + [
    (c, t, f) for c in CONNECTIONS if c != "winrm" for t, f in OTHER_CONNECTION_CASES
]


def one_of_many(target: str) -> dict:
    if target in ("hvsocket_service", "role_hvsocket"):
        return {"type": "registry_error", "service_id": port_guid(PORTS[1]), "times": 1}
    return {"type": "write_error", "vm": "web02", "service": GSI, "times": 1}


def tasks_for(target: str, timeout: bool) -> tuple[str, list[dict]]:
    """(play hosts, tasks) of one run."""
    extra = {"timeout": TASK_TIMEOUT} if timeout else {}
    if target == "vm_integration_service":
        args = {"name": VMS, "services": {GSI: "enabled", "vss": "disabled"}}
        return "hyperv_hosts", [dict({"name": "t", "hyperv.integration.vm_integration_service": args}, **extra)]
    if target == "vm_integration_service_info":
        return "hyperv_hosts", [dict({"name": "t", "hyperv.integration.vm_integration_service_info": {}}, **extra)]
    if target == "hvsocket_service":
        args = {"services": [{"name": "svc-%d" % p, "vsock_port": p} for p in PORTS]}
        return "hyperv_hosts", [dict({"name": "t", "hyperv.integration.hvsocket_service": args}, **extra)]
    if target == "hvsocket_service_info":
        return "hyperv_hosts", [dict({"name": "t", "hyperv.integration.hvsocket_service_info": {}}, **extra)]
    role = target.removeprefix("role_")
    task = {"name": "t", "ansible.builtin.include_role": {"name": "hyperv.integration." + role}}
    if role == "hvsocket":
        task["vars"] = {"hvsocket_services": [{"name": "svc-%d" % p, "vsock_port": p} for p in PORTS]}
    return "guests", [task]


def wanted(state: dict, target: str) -> bool:
    """Whether the host is as the target asks."""
    if target in ("vm_integration_service", "role_integration_services"):
        return all(
            state["vms"][vm]["integration_services"][GSI]["enabled"]
            and not state["vms"][vm]["integration_services"]["vss"]["enabled"]
            for vm in VMS
        )
    if target in ("hvsocket_service", "role_hvsocket"):
        return all(state["hvsocket_services"].get(port_guid(p)) == "svc-%d" % p for p in PORTS)
    return True


def outside(view: dict) -> dict:
    """The part of the host no target may touch: the decoy VM, every IC but GSI and vss, the built-ins."""
    return {
        "decoy": view["vms"][DECOY],
        "others": {vm: {k: v for k, v in ics.items() if k not in (GSI, "vss")} for vm, ics in view["vms"].items()},
        "registry": [e for e in view["hvsocket"] if e["service_id"] not in {port_guid(p) for p in PORTS}],
    }


@pytest.mark.parametrize(("connection", "target", "fault"), ALL_CASES, ids=["%s-%s-%s" % c for c in ALL_CASES])
def test_fault(tmp_path: Path, connection: str, target: str, fault: str) -> None:
    spec = one_of_many(target) if fault == "one_of_many" else FAULTS[fault]
    labfile = {
        "host": {"name": "hv01", "language": "de-DE", "connection": connection},
        "vms": [{"name": n, "guest": "windows"} for n in [*VMS, DECOY]],
        "faults": [spec],
    }
    with escaped_lab(tmp_path / "lab", labfile) as lab:
        _run_case(tmp_path, lab, connection, target, fault)


def _run_case(tmp_path: Path, lab, connection: str, target: str, fault: str) -> None:
    guests = {n: {"hyperv_vm_name": n} for n in VMS}
    inventory = {
        "all": {
            "children": {
                "hyperv_hosts": {"vars": SHORT_POLL[connection] if fault == "slow_host" else {}},
                # the roles' guests: the three named VMs (the decoy's guest is left out of the play)
                "guests": {"vars": {"hyperv_integration_services": {GSI: True, "vss": False}}},
            },
            "hosts": guests,
        }
    }
    hosts, tasks = tasks_for(target, timeout=(fault == "task_timeout"))
    if hosts == "guests":
        hosts = ",".join(VMS)
    start = lab.state()
    writes_at_start = start["counters"]["writes"]

    # A role's tasks take the timeout from the configuration (the keyword on include_role does not pass on).
    env = {"ANSIBLE_TASK_TIMEOUT": str(TASK_TIMEOUT)} if fault == "task_timeout" and hosts != "hyperv_hosts" else None
    first = run_plays(tmp_path, lab, [play(hosts, tasks)], name="first", extra_inventory=inventory, env_extra=env)
    after_first = lab.state()
    msgs = first.failure_messages()
    joined = "\n".join(msgs)
    writer = target in WRITE_TARGETS

    if fault == "slow_host":
        assert first.rc == 0, first.stdout
        assert wanted(after_first, target)
        # Polled past the OperationTimeout, yet the command ran once: one host command per host-side task.
        assert after_first["host"]["counters"]["commands"] - start["host"]["counters"]["commands"] == (
            2 if target == "role_integration_services" else 1
        )
    else:
        assert first.rc != 0, first.stdout
        assert msgs, first.stdout
    if fault in ("drop_receive", "drop_send"):
        assert "hv01" in joined and "connection failed" in joined, joined
        if writer:
            assert "rerun the task, it converges" in joined, joined
    if fault == "drop_send":  # the command never ran
        assert host_view(after_first) == host_view(start)
    if fault == "drop_receive" and writer:  # it ran; only the answer was lost
        assert wanted(after_first, target)
    if fault == "access_denied":
        assert "hv01" in joined and "Hyper-V Administrators" in joined, joined
        if writer:
            assert "Nothing was changed" in joined, joined
        assert host_view(after_first) == host_view(start)
    if fault == "one_of_many":
        if target in ("vm_integration_service", "role_integration_services"):
            assert "1 change(s) failed: VM 'web02' guest_service_interface" in joined, joined
            assert "VM 'web01' guest_service_interface enabled" in joined  # what was done
            assert "Rerun the task to converge" in joined
            state = after_first["vms"]
            assert not state["web02"]["integration_services"][GSI]["enabled"]
            assert all(state[vm]["integration_services"][GSI]["enabled"] for vm in ("web01", "web03"))
            assert not any(state[vm]["integration_services"]["vss"]["enabled"] for vm in VMS)
        else:
            assert port_guid(PORTS[1]) in joined and "is denied" in joined, joined
            assert "Changed: %s, %s" % (port_guid(PORTS[0]), port_guid(PORTS[2])) in joined, joined
            assert port_guid(PORTS[1]) not in after_first["hvsocket_services"]
    if fault == "task_timeout":
        assert "Timed out after %d second(s)" % TASK_TIMEOUT in joined, joined
    # Nothing outside the request changed, whatever happened.
    assert outside(host_view(after_first)) == outside(host_view(start))

    rerun = run_plays(tmp_path, lab, [play(hosts, tasks)], name="rerun", extra_inventory=inventory)
    assert rerun.rc == 0, rerun.stdout
    converged = lab.state()
    assert wanted(converged, target)
    assert outside(host_view(converged)) == outside(host_view(start))
    if writer:
        # Each IC or entry was written once in all: nothing was written twice, nothing lost.
        expected = 2 * len(VMS) if target in ("vm_integration_service", "role_integration_services") else len(PORTS)
        assert converged["host"]["counters"]["writes"] - writes_at_start == expected
    else:
        assert converged["counters"]["writes"] == writes_at_start

    third = run_plays(tmp_path, lab, [play(hosts, tasks)], name="third", extra_inventory=inventory)
    assert third.rc == 0, third.stdout
    assert "changed=0" in third.stdout and "changed=1" not in third.stdout, third.stdout
    assert lab.state()["counters"]["writes"] == converged["counters"]["writes"]
