from __future__ import annotations

import base64
import json
import os

import pytest
from ansible.plugins.loader import shell_loader
from ansible.plugins.shell.powershell import _common_args

from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell as ps

HOSTILE = 'Prüf\'VM "$(Remove-Item C:\\ -Recurse)" `whoami`; {ウェブ 01}'


def _decode_command(command: str) -> str:
    assert command.startswith("PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand ")
    return base64.b64decode(command.split(" ")[-1]).decode("utf-16-le")


def test_command_is_the_fixed_bootstrap_and_short() -> None:
    command = ps.build_command(shell_loader.get("powershell"))
    script = _decode_command(command)
    assert script.splitlines()[0] == "# hyperv.integration bootstrap protocol=1"
    assert len(command) < 8191  # cmd.exe command line limit (docs/dev/hyperv-facts.md section 1)


def test_non_powershell_shell_is_refused_with_advice() -> None:
    with pytest.raises(ps.NotPowerShellError, match="ansible_shell_type=powershell"):
        ps.build_command(shell_loader.get("sh"))


def test_stdin_carries_library_and_request_as_base64_lines() -> None:
    request = ps.build_request("vm_integration_service_set", {"vm_names": [HOSTILE]}, True, nonce="ab" * 16)
    lines = ps.build_stdin(ps.library_text(ps.HOST_LIBRARY), request).decode("ascii").splitlines()
    assert len(lines) == 2
    library = base64.b64decode(lines[0]).decode("utf-8")
    assert ps.LIBRARY_MARKER in library.splitlines()
    decoded = json.loads(base64.b64decode(lines[1]).decode("utf-8"))
    assert decoded["params"]["vm_names"] == [HOSTILE]
    assert decoded == {
        "protocol": 1,
        "nonce": "ab" * 16,
        "operation": "vm_integration_service_set",
        "check_mode": True,
        "params": {"vm_names": [HOSTILE]},
    }


def test_stdin_is_only_base64_whatever_the_values() -> None:
    # Only base64 travels: no quote, $, backtick or non-ASCII byte of a value can reach PowerShell text.
    request = ps.build_request("vm_integration_service_info", {"vm_names": [HOSTILE]}, False)
    stdin = ps.build_stdin(ps.library_text(ps.HOST_LIBRARY), request)
    assert set(stdin) <= set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n")


def test_date_shaped_text_is_never_written_in_the_form_powershell_5_1_reads_as_a_date() -> None:
    # Windows PowerShell 5.1's ConvertFrom-Json reads only "\\/Date(...)\\/" as a date: the request must
    # never escape the slash (docs/dev/powershell-facts.md, "JSON dates").
    names = ["/Date(0)/", "\\/Date(1)\\/", "2024-01-01T10:00:00"]
    request = ps.build_request("vm_integration_service_info", {"vm_names": names}, False)
    line = ps.build_stdin(ps.library_text(ps.HOST_LIBRARY), request).decode("ascii").splitlines()[1]
    text = base64.b64decode(line).decode("utf-8")
    assert '"\\/Date(' not in text
    assert json.loads(text)["params"]["vm_names"] == names


def test_a_library_without_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="marker"):
        ps.build_stdin("Write-Output 1", ps.build_request("x", {}, False))


def _output(nonce: str, response: object) -> str:
    encoded = base64.b64encode(json.dumps(response).encode("utf-8")).decode("ascii")
    return "noise\r\nHYPERV_INTEGRATION_BEGIN_%s\r\n%s\r\nHYPERV_INTEGRATION_END_%s\r\n" % (nonce, encoded, nonce)


def test_parse_output_finds_the_answer_between_markers() -> None:
    response = {"protocol": 1, "ok": True, "result": {"vms": [{"name": "ウェブ 01"}]}, "error": None}
    assert ps.parse_output(_output("n1", response), "", 0, "n1") == response
    assert ps.result_of(response) == {"vms": [{"name": "ウェブ 01"}]}


def test_markers_of_another_call_are_not_trusted() -> None:
    response = {"protocol": 1, "ok": True, "result": {}, "error": None}
    with pytest.raises(ps.PowerShellCallError, match="no answer"):
        ps.parse_output(_output("other", response), "", 0, "mine")


def test_no_answer_reports_stderr() -> None:
    with pytest.raises(ps.PowerShellCallError, match="The term 'Get-VM' is not recognized"):
        ps.parse_output("", "The term 'Get-VM' is not recognized", 1, "n")


def test_reported_error_becomes_host_operation_error() -> None:
    response = {
        "protocol": 1,
        "ok": False,
        "result": None,
        "error": {
            "type": "Microsoft.HyperV.PowerShell.VirtualizationException",
            "message": "Sie haben keine Berechtigung",
            "category": "PermissionDenied",
            "vm": None,
            "service": None,
        },
    }
    with pytest.raises(ps.HostOperationError) as info:
        ps.result_of(ps.parse_output(_output("n", response), "", 0, "n"))
    assert info.value.category == "PermissionDenied"
    assert info.value.error_message == "Sie haben keine Berechtigung"


def test_every_shipped_library_has_the_marker_once() -> None:
    folder = os.path.dirname(ps.__file__) + "/powershell"
    bodies = [n for n in os.listdir(folder) if n.endswith(".ps1") and not n.startswith(("_", "bootstrap"))]
    assert sorted(bodies) == sorted([ps.HOST_LIBRARY, ps.WINDOWS_GUEST_LIBRARY])
    for name in bodies:
        lines = ps.library_text(name).splitlines()
        assert lines.count(ps.LIBRARY_MARKER) == 1, name
        assert lines[0] == ps.LIBRARY_MARKER  # comments only before the param block, which must come first
        assert not [line for line in lines if line.lstrip().lower().startswith("#requires")]  # no effect there


def test_winrm_and_psrp_run_the_encoded_command_as_is() -> None:
    # winrm leaves a command alone when it starts with the shell's `encoded_prefix`; psrp decodes one
    # that starts with the common arguments and -EncodedCommand and feeds stdin's lines to $input,
    # which the bootstrap reads. (ansible/plugins/connection/winrm.py and psrp.py, exec_command.)
    shell = shell_loader.get("powershell")
    command = ps.build_command(shell)
    winrm_prefix = shell._encode_script("", as_list=False, strict_mode=False, preserve_rc=False)
    assert command.startswith(winrm_prefix)
    assert command.startswith(" ".join(_common_args) + " -EncodedCommand ")
    assert "$input" in _decode_command(command)
