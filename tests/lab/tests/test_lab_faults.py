"""Fault injection from the LABFILE `faults:` list."""

from __future__ import annotations

import time
from typing import Any

import labclient
import pytest
import requests
from labclient import bootstrap_args, request, run, stdin_for
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError

GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
VSS = "5CED1297-4598-4915-A5FC-AD21BB4D02A4"
VMS = [{"name": "web01", "guest": "windows"}, {"name": "web02", "guest": "windows"}]
SET = "vm_integration_service_set"


def lab_with(make_lab: Any, *faults: dict[str, Any], language: str = "en-US") -> Any:
    return make_lab({"host": {"name": "HV-01", "language": language}, "vms": VMS, "faults": list(faults)})


def gsi_enabled(lab: Any, vm: str) -> bool:
    return lab.state()["vms"][vm]["integration_services"]["guest_service_interface"]["enabled"]


def test_write_error_fails_one_item_only(make_lab: Any) -> None:
    lab = lab_with(make_lab, {"type": "write_error", "vm": "WEB01", "service": "guest_service_interface", "times": 1})
    response = lab.set(["web01", "web02"], [{"guid": GSI, "enabled": True}, {"guid": VSS, "enabled": False}])
    assert response["ok"] is True
    web01, web02 = response["result"]["vms"]
    gsi, vss = web01["integration_services"]
    assert (gsi["before"], gsi["after"], gsi["changed"]) == (False, False, False)
    assert gsi["error"]["type"] == "Microsoft.HyperV.PowerShell.VirtualizationException"
    assert "Guest Service Interface" in gsi["error"]["message"] and "web01" in gsi["error"]["message"]
    assert vss["changed"] is True and vss["error"] is None  # the next item still ran
    assert all(item["changed"] and item["error"] is None for item in web02["integration_services"])
    assert lab.counters()["writes"] == 3
    assert not gsi_enabled(lab, "web01") and gsi_enabled(lab, "web02")
    # times: 1 -> used up; the retry succeeds.
    retry = lab.set(["web01"], [{"guid": GSI, "enabled": True}])["result"]
    assert retry["vms"][0]["integration_services"][0]["changed"] is True


def test_write_error_custom_message_and_check_mode(make_lab: Any) -> None:
    lab = lab_with(
        make_lab,
        {
            "type": "write_error",
            "vm": "web01",
            "service": "guest_service_interface",
            "message": "Der Vorgang ist fehlgeschlagen.",
        },
    )
    # Check mode never writes, so the fault does not fire.
    item = lab.set(["web01"], [{"guid": GSI, "enabled": True}], check_mode=True)["result"]["vms"][0][
        "integration_services"
    ][0]
    assert item["error"] is None and item["after"] is True
    for _attempt in range(2):  # unlimited
        item = lab.set(["web01"], [{"guid": GSI, "enabled": True}])["result"]["vms"][0]["integration_services"][0]
        assert item["error"]["message"] == "Der Vorgang ist fehlgeschlagen."
    assert lab.state()["endpoints"]["HV-01"]["faults"][0]["triggered"] == 2


def test_access_denied(make_lab: Any) -> None:
    lab = lab_with(make_lab, {"type": "access_denied", "times": 2})
    for operation, params in (
        (SET, {"vm_names": ["web01"], "changes": [{"guid": GSI, "enabled": True}]}),
        ("vm_integration_service_info", {"vm_names": None}),
    ):
        response = lab.call(operation, params)
        assert response["ok"] is False and response["result"] is None
        assert response["error"] == {
            "type": "Microsoft.HyperV.PowerShell.VirtualizationException",
            "message": "You do not have the required permission to complete this task. Contact the "
            "authorization policy administrator for the computer 'HV-01'.",
            "category": "PermissionDenied",
            "vm": None,
            "service": None,
        }
    assert lab.counters()["writes"] == 0 and not gsi_enabled(lab, "web01")
    assert lab.info()["vms"]  # times: 2 used up


def test_delay_holds_output_back(make_lab: Any) -> None:
    lab = lab_with(make_lab, {"type": "delay", "seconds": 0.6, "times": 1})
    start = time.monotonic()
    lab.info()
    assert time.monotonic() - start >= 0.6
    start = time.monotonic()
    lab.info()
    assert time.monotonic() - start < 0.5


def test_delay_longer_than_operation_timeout(make_lab: Any) -> None:
    """Like WinRM, a Receive returns an OperationTimeout fault; pywinrm retries until Done."""
    lab = lab_with(make_lab, {"type": "delay", "seconds": 1.5})
    protocol = lab.protocol(timeout=1)
    shell = protocol.open_shell()
    command_id = protocol.run_command(shell, "PowerShell", bootstrap_args())
    req = request("vm_integration_service_info", {"vm_names": ["web01"]})
    protocol.send_command_input(shell, command_id, stdin_for(req), end=True)
    with pytest.raises(WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell, command_id)
    stdout, stderr, rc = protocol.get_command_output(shell, command_id)
    assert rc == 0 and labclient.Output(rc, stdout, stderr).response(req["nonce"])["ok"]


def test_drop_connection_at_receive_after_the_write(make_lab: Any) -> None:
    lab = lab_with(make_lab, {"type": "drop_connection", "times": 1})  # at: receive is the default
    req = request(SET, {"vm_names": ["web01"], "changes": [{"guid": GSI, "enabled": True}]})
    with pytest.raises(requests.exceptions.ConnectionError):
        run(lab.protocol(), "PowerShell", bootstrap_args(), stdin_for(req))
    assert gsi_enabled(lab, "web01") and lab.counters()["writes"] == 1  # it ran, the answer was lost
    item = lab.set(["web01"], [{"guid": GSI, "enabled": True}])["result"]["vms"][0]["integration_services"][0]
    assert item["changed"] is False  # times: 1 used up; the retry sees the write


def test_drop_connection_at_send_never_runs(make_lab: Any) -> None:
    lab = lab_with(make_lab, {"type": "drop_connection", "at": "send", "times": 1})
    protocol = lab.protocol()
    shell = protocol.open_shell()
    command_id = protocol.run_command(shell, "PowerShell", bootstrap_args())
    req = request(SET, {"vm_names": ["web01"], "changes": [{"guid": GSI, "enabled": True}]})
    with pytest.raises(requests.exceptions.ConnectionError):
        protocol.send_command_input(shell, command_id, stdin_for(req), end=True)
    # First Receive: what a client sees once OperationTimeout passes; then a plain fault.
    with pytest.raises(WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell, command_id)
    with pytest.raises(WSManFaultError):
        protocol.get_command_output_raw(shell, command_id)
    protocol.cleanup_command(shell, command_id)
    protocol.close_shell(shell)
    assert not gsi_enabled(lab, "web01")
    counters = lab.counters()
    assert counters["writes"] == 0 and counters["commands"] == 1 and counters["calls"] == 0
    assert lab.set(["web01"], [{"guid": GSI, "enabled": True}])["ok"]
    assert gsi_enabled(lab, "web01")


def test_vm_read_error_is_answered_on_that_vm_and_the_others_go_on(make_lab: Any) -> None:
    lab = lab_with(make_lab, {"type": "vm_read_error", "vm": "web01", "times": 2})
    info = lab.info()
    web01, web02 = info["vms"]
    assert web01["error"]["type"] == "Microsoft.HyperV.PowerShell.VirtualizationException"
    assert web01["error"]["category"] == "ObjectNotFound" and web01["error"]["vm"] == "web01"
    assert (web01["state"], web01["heartbeat"], web01["integration_services"]) == (None, None, [])
    assert web02["error"] is None and len(web02["integration_services"]) == 6
    response = lab.set(["web01", "web02"], [{"guid": GSI, "enabled": True}])
    web01, web02 = response["result"]["vms"]
    assert web01["error"]["category"] == "ObjectNotFound" and web01["integration_services"] == []
    assert web02["error"] is None and web02["integration_services"][0]["changed"] is True
    assert lab.counters()["writes"] == 1 and not gsi_enabled(lab, "web01") and gsi_enabled(lab, "web02")
    assert lab.info()["vms"][0]["error"] is None  # times: 2 used up


def test_language_mode_answers_the_bootstrap_line_and_runs_nothing(make_lab: Any) -> None:
    lab = lab_with(make_lab, {"type": "language_mode", "mode": "ConstrainedLanguage", "times": 1})
    req = request(SET, {"vm_names": ["web01"], "changes": [{"guid": GSI, "enabled": True}]})
    out = run(lab.client(), "PowerShell", bootstrap_args(), stdin_for(req))
    assert (out.rc, out.stdout) == (1, b"HYPERV_INTEGRATION_UNSUPPORTED language_mode=ConstrainedLanguage\r\n")
    assert lab.counters()["writes"] == 0 and not gsi_enabled(lab, "web01")
    assert lab.set(["web01"], [{"guid": GSI, "enabled": True}])["ok"] is True  # FullLanguage again


def test_vm_read_error_names_a_vm_of_the_lab(make_lab: Any) -> None:
    with pytest.raises(Exception, match="no VM named 'nosuch'"):
        lab_with(make_lab, {"type": "vm_read_error", "vm": "nosuch"})
