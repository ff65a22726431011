"""Recognition of library calls and loud rejection of everything else."""

from __future__ import annotations

import base64
import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import labclient
import pytest
import xmltodict
from labclient import FAKE_LIBRARY, bootstrap_args, encode_script, request, run, stdin_for

REPO = Path(__file__).resolve().parents[3]
INFO = "vm_integration_service_info"


def test_recognised_call_answers_between_markers(basic_lab: Any) -> None:
    req = request(INFO, {"vm_names": None})
    out = run(basic_lab.client(), "PowerShell", bootstrap_args(), stdin_for(req))
    assert out.rc == 0 and out.stderr == b""
    lines = out.stdout.decode().split("\r\n")  # Write-Output on Windows: CRLF
    assert lines[0] == f"HYPERV_INTEGRATION_BEGIN_{req['nonce']}"
    assert lines[2] == f"HYPERV_INTEGRATION_END_{req['nonce']}"
    response = json.loads(base64.b64decode(lines[1]))
    assert set(response) == {"protocol", "operation", "ok", "result", "error"}
    assert response["protocol"] == 1 and response["operation"] == INFO and response["ok"] is True
    assert response["error"] is None


def test_bootstrap_normalisation_and_switch_spellings(basic_lab: Any) -> None:
    # Leading blank lines / indentation are what ansible's normalisation removes anyway.
    script = "\n\n    # hyperv.integration bootstrap protocol=1   \n  $lines = @($input)\n"
    raw = base64.b64encode(script.encode("utf-16-le")).decode()
    for switch in ("-EncodedCommand", "-enc", "-e", "-ec"):
        req = request(INFO, {"vm_names": []})
        out = run(basic_lab.client(), "powershell.exe", [*labclient.POWERSHELL_ARGS, switch, raw], stdin_for(req))
        assert out.rc == 0, out.stderr_text
        assert out.response(req["nonce"])["result"] == {"vms": [], "missing": [], "ambiguous": {}, "vm_list_errors": []}


def test_arguments_as_separate_elements(basic_lab: Any) -> None:
    """pywinrm joins arguments into one <rsp:Arguments>; other clients send one per word."""
    protocol = basic_lab.client()
    shell = protocol.open_shell()
    message = {
        "env:Envelope": protocol.build_wsman_header(
            resource_uri="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
            action="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command",
            shell_id=shell,
        )
    }
    message["env:Envelope"]["env:Body"] = {
        "rsp:CommandLine": {"rsp:Command": "PowerShell", "rsp:Arguments": bootstrap_args()}
    }
    reply = ET.fromstring(protocol.send_message(xmltodict.unparse(message)))
    command_id = next(n for n in reply.iter() if n.tag.endswith("CommandId")).text
    req = request(INFO, {"vm_names": ["web01"]})
    protocol.send_command_input(shell, command_id, stdin_for(req), end=True)
    stdout, stderr, rc = protocol.get_command_output(shell, command_id)
    assert rc == 0, stderr
    assert labclient.Output(rc, stdout, stderr).response(req["nonce"])["result"]["vms"][0]["name"] == "web01"


def test_real_bootstrap_encoded_by_ansible_shell_plugin(basic_lab: Any) -> None:
    """The shipped bootstrap, encoded exactly as ansible's powershell shell plugin does it."""
    path = REPO / "plugins" / "plugin_utils" / "powershell" / "bootstrap.ps1"
    if not path.is_file():
        pytest.skip("plugins/plugin_utils/powershell/bootstrap.ps1 not present")
    from ansible.plugins.loader import shell_loader

    shell = shell_loader.get("powershell")
    words = shell._encode_script(path.read_text(encoding="utf-8"), as_list=True, strict_mode=False, preserve_rc=False)
    req = request(INFO, {"vm_names": None})
    out = run(basic_lab.client(), words[0], words[1:], stdin_for(req))
    assert out.rc == 0, out.stderr_text
    # With ansible's default strict_mode=True the first line becomes Set-StrictMode: not ours.
    words = shell._encode_script(path.read_text(encoding="utf-8"), as_list=True)
    out = run(basic_lab.client(), words[0], words[1:], stdin_for(request(INFO, {"vm_names": None})))
    assert out.rc == 1 and "Set-StrictMode" in out.stderr_text


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode()


GOOD_REQ = request(INFO, {"vm_names": None})


def _req(**changes: Any) -> dict[str, Any]:
    req = dict(GOOD_REQ, nonce=uuid.uuid4().hex)
    for key, value in changes.items():
        if value is _DELETE:
            del req[key]
        else:
            req[key] = value
    return req


_DELETE = object()
REJECTIONS = [
    ("cmd", ["/c", "whoami"], stdin_for(GOOD_REQ), "command not recognised"),
    ("PowerShell", ["-NoProfile", "-Command", "Get-VM"], stdin_for(GOOD_REQ), "no single -EncodedCommand"),
    ("PowerShell", ["-EncodedCommand", encode_script("Get-VM")], stdin_for(GOOD_REQ), "first line is 'Get-VM'"),
    ("PowerShell", ["-EncodedCommand", "%%%notbase64"], stdin_for(GOOD_REQ), "not base64 of UTF-16LE"),
    ("PowerShell", bootstrap_args(), None, "no stdin"),
    ("PowerShell", bootstrap_args(), _b64(FAKE_LIBRARY).encode(), "got 1"),
    ("PowerShell", bootstrap_args(), stdin_for(GOOD_REQ) + b"QUJD\r\n", "got 3"),
    ("PowerShell", bootstrap_args(), b"@@@\r\n" + _b64("{}").encode(), "stdin line 1 is not base64"),
    (
        "PowerShell",
        bootstrap_args(),
        stdin_for(GOOD_REQ, library="Write-Output 'hello'\n"),
        "no line '# HYPERV_INTEGRATION_LIBRARY protocol=1'",
    ),
    (
        "PowerShell",
        bootstrap_args(),
        stdin_for(GOOD_REQ, library="$x = 1 # HYPERV_INTEGRATION_LIBRARY protocol=1\n"),
        "not the hyperv.integration library",
    ),
    ("PowerShell", bootstrap_args(), stdin_for("{not json"), "not valid JSON"),
    (
        # Standard input read another way than $input: fine under powershell.exe, nothing over psrp.
        "PowerShell",
        bootstrap_args("# hyperv.integration bootstrap protocol=1\n$lines = [Console]::In.ReadToEnd()\n"),
        stdin_for(GOOD_REQ),
        "must read its input through $input",
    ),
    (
        "PowerShell",
        bootstrap_args("# hyperv.integration bootstrap protocol=1\n# $input only in a comment\n$x = 1\n"),
        stdin_for(GOOD_REQ),
        "must read its input through $input",
    ),
    (
        "PowerShell",
        bootstrap_args(),
        # JSON allows "\/" for "/"; Windows PowerShell 5.1 reads "\/Date(0)\/" as a [datetime], not as text.
        stdin_for(
            json.dumps(_req(operation="vm_integration_service_info", params={"vm_names": ["/Date(0)/"]})).replace(
                '"/Date(0)/"', '"\\/Date(0)\\/"'
            )
        ),
        "Windows PowerShell 5.1 would read it as a date",
    ),
    ("PowerShell", bootstrap_args(), stdin_for("[1, 2]"), "must be a JSON object"),
    ("PowerShell", bootstrap_args(), stdin_for(_req(check_mode=_DELETE)), "missing ['check_mode']"),
    ("PowerShell", bootstrap_args(), stdin_for(_req(checkmode=True)), "unknown ['checkmode']"),
    ("PowerShell", bootstrap_args(), stdin_for(_req(protocol=2)), "protocol 2 not recognised"),
    ("PowerShell", bootstrap_args(), stdin_for(_req(nonce="abc")), "nonce 'abc' not recognised"),
    ("PowerShell", bootstrap_args(), stdin_for(_req(check_mode="yes")), "check_mode must be true or false"),
    ("PowerShell", bootstrap_args(), stdin_for(_req(operation="vm_frobnicate")), "unknown operation 'vm_frobnicate'"),
    (
        "PowerShell",
        bootstrap_args(),
        stdin_for(_req(params={"vm_names": "web01"})),
        "vm_names must be null or a list of strings",
    ),
    ("PowerShell", bootstrap_args(), stdin_for(_req(params={})), "missing ['vm_names']"),
    (
        "PowerShell",
        bootstrap_args(),
        stdin_for(
            _req(
                operation="vm_integration_service_set",
                params={"vm_names": ["web01"], "changes": [{"guid": "X", "enabled": "yes"}]},
            )
        ),
        "params.changes must be a list",
    ),
    (
        "PowerShell",
        bootstrap_args(),
        stdin_for(_req(operation="vm_integration_service_set", params={"vm_names": None, "changes": []})),
        "vm_names must be a list of strings",
    ),
]


@pytest.mark.parametrize(("command", "arguments", "stdin", "expected"), REJECTIONS)
def test_unrecognised_fails_loudly(
    basic_lab: Any, command: str, arguments: list[str], stdin: bytes | None, expected: str
) -> None:
    out = run(basic_lab.client(), command, arguments, stdin)
    assert out.rc == 1
    assert out.stdout == b""
    assert out.stderr_text.startswith("hyperv.integration lab: ")
    assert expected in out.stderr_text
    counters = basic_lab.counters()
    assert counters["commands"] == 1 and counters["rejected"] == 1 and counters["calls"] == 0
    assert counters["writes"] == 0


def test_a_library_body_sent_to_the_wrong_endpoint_is_refused(basic_lab: Any) -> None:
    # A guest library (its operation table names guest operations) sent to the host.
    req = request(INFO, {"vm_names": None})
    guest_library = labclient.stand_in_library("guest_service_info")
    out = run(basic_lab.client(), "PowerShell", bootstrap_args(), stdin_for(req, library=guest_library))
    assert out.rc == 1 and out.stdout == b""
    assert "a library body sent to the wrong endpoint" in out.stderr_text
    assert "guest_service_info" in out.stderr_text


def test_an_operation_the_library_does_not_define_fails_as_its_dispatch_would(basic_lab: Any) -> None:
    req = request(INFO, {"vm_names": None})
    library = labclient.stand_in_library("vm_integration_service_set")
    out = run(basic_lab.client(), "PowerShell", bootstrap_args(), stdin_for(req, library=library))
    response = out.response(req["nonce"])
    assert response["ok"] is False
    assert response["error"]["type"] == "System.ArgumentException"
    assert response["error"]["message"] == f"unknown operation '{INFO}'"


def test_a_key_the_library_reads_unguarded_must_be_there(basic_lab: Any) -> None:
    """Strict mode on a real host: the lab reads, from the library text, which keys it reads."""
    library = labclient.stand_in_library(INFO).replace(
        "function Invoke-StandIn { param ($Request) }",
        "function Invoke-StandIn { param ($Request) $n = $Request.params.vm_names; $m = $Request.params.maybe }",
    )
    req = request(INFO, {"vm_names": None})
    out = run(basic_lab.client(), "PowerShell", bootstrap_args(), stdin_for(req, library=library))
    response = out.response(req["nonce"])
    assert response["ok"] is False
    assert response["error"] == {
        "type": "System.Management.Automation.PropertyNotFoundException",
        "message": "The property 'maybe' cannot be found on this object. Verify that the property exists.",
        "category": "NotSpecified",
        "vm": None,
        "service": None,
    }
    guarded = library.replace(
        "$m = $Request.params.maybe", "$m = Get-RequestValue -Object $Request.params -Name 'maybe'"
    )
    out = run(basic_lab.client(), "PowerShell", bootstrap_args(), stdin_for(req, library=guarded))
    assert out.response(req["nonce"])["ok"] is True
