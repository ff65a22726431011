"""What the user reads for each way a PowerShell call can go wrong, from recorded answers.

The action plugins run for real (ActionModule.run); ``_low_level_execute_command`` returns a recorded
answer (stdout, stderr, rc, or an exception from the connection), as ansible.windows tests its action
plugins. One test per kind of failure and per caller (host modules, the Windows guest side), so the
slow end-to-end fault matrix need not repeat every combination.
"""

from __future__ import annotations

import base64
import json
import typing as t

import pytest
from support.lab_actions import run_with

from ansible_collections.hyperv.integration.plugins.action import (
    guest_integration_service,
    hvsocket_service_info,
    vm_integration_service,
    vm_integration_service_info,
)

GSI = {"guest_service_interface": "enabled"}


def answering(answer: t.Callable[[dict], dict]) -> t.Callable[..., dict]:
    """An execute function that decodes the request and returns ``answer(request)``."""

    def execute(cmd: str, sudoable: bool = True, in_data: bytes | None = None, **_kwargs: t.Any) -> dict:
        lines = (in_data or b"").decode().split()
        return answer(json.loads(base64.b64decode(lines[1])))

    return execute


def envelope(request: dict, ok: bool, result: t.Any = None, error: dict | None = None) -> dict:
    response = {"protocol": 1, "operation": request["operation"], "ok": ok, "result": result, "error": error}
    payload = base64.b64encode(json.dumps(response).encode()).decode()
    nonce = request["nonce"]
    return {
        "rc": 0,
        "stdout": "HYPERV_INTEGRATION_BEGIN_%s\r\n%s\r\nHYPERV_INTEGRATION_END_%s\r\n" % (nonce, payload, nonce),
        "stderr": "",
    }


def raw(stdout: str = "", stderr: str = "", rc: int = 1) -> t.Callable[..., dict]:
    return answering(lambda _request: {"rc": rc, "stdout": stdout, "stderr": stderr})


def raising(exc: Exception) -> t.Callable[..., dict]:
    def execute(*_args: t.Any, **_kwargs: t.Any) -> dict:
        raise exc

    return execute


SET = (vm_integration_service.ActionModule, {"name": "web01", "services": GSI}, "hv01")
INFO = (vm_integration_service_info.ActionModule, {}, "hv01")
GUEST = (guest_integration_service.ActionModule, {"services": {"vss": "started"}}, "web01")


def test_no_answer_names_the_host_and_shows_stderr_and_says_a_rerun_converges() -> None:
    result = run_with(*SET, raw(stderr="Get-VM : Der Begriff wurde nicht erkannt", rc=1))
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("Hyper-V host hv01: the PowerShell library gave no answer (rc=1): Get-VM : Der")
    assert "may have applied some of the changes" in result["msg"] and "rerun the task, it converges" in result["msg"]


def test_no_answer_on_a_read_does_not_talk_of_changes() -> None:
    result = run_with(*INFO, raw(stdout="", stderr="", rc=1))
    assert result["msg"] == "Hyper-V host hv01: the PowerShell library gave no answer (rc=1): no output."


def test_unreadable_answer_and_wrong_protocol() -> None:
    def garbage(request: dict) -> dict:
        nonce = request["nonce"]
        return {
            "rc": 0,
            "stdout": "HYPERV_INTEGRATION_BEGIN_%s\n//79\nHYPERV_INTEGRATION_END_%s" % (nonce, nonce),
            "stderr": "",
        }

    assert "answered something unreadable" in run_with(*INFO, answering(garbage))["msg"]

    def old(request: dict) -> dict:
        answer = envelope(request, True, {})
        answer["stdout"] = answer["stdout"].replace(
            answer["stdout"].split("\r\n")[1],
            base64.b64encode(json.dumps({"protocol": 0}).encode()).decode(),
        )
        return answer

    assert "answered with an unexpected protocol" in run_with(*INFO, answering(old))["msg"]


def test_permission_denied_before_any_write_says_nothing_changed_and_what_to_do() -> None:
    error = {
        "type": "Microsoft.HyperV.PowerShell.VirtualizationException",
        "message": "Sie verfügen nicht über die erforderliche Berechtigung.",
        "category": "PermissionDenied",
        "vm": None,
        "service": None,
    }
    result = run_with(*SET, answering(lambda request: envelope(request, False, error=error)))
    assert result["msg"] == (
        "Hyper-V host hv01 reported an error: Sie verfügen nicht über die erforderliche Berechtigung. The account "
        "needs to be a member of the host's 'Hyper-V Administrators' group (or an administrator). Nothing was changed."
    )


def test_a_connection_failure_during_the_call() -> None:
    result = run_with(*SET, raising(ConnectionError("winrm: read timed out")))
    assert result["msg"].startswith("Hyper-V host hv01: the connection failed during the call: winrm: read timed out.")
    assert "rerun the task, it converges" in result["msg"]


def test_a_refusal_quoted_in_a_failed_stdin_send_is_still_explained() -> None:
    # ansible's winrm connection raises this when the stdin send fails and stdout is no JSON.
    exc = RuntimeError(
        "winrm send_input failed; \nstdout: HYPERV_INTEGRATION_UNSUPPORTED language_mode=ConstrainedLanguage\r\n"
        "\nstderr "
    )
    result = run_with(*SET, raising(exc))
    assert "runs in ConstrainedLanguage mode" in result["msg"] and result["msg"].endswith("Nothing was changed.")


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("HYPERV_INTEGRATION_UNSUPPORTED language_mode=ConstrainedLanguage\r\n", "runs in ConstrainedLanguage mode"),
        ("HYPERV_INTEGRATION_UNSUPPORTED powershell_version=4.0\r\n", "PowerShell there is version 4.0"),
    ],
)
def test_the_bootstraps_refusals_on_host_and_guest(stdout: str, expected: str) -> None:
    host = run_with(*INFO, raw(stdout=stdout, rc=1))
    assert host["msg"].startswith("Hyper-V host hv01: ") and expected in host["msg"]
    assert "Nothing was changed" not in host["msg"]  # a read
    guest = run_with(*GUEST, raw(stdout=stdout, rc=1))
    assert guest["msg"].startswith("Windows guest web01: ") and expected in guest["msg"]
    assert guest["msg"].endswith("Nothing was changed.")


def test_guest_error_answer_and_no_answer() -> None:
    error = {
        "type": "System.InvalidOperationException",
        "message": "Zugriff verweigert",
        "category": "PermissionDenied",
    }
    result = run_with(*GUEST, answering(lambda request: envelope(request, False, error=error)))
    assert result["msg"] == (
        "Windows guest web01 reported an error: Zugriff verweigert Managing services needs an administrator account "
        "in the guest. Nothing was changed."
    )
    lost = run_with(*GUEST, raw(stderr="boom", rc=1))
    assert lost["msg"].startswith("Windows guest web01: the PowerShell library gave no answer (rc=1): boom.")
    assert "rerun the task, it converges" in lost["msg"]


def test_not_a_powershell_connection_sends_nothing() -> None:
    from unittest.mock import MagicMock

    sent: list[t.Any] = []
    task = MagicMock()
    task.args, task.check_mode, task.diff, task.async_val, task.delegate_to = {}, False, False, 0, None
    conn = MagicMock()
    conn._shell = MagicMock(SHELL_FAMILY="sh")
    action = hvsocket_service_info.ActionModule(task, conn, MagicMock(), MagicMock(), MagicMock(), MagicMock())
    action._low_level_execute_command = lambda *a, **k: sent.append(a) or {}  # type: ignore[method-assign]
    result = action.run(task_vars={"inventory_hostname": "hv01"})
    assert result["failed"] is True and "set ansible_shell_type=powershell" in result["msg"] and sent == []


@pytest.mark.parametrize(
    ("category", "error_type"),
    [
        ("PermissionDenied", "Microsoft.HyperV.PowerShell.VirtualizationException"),
        ("NotSpecified", "System.UnauthorizedAccessException"),
        ("OperationStopped", "System.Security.SecurityException"),
    ],
)
def test_one_permission_test_for_both_callers(category: str, error_type: str) -> None:
    # The three ways a refusal for want of rights arrives are one test (_call_failure.is_permission_denied),
    # so host and guest give their hint for each of them.
    error = {"type": error_type, "message": "denied", "category": category, "vm": None, "service": None}
    refuse = answering(lambda request: envelope(request, False, error=error))
    assert "member of the host's 'Hyper-V Administrators' group" in run_with(*SET, refuse)["msg"]
    assert "needs an administrator account in the guest" in run_with(*GUEST, refuse)["msg"]


def test_an_error_that_is_no_refusal_gets_no_permission_hint() -> None:
    error = {"type": "System.InvalidOperationException", "message": "busy", "category": "InvalidOperation"}
    refuse = answering(lambda request: envelope(request, False, error=error))
    assert "Administrators" not in run_with(*SET, refuse)["msg"]
    assert "administrator account" not in run_with(*GUEST, refuse)["msg"]
