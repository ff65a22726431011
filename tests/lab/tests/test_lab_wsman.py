"""The WS-Management layer: auth, SOAP actions, faults, large output."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any

import labclient
import pytest
import requests
import xmltodict
from labclient import bootstrap_args, request, stdin_for
from winrm.exceptions import InvalidCredentialsError, WSManFaultError

SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"


def test_wrong_credentials_get_401(basic_lab: Any) -> None:
    with pytest.raises(InvalidCredentialsError):
        basic_lab.protocol(password="wrong").open_shell()
    response = requests.post(
        basic_lab.url,
        data=b"<x/>",
        auth=("lab-admin", "nope"),
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
    )
    assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]
    assert requests.post(basic_lab.url, data=b"<x/>").status_code == 401
    state = basic_lab.state()
    assert state["counters"]["requests"] == 3 and state["counters"]["commands"] == 0
    assert state["endpoints"]["hv01"]["open_shells"] == 0


def test_create_response_shape(basic_lab: Any) -> None:
    protocol = basic_lab.client()
    message = {
        "env:Envelope": protocol.build_wsman_header(
            action="http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", resource_uri=SHELL_URI
        )
    }
    message["env:Envelope"]["env:Header"]["w:OptionSet"] = {"w:Option": [{"@Name": "WINRS_CODEPAGE", "#text": "65001"}]}
    message["env:Envelope"]["env:Body"] = {
        "rsp:Shell": {"rsp:InputStreams": "stdin", "rsp:OutputStreams": "stdout stderr"}
    }
    root = ET.fromstring(protocol.send_message(xmltodict.unparse(message)))
    ns = {
        "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
        "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
        "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    }
    shell_id = root.find(".//w:Selector[@Name='ShellId']", ns).text
    assert root.find(".//rsp:Shell/rsp:ShellId", ns).text == shell_id
    assert root.find(".//a:RelatesTo", ns).text.startswith("uuid:")
    protocol.close_shell(shell_id)


def test_unknown_action_is_a_soap_fault(basic_lab: Any) -> None:
    protocol = basic_lab.client()
    message = {
        "env:Envelope": protocol.build_wsman_header(
            action="http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate", resource_uri=SHELL_URI
        )
    }
    message["env:Envelope"]["env:Body"] = {}
    with pytest.raises(WSManFaultError) as error:
        protocol.send_message(xmltodict.unparse(message))
    assert error.value.code == 500 and "not supported" in error.value.reason
    assert error.value.fault_subcode == "a:ActionNotSupported"


def test_psrp_create_without_creation_xml_is_refused(basic_lab: Any) -> None:
    """The PowerShell resource is a runspace pool (tests/lab/tests/test_lab_psrp.py); a Create without
    its creationXml is refused with a SOAP fault."""
    protocol = basic_lab.client()
    message = {
        "env:Envelope": protocol.build_wsman_header(
            action="http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
            resource_uri="http://schemas.microsoft.com/powershell/Microsoft.PowerShell",
        )
    }
    message["env:Envelope"]["env:Body"] = {"rsp:Shell": {"rsp:InputStreams": "stdin pr"}}
    with pytest.raises(WSManFaultError, match="without creationXml"):
        protocol.send_message(xmltodict.unparse(message))


def test_unknown_shell(basic_lab: Any) -> None:
    with pytest.raises(WSManFaultError) as error:
        basic_lab.client().run_command("00000000-0000-0000-0000-000000000000", "PowerShell", [])
    assert error.value.wsman_fault_code == 2150858843


def test_other_http_methods_and_paths(basic_lab: Any) -> None:
    assert requests.get(basic_lab.url).status_code == 405
    wrong = basic_lab.url.replace("/wsman", "/nope")
    assert requests.post(wrong, data=b"x", auth=("lab-admin", basic_lab.password)).status_code == 404
    bad = requests.post(basic_lab.url, data=b"not xml", auth=("lab-admin", basic_lab.password))
    assert bad.status_code == 500 and "well-formed" in bad.text


def test_signal_before_stdin_end_means_it_never_runs(basic_lab: Any) -> None:
    protocol = basic_lab.client()
    shell = protocol.open_shell()
    command_id = protocol.run_command(shell, "PowerShell", bootstrap_args())
    req = request(
        "vm_integration_service_set",
        {"vm_names": ["web01"], "changes": [{"guid": "6C09BB55-D683-4DA0-8931-C9BF705F6480", "enabled": True}]},
    )
    protocol.send_command_input(shell, command_id, stdin_for(req), end=False)  # End never sent
    protocol.cleanup_command(shell, command_id)
    protocol.close_shell(shell)
    counters = basic_lab.counters()
    assert counters["commands"] == 1 and counters["calls"] == 0 and counters["writes"] == 0
    assert basic_lab.state()["endpoints"]["hv01"]["recent_commands"][0]["state"] == "terminated before it ran"


def test_stdin_in_several_chunks(basic_lab: Any) -> None:
    protocol = basic_lab.client()
    shell = protocol.open_shell()
    command_id = protocol.run_command(shell, "PowerShell", bootstrap_args())
    req = request("vm_integration_service_info", {"vm_names": ["web01"]})
    data = stdin_for(req)
    for i in range(0, len(data), 7):
        protocol.send_command_input(shell, command_id, data[i : i + 7], end=i + 7 >= len(data))
    stdout, stderr, rc = protocol.get_command_output(shell, command_id)
    assert labclient.Output(rc, stdout, stderr).response(req["nonce"])["result"]["vms"][0]["name"] == "web01"


def test_receive_waits_for_stdin_end(basic_lab: Any) -> None:
    """Like a real process blocked on stdin: Receive waits for the rest, from another connection."""
    protocol = basic_lab.client()
    shell = protocol.open_shell()
    command_id = protocol.run_command(shell, "PowerShell", bootstrap_args())
    req = request("vm_integration_service_info", {"vm_names": None})
    data = stdin_for(req)
    protocol.send_command_input(shell, command_id, data[:10])
    other = basic_lab.protocol()
    timer = threading.Timer(0.3, other.send_command_input, (shell, command_id, data[10:], True))
    timer.start()
    stdout, stderr, rc = protocol.get_command_output(shell, command_id)
    timer.join()
    assert rc == 0 and labclient.Output(rc, stdout, stderr).response(req["nonce"])["ok"]


def test_large_output_spans_several_receives(make_lab: Any) -> None:
    lab = make_lab({"vms": [{"name": f"vm{i:04d}", "guest": "windows"} for i in range(1000)]})
    protocol = lab.client()
    shell = protocol.open_shell()
    command_id = protocol.run_command(shell, "PowerShell", bootstrap_args())
    req = request("vm_integration_service_info", {"vm_names": None})
    protocol.send_command_input(shell, command_id, stdin_for(req), end=True)
    chunks, done = [], False
    while not done:
        stdout, _stderr, rc, done = protocol.get_command_output_raw(shell, command_id)
        chunks.append(stdout)
    assert len(chunks) > 5 and rc == 0
    result = labclient.Output(rc, b"".join(chunks), b"").response(req["nonce"])["result"]
    assert len(result["vms"]) == 1000 and result["vms"][-1]["name"] == "vm0999"


def test_command_recorded(basic_lab: Any) -> None:
    labclient.run(basic_lab.client(), "ipconfig", ["/all"], None)
    recent = basic_lab.state()["endpoints"]["hv01"]["recent_commands"]
    assert recent[-1]["command_line"] == "ipconfig /all" and recent[-1]["exit_code"] == 1
    assert "command not recognised" in recent[-1]["stderr"]
