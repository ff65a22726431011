"""PowerShell Remoting Protocol (MS-PSRP) messages, the server's side: fragments in and out, the
client messages the lab reads, the server messages it writes. No WS-Management here (hvlab/psrp.py).

Sources: [MS-PSRP] (https://learn.microsoft.com/openspecs/windows_protocols/ms-psrp/), section
numbers below; pypsrp 0.9.1 (`pypsrp/powershell.py` Fragment/Fragmenter, `pypsrp/messages.py`
Message), whose Fragment class and Serializer the lab uses to pack fragments and CLIXML values.

pypsrp's own Message.unpack cannot read a client's CREATE_PIPELINE (deserialising its HostInfo
fails: `property '_host_data' of 'HostInfo' object has no setter`), so client messages are read
here with ElementTree, strictly: anything not in the shape pypsrp and ansible send is refused.
"""

from __future__ import annotations

import struct
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from pypsrp.complex_objects import HostMethodIdentifier
from pypsrp.messages import PipelineHostCall, PipelineState, RunspacePoolStateMessage, SessionCapability
from pypsrp.powershell import Fragment
from pypsrp.serializer import Serializer

# [MS-PSRP] 2.2.1: Destination (0x00000001 client, 0x00000002 server).
DESTINATION_CLIENT = 0x00000001
DESTINATION_SERVER = 0x00000002

# [MS-PSRP] 2.2.1 MessageType values (the same table as pypsrp.messages.MessageType).
SESSION_CAPABILITY = 0x00010002
INIT_RUNSPACEPOOL = 0x00010004
PUBLIC_KEY = 0x00010005
ENCRYPTED_SESSION_KEY = 0x00010006
PUBLIC_KEY_REQUEST = 0x00010007
CONNECT_RUNSPACEPOOL = 0x00010008
RUNSPACEPOOL_INIT_DATA = 0x0002100B
RESET_RUNSPACE_STATE = 0x0002100C
SET_MAX_RUNSPACES = 0x00021002
SET_MIN_RUNSPACES = 0x00021003
RUNSPACE_AVAILABILITY = 0x00021004
RUNSPACEPOOL_STATE = 0x00021005
CREATE_PIPELINE = 0x00021006
GET_AVAILABLE_RUNSPACES = 0x00021007
USER_EVENT = 0x00021008
APPLICATION_PRIVATE_DATA = 0x00021009
GET_COMMAND_METADATA = 0x0002100A
RUNSPACEPOOL_HOST_CALL = 0x00021100
RUNSPACEPOOL_HOST_RESPONSE = 0x00021101
PIPELINE_INPUT = 0x00041002
END_OF_PIPELINE_INPUT = 0x00041003
PIPELINE_OUTPUT = 0x00041004
ERROR_RECORD = 0x00041005
PIPELINE_STATE = 0x00041006
PIPELINE_HOST_CALL = 0x00041100
PIPELINE_HOST_RESPONSE = 0x00041101

MESSAGE_NAMES = {
    value: name
    for name, value in dict(globals()).items()
    if isinstance(value, int) and name.isupper() and not name.startswith("DESTINATION") and value > 0xFFFF
}

# [MS-PSRP] 2.2.3.4 RunspacePoolState: Opened = 2, Broken = 5.
RUNSPACEPOOL_OPENED = 2
# [MS-PSRP] 2.2.3.5 PSInvocationState: Running = 1, Stopped = 3, Completed = 4, Failed = 5.
PIPELINE_COMPLETED = 4
PIPELINE_FAILED = 5
# [MS-PSRP] 2.2.3.17 Host Method Identifier: SetShouldExit = 6 (pypsrp HostMethodIdentifier).
SET_SHOULD_EXIT = 6
# The call id PowerShell's server puts on a host call that has no return value: ServerDispatchTable
# VoidCallId = -100 (PowerShell/PowerShell src/System.Management.Automation/engine/remoting/server/
# ServerRemoteHost.cs and ServerDispatchTable.cs); the client sends no response to it.
VOID_CALL_ID = -100

# What Windows PowerShell 5.1 answers (pypsrp sends PROTOCOL_VERSION 2.3, PS_VERSION 2.0,
# SERIALIZATION_VERSION 1.1.0.1; a Windows Server 2016+ host answers protocolversion 2.3, which makes
# pypsrp raise its MaxEnvelopeSize to 500 KiB: RunspacePool._process_session_capability).
SERVER_PROTOCOL_VERSION = "2.3"
SERVER_PS_VERSION = "2.0"
SERVER_SERIALIZATION_VERSION = "1.1.0.1"
# $PSVersionTable of Windows PowerShell 5.1 on Windows Server 2022 (build 20348, the lab's host):
# sent in APPLICATION_PRIVATE_DATA ([MS-PSRP] 2.2.2.13). Minor build numbers are the lab's.
PS_VERSION_TABLE = (
    ("PSVersion", "5.1.20348.2849"),
    ("PSEdition", None),
    ("PSCompatibleVersions", None),
    ("BuildVersion", "10.0.20348.2849"),
    ("CLRVersion", "4.0.30319.42000"),
    ("WSManStackVersion", "3.0"),
    ("PSRemotingProtocolVersion", "2.3"),
    ("SerializationVersion", "1.1.0.1"),
)
FRAGMENT_HEADER = 21  # [MS-PSRP] 2.2.4: ObjectId (8), FragmentId (8), flags (1), BlobLength (4)
MESSAGE_HEADER = 40  # [MS-PSRP] 2.2.1: Destination (4), MessageType (4), RPID (16), PID (16)


class PsrpError(Exception):
    """A message the lab cannot read or does not model: a SOAP fault, never a silent answer."""


@dataclass
class RawMessage:
    destination: int
    message_type: int
    rpid: str  # upper case, as WinRS ids
    pid: str
    data: bytes  # the CLIXML (UTF-8, BOM removed)

    @property
    def name(self) -> str:
        return MESSAGE_NAMES.get(self.message_type, f"0x{self.message_type:08X}")


def parse_message(blob: bytes) -> RawMessage:
    """[MS-PSRP] 2.2.1: little-endian Destination and MessageType, then RPID and PID as .NET writes
    GUIDs (bytes_le), then the data (UTF-8 CLIXML, optionally with a BOM)."""
    if len(blob) < MESSAGE_HEADER:
        raise PsrpError(f"PSRP message of {len(blob)} bytes is shorter than its 40-byte header")
    destination, message_type = struct.unpack("<II", blob[:8])
    rpid = str(uuid.UUID(bytes_le=blob[8:24])).upper()
    pid = str(uuid.UUID(bytes_le=blob[24:40])).upper()
    data = blob[40:]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return RawMessage(destination, message_type, rpid, pid, data)


def pack_message(message_type: int, rpid: str, pid: str | None, data: bytes) -> bytes:
    """A server-to-client message ([MS-PSRP] 2.2.1), as pypsrp's Message.pack lays it out."""
    empty = uuid.UUID(int=0)
    header = struct.pack("<II", DESTINATION_CLIENT, message_type)
    header += uuid.UUID(rpid).bytes_le + (uuid.UUID(pid) if pid else empty).bytes_le
    return header + data


@dataclass
class Defragmenter:
    """Reassembles [MS-PSRP] 2.2.4 fragments into messages: per ObjectId, FragmentIds 0, 1, 2 ... in
    order, Start flag (0x1) on the first, End flag (0x2) on the last."""

    partial: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # object id -> (next fragment id, data)

    def feed(self, data: bytes) -> list[RawMessage]:
        messages: list[RawMessage] = []
        while data:
            if len(data) < FRAGMENT_HEADER:
                raise PsrpError(f"truncated PSRP fragment header ({len(data)} bytes)")
            length = struct.unpack(">I", data[17:21])[0]
            if len(data) < FRAGMENT_HEADER + length:
                raise PsrpError("PSRP fragment blob is longer than the data sent")
            fragment, data = Fragment.unpack(data)
            others = [oid for oid in self.partial if oid != fragment.object_id]
            if others:
                # PowerShell's receiver reassembles one object at a time (ReceiveDataCollection in
                # PriorityCollection.cs: a fragment of another object throws ObjectIdsNotMatching; a Start
                # fragment drops the partial object). The lab refuses both: no client interleaves.
                raise PsrpError(
                    f"PSRP fragment of object {fragment.object_id} while object {others[0]} is still partial"
                )
            expected, sofar = self.partial.get(fragment.object_id, (0, b""))
            if fragment.start != (expected == 0) or fragment.fragment_id != expected:
                raise PsrpError(
                    f"PSRP fragment {fragment.fragment_id} of object {fragment.object_id} out of order "
                    f"(expected fragment {expected}{' with the Start flag' if expected == 0 else ''})"
                )
            sofar += fragment.data
            if fragment.end:
                self.partial.pop(fragment.object_id, None)
                messages.append(parse_message(sofar))
            else:
                self.partial[fragment.object_id] = (expected + 1, sofar)
        return messages


@dataclass
class Outbox:
    """Messages waiting for a Receive; fragmented when taken, so that each Receive stays within the
    client's MaxEnvelopeSize and a message too large for one spans several Receives ([MS-PSRP]
    2.2.4: a message MAY be split over fragments; 3.1.5.3.7: Receive carries them on stdout)."""

    items: list[list[Any]] = field(default_factory=list)  # [object id, data, offset, next fragment id]

    def put(self, message: bytes, object_id: int) -> None:
        """``object_id``: unique among what this runspace pool sends (pypsrp reassembles the pool's and
        its pipelines' fragments in one buffer keyed by ObjectId)."""
        self.items.append([object_id, message, 0, 0])

    def __bool__(self) -> bool:
        return bool(self.items)

    def take(self, budget: int) -> bytes:
        """Fragments of at most ``budget`` bytes in all (at least one fragment when anything waits)."""
        out = b""
        while self.items:
            room = budget - len(out) - FRAGMENT_HEADER
            if room <= 0 and out:
                break
            object_id, data, offset, fragment_id = self.items[0]
            chunk = data[offset : offset + max(room, 1)]
            end = offset + len(chunk) >= len(data)
            out += Fragment(object_id, fragment_id, chunk, offset == 0, end).pack()
            if end:
                self.items.pop(0)
            else:
                self.items[0][2:] = [offset + len(chunk), fragment_id + 1]
        return out


# -- reading client messages --------------------------------------------------------------------


def _xml(message: RawMessage) -> ET.Element:
    try:
        return ET.fromstring(message.data)
    except ET.ParseError as exc:
        raise PsrpError(f"{message.name}: the message data is not CLIXML: {exc}") from exc


def _member(obj: ET.Element, name: str, tag: str | None = None) -> ET.Element:
    node = obj.find(f"MS/*[@N='{name}']")
    if node is None or (tag is not None and node.tag != tag):
        raise PsrpError(f"no <{tag or '*'} N={name!r}> in the message")
    return node


def _string(node: ET.Element) -> str:
    value = Serializer().deserialize(node)
    if not isinstance(value, str):
        raise PsrpError(f"<{node.tag} N={node.get('N')!r}> is not a string")
    return value


def _bool(node: ET.Element) -> bool:
    if node.tag != "B" or (node.text or "") not in ("true", "false"):
        raise PsrpError(f"<{node.tag} N={node.get('N')!r}> is not a boolean")
    return node.text == "true"


def _enum_value(node: ET.Element) -> int:
    value = node.find("I32")
    if node.tag != "Obj" or value is None:
        raise PsrpError(f"<{node.tag} N={node.get('N')!r}> is not an enum value")
    return int(value.text or "0")


@dataclass
class SessionCapabilityIn:
    protocol_version: str
    ps_version: str
    serialization_version: str


def read_session_capability(message: RawMessage) -> SessionCapabilityIn:
    """[MS-PSRP] 2.2.2.1 SESSION_CAPABILITY: three Version members (TimeZone optional)."""
    obj = _xml(message)
    return SessionCapabilityIn(
        (_member(obj, "protocolversion", "Version").text or "").strip(),
        (_member(obj, "PSVersion", "Version").text or "").strip(),
        (_member(obj, "SerializationVersion", "Version").text or "").strip(),
    )


def read_init_runspacepool(message: RawMessage) -> tuple[int, int]:
    """[MS-PSRP] 2.2.2.2 INIT_RUNSPACEPOOL: MinRunspaces, MaxRunspaces (and thread options, apartment
    state, HostInfo, ApplicationArguments, which the lab does not use)."""
    obj = _xml(message)
    try:
        low = int(_member(obj, "MinRunspaces", "I32").text or "")
        high = int(_member(obj, "MaxRunspaces", "I32").text or "")
    except ValueError as exc:
        raise PsrpError(f"INIT_RUNSPACEPOOL: MinRunspaces/MaxRunspaces are not integers: {exc}") from exc
    for name in ("PSThreadOptions", "ApartmentState", "HostInfo"):
        _member(obj, name)
    return low, high


@dataclass
class PipelineCommand:
    cmd: str
    is_script: bool
    use_local_scope: bool | None
    args: int  # number of arguments/parameters
    merges: dict[str, int]  # MergeMyResult ... MergeInformation: PipelineResultTypes values


@dataclass
class CreatePipelineIn:
    no_input: bool
    is_nested: bool
    commands: list[PipelineCommand]
    extra_statements: int  # commands in ExtraCmds (the statements of PowerShell.AddStatement)
    add_to_history: bool
    redirect_shell_error_output: bool


def _commands(list_obj: ET.Element) -> list[PipelineCommand]:
    lst = list_obj.find("LST")
    if lst is None:
        raise PsrpError(f"<Obj N={list_obj.get('N')!r}> is not a list")
    commands = []
    for item in lst:
        if item.tag != "Obj":
            raise PsrpError("a command of the pipeline is not an object")
        scope = item.find("MS/*[@N='UseLocalScope']")
        args = item.find("MS/Obj[@N='Args']/LST")
        merges = {}
        for node in item.findall("MS/Obj"):
            name = node.get("N", "")
            if name.startswith("Merge"):
                merges[name] = _enum_value(node)
        commands.append(
            PipelineCommand(
                cmd=_string(_member(item, "Cmd")),
                is_script=_bool(_member(item, "IsScript")),
                use_local_scope=None if scope is None or scope.tag == "Nil" else _bool(scope),
                args=len(args) if args is not None else 0,
                merges=merges,
            )
        )
    return commands


def read_create_pipeline(message: RawMessage) -> CreatePipelineIn:
    """[MS-PSRP] 2.2.2.10 CREATE_PIPELINE: NoInput, ApartmentState, RemoteStreamOptions, AddToHistory,
    HostInfo, PowerShell (2.2.3.11: Cmds, IsNested, History, RedirectShellErrorOutputPipe,
    ExtraCmds), IsNested."""
    obj = _xml(message)
    shell = _member(obj, "PowerShell", "Obj")
    extra = shell.find("MS/*[@N='ExtraCmds']")
    extra_statements = 0
    if extra is not None and extra.tag != "Nil":
        # pypsrp's Pipeline._ExtraCmds: a list of statements, each an object with its own Cmds list.
        statements = extra.find("LST")
        if statements is None:
            raise PsrpError("ExtraCmds is not a list")
        extra_statements = sum(len(_commands(_member(st, "Cmds", "Obj"))) for st in statements)
    redirect = shell.find("MS/B[@N='RedirectShellErrorOutputPipe']")
    return CreatePipelineIn(
        no_input=_bool(_member(obj, "NoInput")),
        is_nested=_bool(_member(obj, "IsNested")),
        commands=_commands(_member(shell, "Cmds", "Obj")),
        extra_statements=extra_statements,
        add_to_history=_bool(_member(obj, "AddToHistory")),
        redirect_shell_error_output=redirect is not None and _bool(redirect),
    )


def read_pipeline_input(message: RawMessage) -> Any:
    """[MS-PSRP] 2.2.2.17 PIPELINE_INPUT: one serialized object. Strings come back as str; anything
    else as what pypsrp's Serializer makes of it (the caller refuses what is not a string)."""
    return Serializer().deserialize(_xml(message))


# -- writing server messages --------------------------------------------------------------------


def _clixml(obj: Any) -> bytes:
    element = Serializer().serialize(obj)
    assert element is not None
    return ET.tostring(element, encoding="utf-8", method="xml").removeprefix(
        b"<?xml version='1.0' encoding='utf-8'?>\n"
    )


def session_capability(rpid: str) -> bytes:
    body = _clixml(SessionCapability(SERVER_PROTOCOL_VERSION, SERVER_PS_VERSION, SERVER_SERIALIZATION_VERSION))
    return pack_message(SESSION_CAPABILITY, rpid, None, body)


def application_private_data(rpid: str) -> bytes:
    """[MS-PSRP] 2.2.2.13 APPLICATION_PRIVATE_DATA: a PSPrimitiveDictionary holding PSVersionTable,
    written out as Windows PowerShell 5.1 serialises it (Version values as <Version>)."""
    entries = []
    for key, value in PS_VERSION_TABLE:
        if key == "PSEdition":
            item = '<S N="Value">Desktop</S>'
        elif key == "PSCompatibleVersions":
            versions = "".join(f"<Version>{v}</Version>" for v in ("1.0", "2.0", "3.0", "4.0", "5.0", "5.1.20348.2849"))
            item = (
                '<Obj N="Value" RefId="3"><TN RefId="1"><T>System.Version[]</T><T>System.Array</T>'
                f"<T>System.Object</T></TN><LST>{versions}</LST></Obj>"
            )
        else:
            item = f'<Version N="Value">{escape(str(value))}</Version>'
        entries.append(f'<En><S N="Key">{key}</S>{item}</En>')
    body = (
        '<Obj RefId="0"><MS><Obj N="ApplicationPrivateData" RefId="1"><TN RefId="0">'
        "<T>System.Management.Automation.PSPrimitiveDictionary</T><T>System.Collections.Hashtable</T>"
        '<T>System.Object</T></TN><DCT><En><S N="Key">PSVersionTable</S><Obj N="Value" RefId="2">'
        f'<TNRef RefId="0" /><DCT>{"".join(entries)}</DCT></Obj></En></DCT></Obj></MS></Obj>'
    )
    return pack_message(APPLICATION_PRIVATE_DATA, rpid, None, body.encode("utf-8"))


def runspacepool_state(rpid: str, state: int) -> bytes:
    return pack_message(RUNSPACEPOOL_STATE, rpid, None, _clixml(RunspacePoolStateMessage(state=state)))


def pipeline_output(rpid: str, pid: str, value: str) -> bytes:
    """[MS-PSRP] 2.2.2.18 PIPELINE_OUTPUT: the object itself, here a string (<S>, escaped as
    [MS-PSRP] 2.2.5.3.2 says: pypsrp's Serializer)."""
    return pack_message(PIPELINE_OUTPUT, rpid, pid, _clixml(value))


def pipeline_state(rpid: str, pid: str, state: int, error: tuple[str, str] | None = None) -> bytes:
    """[MS-PSRP] 2.2.2.21 PIPELINE_STATE; a Failed pipeline carries ExceptionAsErrorRecord (the
    error's message and FullyQualifiedErrorId)."""
    if error is None:
        return pack_message(PIPELINE_STATE, rpid, pid, _clixml(PipelineState(state=state)))
    record = error_record(error[0], error[1], name="ExceptionAsErrorRecord", ref=1).decode("utf-8")
    body = f'<Obj RefId="0"><MS><I32 N="PipelineState">{state}</I32>{record}</MS></Obj>'
    return pack_message(PIPELINE_STATE, rpid, pid, body.encode("utf-8"))


def set_should_exit(rpid: str, pid: str, exit_code: int) -> bytes:
    """[MS-PSRP] 2.2.2.27 PIPELINE_HOST_CALL with method SetShouldExit (2.2.3.17), one Int32
    parameter: what `exit N` in a remote pipeline makes the server send to the client's host."""
    call = PipelineHostCall(ci=VOID_CALL_ID, mi=HostMethodIdentifier(value=SET_SHOULD_EXIT), mp=[exit_code])
    return pack_message(PIPELINE_HOST_CALL, rpid, pid, _clixml(call))


def error_record(
    message: str,
    error_id: str,
    exception_type: str = "System.Management.Automation.RuntimeException",
    name: str | None = None,
    ref: int = 0,
) -> bytes:
    """An [MS-PSRP] 2.2.3.15 ErrorRecord as Windows PowerShell serialises a terminating error of a
    script (`throw`): Exception, TargetObject, FullyQualifiedErrorId, ErrorCategory_* (category 0
    NotSpecified), SerializeExtendedInfo false (no InvocationInfo)."""
    text = escape(message)
    named = f' N="{name}"' if name else ""
    short = exception_type.rsplit(".", 1)[-1]
    return (
        f'<Obj{named} RefId="{ref}"><TN RefId="0"><T>System.Management.Automation.ErrorRecord</T>'
        f"<T>System.Object</T></TN><ToString>{text}</ToString><MS>"
        f'<Obj N="Exception" RefId="{ref + 1}"><TN RefId="1"><T>{escape(exception_type)}</T>'
        "<T>System.SystemException</T>"
        f"<T>System.Exception</T><T>System.Object</T></TN><ToString>{text}</ToString>"
        f'<Props><S N="Message">{text}</S><Nil N="Data" /><Nil N="InnerException" />'
        '<Nil N="Source" /></Props></Obj>'
        '<Nil N="TargetObject" />'
        f'<S N="FullyQualifiedErrorId">{escape(error_id)}</S>'
        '<I32 N="ErrorCategory_Category">0</I32><S N="ErrorCategory_Activity"></S>'
        f'<S N="ErrorCategory_Reason">{escape(short)}</S><S N="ErrorCategory_TargetName"></S>'
        f'<S N="ErrorCategory_TargetType"></S><S N="ErrorCategory_Message">NotSpecified: (:) [], {escape(short)}</S>'
        '<B N="SerializeExtendedInfo">false</B></MS></Obj>'
    ).encode()


def error_record_message(rpid: str, pid: str, message: str, error_id: str) -> bytes:
    """[MS-PSRP] 2.2.2.20 ERROR_RECORD: a non-terminating error on the pipeline's error stream."""
    return pack_message(ERROR_RECORD, rpid, pid, error_record(message, error_id))
