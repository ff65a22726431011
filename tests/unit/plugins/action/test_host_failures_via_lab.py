"""What a user sees when the host cannot run the library, or cannot read one VM: the action plugins run
for real against an in-process lab (tests/support/lab_actions.py), no ansible-playbook."""

from __future__ import annotations

import base64
import copy

from support.lab_actions import LAB, run_action

from ansible_collections.hyperv.integration.plugins.action import (
    vm_integration_service,
    vm_integration_service_info,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell

GSI = {"guest_service_interface": "enabled"}


def _lab(*faults: dict) -> dict:
    spec = copy.deepcopy(LAB)
    spec["faults"] = list(faults)
    return spec


def test_constrained_language_mode_is_named_and_nothing_runs() -> None:
    spec = _lab({"type": "language_mode", "mode": "ConstrainedLanguage"})
    result, connection = run_action(
        vm_integration_service.ActionModule, {"name": "web01", "services": GSI}, "hv01", lab_spec=spec
    )
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("Hyper-V host hv01: PowerShell there runs in ConstrainedLanguage mode")
    assert "AppLocker or Windows Defender Application Control" in result["msg"]
    assert result["msg"].endswith("Nothing was changed.")
    assert "may have applied" not in result["msg"]
    assert connection.lab is not None and connection.lab.host.counters.snapshot().get("writes", 0) == 0


def test_unsupported_powershell_version_line_is_explained() -> None:
    try:
        _powershell.parse_output("HYPERV_INTEGRATION_UNSUPPORTED powershell_version=4.0\r\n", "", 1, "0" * 32)
    except _powershell.UnsupportedHostError as exc:
        assert "needs Windows PowerShell 5.1 or later, and PowerShell there is version 4.0" in str(exc)
    else:
        raise AssertionError("no UnsupportedHostError")


def test_info_answers_the_other_vms_when_one_cannot_be_read() -> None:
    spec = _lab({"type": "vm_read_error", "vm": "db01", "message": "Der virtuelle Computer wurde gelöscht."})
    result, _connection = run_action(vm_integration_service_info.ActionModule, {}, "hv01", lab_spec=spec)
    assert "failed" not in result, result
    by_name = {vm["name"]: vm for vm in result["vms"]}
    assert by_name["db01"]["error"] == "Der virtuelle Computer wurde gelöscht."
    assert by_name["db01"]["integration_services"] == [] and by_name["db01"]["state"] is None
    assert by_name["web01"]["error"] is None and len(by_name["web01"]["integration_services"]) == 6
    assert result["warnings"] == [
        "Hyper-V host hv01: VM 'db01' could not be read: Der virtuelle Computer wurde gelöscht."
    ]


def test_set_changes_the_other_vms_and_says_which_one_could_not_be_read() -> None:
    spec = _lab({"type": "vm_read_error", "vm": "db01"})
    args = {"name": ["web01", "db01"], "services": GSI}
    result, connection = run_action(vm_integration_service.ActionModule, args, "hv01", lab_spec=spec)
    assert result["failed"] is True and result["changed"] is True
    assert "VM 'db01' could not be read, so nothing was changed on it: Hyper-V was unable to find" in result["msg"]
    assert "Done: VM 'web01' guest_service_interface enabled" in result["msg"]
    assert connection.lab is not None and connection.lab.host.counters.snapshot()["writes"] == 1


def test_listing_errors_with_no_vm_fail_the_info_call() -> None:
    from ansible_collections.hyperv.integration.plugins.plugin_utils._host_report import listing_problem

    errors = [{"type": "X", "message": "Zugriff verweigert", "category": "PermissionDenied"}]
    assert listing_problem("hv01", errors) == (
        "Hyper-V host hv01 could not list its VMs: Zugriff verweigert The account needs to be a member of the host's "
        "'Hyper-V Administrators' group (or an administrator)."
    )


def test_a_service_asked_for_twice_is_refused_before_anything_is_sent() -> None:
    from ansible_collections.hyperv.integration.plugins.action import hvsocket_service

    args = {
        "services": [
            {"vsock_port": 80, "name": "a"},
            {"service_id": "00000050-facb-11e6-bd58-64006a7986d3", "name": "b"},
        ]
    }
    result, connection = run_action(hvsocket_service.ActionModule, args, "hv01")
    assert result["failed"] is True
    assert result["msg"] == (
        "services: items 1 and 2 are both 00000050-FACB-11E6-BD58-64006A7986D3; give each service once. "
        "Nothing was changed."
    )
    assert connection.requests == []


def test_a_large_answer_is_read_whole() -> None:
    # 1500 VMs answer more JSON than the 2,097,152 characters PowerShell 3.0/4.0's serializer allowed;
    # 5.1 allows Int32.MaxValue (docs/dev/powershell-facts.md, "JSON size"). The controller reads it whole.
    spec = {"host": {"name": "hv01"}, "vms": [{"name": "vm-%04d-%s" % (i, "x" * 40)} for i in range(1500)]}
    result, connection = run_action(vm_integration_service_info.ActionModule, {}, "hv01", lab_spec=spec)
    assert "failed" not in result, result.get("msg")
    assert len(result["vms"]) == 1500 and all(len(vm["integration_services"]) == 6 for vm in result["vms"])
    payload = connection.results[0].stdout.decode().split("\r\n")[1]
    assert len(base64.b64decode(payload).decode("utf-8")) > 2_097_152


def test_one_vm_named_twice_in_vms_is_refused_by_the_host_and_nothing_changes() -> None:
    args = {
        "vms": [
            {"name": "WEB01", "services": {"guest_service_interface": "enabled"}},
            {"name": "web01", "services": {"guest_service_interface": "disabled"}},
        ]
    }
    result, connection = run_action(vm_integration_service.ActionModule, args, "hv01")
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == (
        "on Hyper-V host hv01: VM 'web01' is named twice in vms ('WEB01', 'web01'); give it one entry. "
        "Nothing was changed."
    )
    assert [r["params"]["vm_names"] for r in connection.requests] == [["WEB01", "web01"]]  # the host decided
    assert connection.lab is not None and connection.lab.host.counters.snapshot().get("writes", 0) == 0
