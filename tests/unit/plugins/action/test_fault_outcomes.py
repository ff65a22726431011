"""Each fault of the end-to-end fault matrix against each target, at the action plugins: what the user
reads and what the host is left with.

tests/reliability/test_fault_matrix.py runs one ansible-playbook case per fault kind and per target; the
combinations it leaves out are asserted here, where they cost milliseconds. The action plugins run for
real (ActionModule.run) against the in-process lab (tests/support/lab_actions.py), with the matrix's lab:
host hv01 (de-DE), web01-web03 named by the tasks, web04 never named. A role's target is the host-side
call the role makes (its first host-side task: the module, with ``delegate_to`` the guest's Hyper-V
host); how a role passes the message on to its guests is the matrix's and tests/integration's to show.

Transport faults are played the way the connection plugin meets them: a dropped connection raises
before the command ran (``send``) or after it ran (``receive``); a task timeout is ansible's own
TaskTimeoutError, raised while the answer is held back; a slow host's late answer is, once pywinrm has
polled for it, an ordinary answer.
"""

from __future__ import annotations

import typing as t

import pytest
from ansible.errors import AnsibleConnectionFailure
from support.lab_actions import LabConnection, lab_connection, run_with

from ansible_collections.hyperv.integration.plugins.action import (
    hvsocket_service,
    hvsocket_service_info,
    vm_integration_service,
    vm_integration_service_info,
)

try:
    from ansible._internal._errors._task_timeout import TaskTimeoutError  # ansible-core 2.19 and later
except ImportError:  # pragma: no cover - ansible-core 2.17, 2.18
    from ansible.executor.task_executor import TaskTimeoutError  # type: ignore[no-redef]

GSI = "guest_service_interface"
VMS = ["web01", "web02", "web03"]
DECOY = "web04"
PORTS = [50001, 50002, 50003]


def port_guid(port: int) -> str:
    return "%08X-FACB-11E6-BD58-64006A7986D3" % port


def lab_spec(*faults: dict) -> dict:
    return {
        "host": {"name": "hv01", "language": "de-DE"},
        "vms": [{"name": n, "guest": "windows"} for n in [*VMS, DECOY]],
        "faults": list(faults),
    }


class Target(t.NamedTuple):
    action: t.Any
    args: dict[str, t.Any]
    delegated_from: str | None  # a role's host-side task runs for a guest, delegated to its host
    writes: int  # what a run that succeeds writes: 2 ICs on each VM, or 3 registrations; 0 for a read


HV_SERVICES = [{"name": "svc-%d" % p, "vsock_port": p} for p in PORTS]
TARGETS = {
    "vm_integration_service": Target(
        vm_integration_service.ActionModule, {"name": VMS, "services": {GSI: "enabled", "vss": "disabled"}}, None, 6
    ),
    "hvsocket_service": Target(hvsocket_service.ActionModule, {"services": HV_SERVICES}, None, 3),
    # roles/integration_services: one call for all the play's guests on the host, their wishes as booleans.
    "role_integration_services": Target(
        vm_integration_service.ActionModule,
        {"vms": [{"name": n, "services": {GSI: True, "vss": False}} for n in VMS]},
        "web01",
        6,
    ),
    "role_hvsocket": Target(hvsocket_service.ActionModule, {"services": HV_SERVICES}, "web01", 3),
    "vm_integration_service_info": Target(vm_integration_service_info.ActionModule, {}, None, 0),
    "hvsocket_service_info": Target(hvsocket_service_info.ActionModule, {}, None, 0),
}
WRITERS = [name for name, target in TARGETS.items() if target.writes]


def run(target: Target, connection: LabConnection, execute: t.Callable[..., dict] | None = None) -> dict:
    return run_with(
        target.action,
        dict(target.args),
        "hv01",
        execute or connection.execute,
        delegated_from=target.delegated_from,
    )


def host(connection: LabConnection) -> dict:
    """Every VM's IC enabled flags and the hv-socket registry, and the host's write count."""
    assert connection.lab is not None
    model = connection.lab.host.snapshot()
    return {
        "vms": {
            name: {key: ic["enabled"] for key, ic in vm["integration_services"].items()}
            for name, vm in model["vms"].items()
        },
        "hvsocket": model["hvsocket_services"],
        "writes": connection.lab.host.counters.snapshot().get("writes", 0),
    }


def as_asked(view: dict, name: str) -> bool:
    if name in ("vm_integration_service", "role_integration_services"):
        return all(view["vms"][vm][GSI] and not view["vms"][vm]["vss"] for vm in VMS)
    if name in ("hvsocket_service", "role_hvsocket"):
        return all(view["hvsocket"].get(port_guid(p)) == "svc-%d" % p for p in PORTS)
    return True


def assert_rerun_converges(target: Target, connection: LabConnection, name: str, start: dict) -> None:
    """The fault has fired its one time: a rerun succeeds, the host is as asked, every change was written
    once in all, the decoy VM is untouched; a third run changes nothing."""
    rerun = run(target, connection)
    assert not rerun.get("failed"), rerun.get("msg")
    after = host(connection)
    assert as_asked(after, name)
    assert after["writes"] - start["writes"] == target.writes
    assert after["vms"][DECOY] == start["vms"][DECOY]
    third = run(target, connection)
    assert not third.get("failed") and not third.get("changed"), third
    assert host(connection)["writes"] == after["writes"]


def dropped(connection: LabConnection, at: str) -> t.Callable[..., dict]:
    """The connection plugin losing the connection before the command ran (send), or after (receive)."""

    def execute(cmd: str, sudoable: bool = True, in_data: bytes | None = None, **kwargs: t.Any) -> dict:
        if at == "receive":
            connection.execute(cmd, sudoable, in_data, **kwargs)
        raise AnsibleConnectionFailure("winrm connection error: ('Connection aborted.', RemoteDisconnected())")

    return execute


@pytest.mark.parametrize("at", ["send", "receive"])
@pytest.mark.parametrize("name", list(TARGETS))
def test_a_dropped_connection_names_the_host_and_a_rerun_converges(name: str, at: str) -> None:
    target = TARGETS[name]
    connection = lab_connection("hv01", lab_spec())
    start = host(connection)
    result = run(target, connection, dropped(connection, at))
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("Hyper-V host hv01: the connection failed during the call: winrm connection")
    if target.writes:
        assert result["msg"].endswith(
            "The host may have applied some of the changes before the answer was lost; rerun the task, it converges."
        )
    else:
        assert "changes" not in result["msg"]  # a read has none to speak of
    after = host(connection)
    if at == "send" or not target.writes:  # the command never ran, or ran and wrote nothing
        assert after == start
    else:  # it ran; only the answer was lost
        assert as_asked(after, name) and after["writes"] - start["writes"] == target.writes
    assert_rerun_converges(target, connection, name, start)


@pytest.mark.parametrize("name", list(TARGETS))
def test_access_denied_names_the_group_and_nothing_changes(name: str) -> None:
    target = TARGETS[name]
    connection = lab_connection("hv01", lab_spec({"type": "access_denied", "times": 1}))
    start = host(connection)
    result = run(target, connection)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(
        "Hyper-V host hv01 reported an error: You do not have the required permission to complete this task."
    )
    group = "The account needs to be a member of the host's 'Hyper-V Administrators' group (or an administrator)."
    assert result["msg"].endswith(group + (" Nothing was changed." if target.writes else ""))
    assert host(connection) == start
    assert_rerun_converges(target, connection, name, start)


@pytest.mark.parametrize("name", ["vm_integration_service", "role_integration_services"])
def test_one_vm_failing_among_many_says_what_failed_and_what_was_done(name: str) -> None:
    target = TARGETS[name]
    connection = lab_connection("hv01", lab_spec({"type": "write_error", "vm": "web02", "service": GSI, "times": 1}))
    start = host(connection)
    result = run(target, connection)
    assert result["failed"] is True and result["changed"] is True
    msg = result["msg"]
    assert msg.startswith("Hyper-V host hv01: 1 change(s) failed: VM 'web02' guest_service_interface: "), msg
    assert "Done: VM 'web01' guest_service_interface enabled" in msg and "Rerun the task to converge" in msg, msg
    after = host(connection)
    assert not after["vms"]["web02"][GSI] and after["vms"]["web01"][GSI] and after["vms"]["web03"][GSI]
    assert not any(after["vms"][vm]["vss"] for vm in VMS)  # web02's other change still went through
    assert after["writes"] - start["writes"] == target.writes - 1
    assert_rerun_converges(target, connection, name, start)


@pytest.mark.parametrize("name", ["hvsocket_service", "role_hvsocket"])
def test_one_registration_failing_among_many_says_what_failed_and_what_was_done(name: str) -> None:
    target = TARGETS[name]
    failing = port_guid(PORTS[1])
    connection = lab_connection("hv01", lab_spec({"type": "registry_error", "service_id": failing, "times": 1}))
    start = host(connection)
    result = run(target, connection)
    assert result["failed"] is True and result["changed"] is True
    assert failing in result["msg"] and "is denied" in result["msg"], result["msg"]
    assert "Changed: %s, %s" % (port_guid(PORTS[0]), port_guid(PORTS[2])) in result["msg"], result["msg"]
    after = host(connection)
    assert failing not in after["hvsocket"] and after["writes"] - start["writes"] == 2
    assert_rerun_converges(target, connection, name, start)


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_late_answer_is_one_call_and_its_outcome(name: str) -> None:
    # slow_host: the answer comes after the WinRM OperationTimeout, and pywinrm polls again inside the
    # connection plugin; the action plugin must have made one call (never a second one) and report it.
    target = TARGETS[name]
    connection = lab_connection("hv01", lab_spec())
    start = host(connection)
    result = run(target, connection)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is bool(target.writes)
    assert len(connection.requests) == 1
    after = host(connection)
    assert as_asked(after, name) and after["writes"] - start["writes"] == target.writes


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_task_timeout_is_left_to_ansible_and_a_rerun_converges(name: str) -> None:
    # The host runs the command at once and holds the answer back; ansible's alarm fires meanwhile. The
    # plugin must not turn it into a message of its own (ansible reports "Timed out after N second(s).").
    target = TARGETS[name]
    connection = lab_connection("hv01", lab_spec())
    start = host(connection)

    def answer_held_back(cmd: str, sudoable: bool = True, in_data: bytes | None = None, **kwargs: t.Any) -> dict:
        connection.execute(cmd, sudoable, in_data, **kwargs)
        raise TaskTimeoutError(2)

    with pytest.raises(TaskTimeoutError):
        run(target, connection, answer_held_back)
    after = host(connection)
    assert as_asked(after, name) and after["writes"] - start["writes"] == target.writes  # applied all the same
    assert_rerun_converges(target, connection, name, start)
