"""SOAP envelopes of WS-Management / WinRS (MS-WSMV), as much as pywinrm and ansible's winrm
connection send and parse (winrm/protocol.py, ansible/plugins/connection/winrm.py)."""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

SOAP = "http://www.w3.org/2003/05/soap-envelope"
ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
MS_WSMAN = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
WSMAN_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS = {"s": SOAP, "a": ADDRESSING, "w": WSMAN, "rsp": SHELL, "x": TRANSFER, "p": MS_WSMAN}

CMD_SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
# PowerShell remoting: the resource URI is this prefix plus the session configuration name ([MS-PSRP]
# 3.1.5.3.3; pypsrp RunspacePool: "http://schemas.microsoft.com/powershell/%s" % configuration_name).
PSRP_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
PSRP_DEFAULT_URI = PSRP_URI_PREFIX + "Microsoft.PowerShell"
PSRP_NS = "http://schemas.microsoft.com/powershell"  # creationXml ([MS-PSRP] 3.1.5.3.2)
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_COMMAND = SHELL + "/Command"
ACTION_SEND = SHELL + "/Send"
ACTION_RECEIVE = SHELL + "/Receive"
ACTION_SIGNAL = SHELL + "/Signal"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
STATE_DONE = SHELL + "/CommandState/Done"
STATE_RUNNING = SHELL + "/CommandState/Running"
SIGNAL_TERMINATE = SHELL + "/signal/terminate"
# Stopping a pipeline: [MS-PSRP] 3.1.5.3.9 spells the code "powershell/signal/crtl_c"; pypsrp 0.9.1
# (shell.py SignalCode.PS_CTRL_C, used by PowerShell.stop) sends "powershell/signal/ctrl_c".
SIGNAL_PS_CTRL_C = ("powershell/signal/crtl_c", "powershell/signal/ctrl_c")
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# WSManFault codes clients look at: pywinrm turns 2150858793 into WinRMOperationTimeoutError and
# retries Receive; 2150858843 is "shell not found" (seen in WinRb/WinRM issues 253, 273).
CODE_OPERATION_TIMEOUT = 2150858793
CODE_SHELL_NOT_FOUND = 2150858843

_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


class SoapError(Exception):
    """The request cannot be answered; becomes a SOAP fault (HTTP 500)."""

    def __init__(
        self, reason: str, subcode: str = "w:InvalidParameter", code: str = "s:Sender", wsman_code: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subcode = subcode
        self.code = code
        self.wsman_code = wsman_code


@dataclass
class SoapRequest:
    action: str
    message_id: str
    resource_uri: str
    shell_id: str | None
    operation_timeout: float
    max_envelope: int
    options: dict[str, str] = field(default_factory=dict)
    body: ET.Element | None = None


def _duration_seconds(text: str | None, default: float) -> float:
    match = _DURATION.match((text or "").strip())
    if not match or not any(match.groups()):
        return default
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_request(data: bytes) -> SoapRequest:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SoapError(f"the request is not well-formed XML: {exc}", "w:SchemaValidationError") from exc
    header = root.find("s:Header", NS)
    if root.tag != f"{{{SOAP}}}Envelope" or header is None:
        raise SoapError("the request is not a SOAP 1.2 envelope with a header", "w:SchemaValidationError")

    def text(path: str) -> str:
        node = header.find(path, NS)
        return (node.text or "").strip() if node is not None else ""

    selector = header.find("w:SelectorSet/w:Selector[@Name='ShellId']", NS)
    options = {node.get("Name", ""): (node.text or "").strip() for node in header.findall("w:OptionSet/w:Option", NS)}
    try:
        max_envelope = int(text("w:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_envelope = 153600
    return SoapRequest(
        action=text("a:Action"),
        message_id=text("a:MessageID"),
        resource_uri=text("w:ResourceURI"),
        shell_id=(selector.text or "").strip() if selector is not None else None,
        operation_timeout=_duration_seconds(text("w:OperationTimeout"), 60.0),
        max_envelope=max_envelope,
        options=options,
        body=root.find("s:Body", NS),
    )


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    header = (
        f"<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
    )
    return (
        f'<s:Envelope xml:lang="en-US" xmlns:s="{SOAP}" xmlns:a="{ADDRESSING}" '
        f'xmlns:x="{TRANSFER}" xmlns:w="{WSMAN}" xmlns:rsp="{SHELL}" xmlns:p="{MS_WSMAN}">'
        f"{header}<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def create_response(
    req: SoapRequest,
    shell_id: str,
    address: str,
    owner: str,
    client_ip: str,
    input_streams: str,
    output_streams: str,
    resource_uri: str = CMD_SHELL_URI,
) -> bytes:
    # pywinrm takes the first element with Name="ShellId" (the Selector); the rsp:Shell part is
    # what Windows adds after ResourceCreated.
    body = (
        f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{escape(resource_uri)}</w:ResourceURI><w:SelectorSet>"
        f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        f"</a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId>"
        f"<rsp:ResourceUri>{escape(resource_uri)}</rsp:ResourceUri><rsp:Owner>{escape(owner)}</rsp:Owner>"
        f"<rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
        f"<rsp:InputStreams>{escape(input_streams)}</rsp:InputStreams>"
        f"<rsp:OutputStreams>{escape(output_streams)}</rsp:OutputStreams>"
        f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>"
        f"<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
    )
    return _envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", req.message_id, body)


def command_response(req: SoapRequest, command_id: str) -> bytes:
    body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
    return _envelope(ACTION_COMMAND + "Response", req.message_id, body)


def send_response(req: SoapRequest) -> bytes:
    return _envelope(ACTION_SEND + "Response", req.message_id, "<rsp:SendResponse/>")


def signal_response(req: SoapRequest) -> bytes:
    return _envelope(ACTION_SIGNAL + "Response", req.message_id, "<rsp:SignalResponse/>")


def delete_response(req: SoapRequest) -> bytes:
    return _envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", req.message_id, "")


def receive_response(
    req: SoapRequest, command_id: str, stdout: bytes, stderr: bytes, done: bool, exit_code: int
) -> bytes:
    cid = quoteattr(command_id)
    parts = ["<rsp:ReceiveResponse>"]
    for name, data in (("stdout", stdout), ("stderr", stderr)):
        if data:
            parts.append(f'<rsp:Stream Name="{name}" CommandId={cid}>{base64.b64encode(data).decode()}</rsp:Stream>')
        if done:
            parts.append(f'<rsp:Stream Name="{name}" CommandId={cid} End="true"></rsp:Stream>')
    if done:
        parts.append(
            f'<rsp:CommandState CommandId={cid} State="{STATE_DONE}">'
            f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
        )
    else:
        parts.append(f'<rsp:CommandState CommandId={cid} State="{STATE_RUNNING}"/>')
    parts.append("</rsp:ReceiveResponse>")
    return _envelope(ACTION_RECEIVE + "Response", req.message_id, "".join(parts))


def psrp_receive_response(req: SoapRequest, command_id: str | None, data: bytes, done: bool) -> bytes:
    """A Receive of a PowerShell remoting shell ([MS-PSRP] 3.1.5.3.7): PSRP fragments on the stdout
    stream, with the CommandId of the pipeline (none for the runspace pool); the pipeline's last one
    says CommandState Done."""
    cid = f" CommandId={quoteattr(command_id)}" if command_id else ""
    parts = ["<rsp:ReceiveResponse>"]
    if data:
        parts.append(f'<rsp:Stream Name="stdout"{cid}>{base64.b64encode(data).decode()}</rsp:Stream>')
    if command_id and done:
        parts.append(f'<rsp:Stream Name="stdout"{cid} End="true"></rsp:Stream>')
        parts.append(f'<rsp:CommandState{cid} State="{STATE_DONE}"/>')
    elif command_id:
        parts.append(f'<rsp:CommandState{cid} State="{STATE_RUNNING}"/>')
    parts.append("</rsp:ReceiveResponse>")
    return _envelope(ACTION_RECEIVE + "Response", req.message_id, "".join(parts))


def fault_response(relates_to: str, error: SoapError, machine: str) -> bytes:
    code_attr = f' Code="{error.wsman_code}"' if error.wsman_code is not None else ""
    body = (
        f"<s:Fault><s:Code><s:Value>{error.code}</s:Value><s:Subcode><s:Value>{escape(error.subcode)}"
        f'</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(error.reason)}'
        f'</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="{WSMAN_FAULT}"{code_attr} '
        f"Machine={quoteattr(machine)}><f:Message>{escape(error.reason)}</f:Message></f:WSManFault>"
        f"</s:Detail></s:Fault>"
    )
    return _envelope(ACTION_FAULT, relates_to, body)
