"""PowerShell Remoting (MS-PSRP over WS-Management) on a lab endpoint: the runspace pool and
pipeline state machine behind a shell whose resource URI is .../powershell/Microsoft.PowerShell.
hvlab/winrs.py hands each action of such a shell here; hvlab/psrp_messages.py reads and writes the
messages. A pipeline runs through the endpoint's backend as `run_script(script, input_lines)`
(hvlab/protocol.py), so counters, faults, recent commands and the log are the WinRM ones.

What the clients send (read in the installed packages):

- pypsrp 0.9.1 `RunspacePool.open()` (powershell.py): wxf:Create of resource URI
  `http://schemas.microsoft.com/powershell/<configuration_name>`, rsp:Shell with ShellId = the pool id,
  InputStreams "stdin pr", OutputStreams "stdout", option protocolversion 2.3 (MustComply), and
  creationXml: base64 fragments of SESSION_CAPABILITY and INIT_RUNSPACEPOOL ([MS-PSRP] 3.1.5.3.2).
  Then Receives without CommandId until RUNSPACEPOOL_STATE leaves NegotiationSent; a Receive fault
  there is not retried. `close()`: wxf:Delete of the shell.
- `PowerShell.begin_invoke()`: wxf:Command with CommandId = the pipeline id, an empty rsp:Command and
  the first fragment of CREATE_PIPELINE as its one rsp:Arguments ([MS-PSRP] 3.1.5.3.4), the rest of it
  and the input (PIPELINE_INPUT ..., END_OF_PIPELINE_INPUT) by wxf:Send on stream stdin with that
  CommandId ([MS-PSRP] 3.1.5.3.5); host responses go on stream pr. `poll_invoke()`: Receive with the
  CommandId, retried on the OperationTimeout fault (code 2150858793) until PIPELINE_STATE is terminal.
  `stop()`: wxf:Signal "powershell/signal/ctrl_c" with the CommandId; `close()`: Signal Terminate.
- ansible-core 2.19 `plugins/connection/psrp.py`: `_connect` opens the pool with a PSHost (so host
  calls are answered; SetShouldExit sets `host.rc`), `exec_command` runs a decoded -EncodedCommand as
  `add_script(script, use_local_scope=True)` with `in_data.splitlines()` as input, `_exec_psrp_script`
  first stops the previous pipeline (a completed one: the signal must still be answered), and
  `_parse_pipeline_result` takes `rc = host.rc or (1 if pipeline.had_errors else 0)`, stdout = the output
  objects joined with CRLF, stderr = the error records formatted. `close()`/`reset()`: pool close.

How a lab result becomes PSRP messages on the pipeline ([MS-PSRP] 3.1.4.x, server side):
one PIPELINE_OUTPUT string per stdout line (the line ends removed), one ERROR_RECORD per stderr line of a
recognised call, PIPELINE_HOST_CALL SetShouldExit(N) for a non-zero exit code (what `exit N` in a remote
pipeline does), then PIPELINE_STATE Completed. A command the lab did not recognise ends in
PIPELINE_STATE Failed carrying an ErrorRecord with the lab's message (as a script that throws).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import psrp_messages as pm
from . import soap
from .protocol import CommandResult
from .shells import Command, Shell

if TYPE_CHECKING:
    from .winrs import WsmanService

log = logging.getLogger("hvlab.psrp")
DEFAULT_CONFIGURATION = "microsoft.powershell"
LAB_ERROR_ID = "HypervIntegrationLabNotRecognised"
# WSManFault code Windows gives for a resource URI (session configuration) it does not have:
# ERROR_WSMAN_INVALID_RESOURCE_URI 0x80338011 (winerror.h); the wording is the lab's.
CODE_INVALID_RESOURCE_URI = 2150858769


@dataclass
class RunspacePool:
    """The server side of one runspace pool ([MS-PSRP] 3.2.5): its id (= ShellId), what goes to the
    client without a CommandId, and the ObjectId counter its outgoing fragments share."""

    id: str
    min_runspaces: int
    max_runspaces: int
    client_protocol: str
    cond: threading.Condition = field(default_factory=threading.Condition)
    outbox: pm.Outbox = field(default_factory=pm.Outbox)
    incoming: pm.Defragmenter = field(default_factory=pm.Defragmenter)
    closed: bool = False
    _next_object: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def object_id(self) -> int:
        with self._lock:
            value = self._next_object
            self._next_object += 1
            return value

    def queue(self, message: bytes) -> None:
        with self.cond:
            self.outbox.put(message, self.object_id())
            self.cond.notify_all()


@dataclass
class Pipeline:
    """One pipeline (= one WinRS command of the shell, CommandId = the pipeline id)."""

    pool: RunspacePool
    id: str
    incoming: pm.Defragmenter = field(default_factory=pm.Defragmenter)
    create: pm.CreatePipelineIn | None = None
    inputs: list[Any] = field(default_factory=list)
    input_ended: bool = False
    outbox: pm.Outbox = field(default_factory=pm.Outbox)

    def queue(self, message: bytes) -> None:
        self.outbox.put(message, self.pool.object_id())


def _fault(reason: str, subcode: str = "w:InvalidParameter") -> soap.SoapError:
    return soap.SoapError(f"PowerShell remoting: {reason}", subcode)


def _fragments(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except binascii.Error as exc:
        raise _fault(f"{what} is not base64: {exc}") from exc


class PsrpService:
    """The WinRS actions of PowerShell remoting shells of one endpoint (winrs.WsmanService delegates)."""

    def __init__(self, ws: WsmanService) -> None:
        self.ws = ws
        self.ep = ws.ep

    # -- the runspace pool ----------------------------------------------------------------------
    def create(self, req: soap.SoapRequest, client_ip: str) -> bytes:
        name = req.resource_uri[len(soap.PSRP_URI_PREFIX) :]
        if name.lower() != DEFAULT_CONFIGURATION:
            # Windows: only registered session configurations exist; the lab has the default one.
            raise soap.SoapError(
                f"The WS-Management service cannot process the request. Cannot find the {name} session "
                f"configuration in the WSMan: drive on the {self.ep.name} computer. (the lab models only "
                "Microsoft.PowerShell)",
                "w:InvalidResourceURI",
                wsman_code=CODE_INVALID_RESOURCE_URI,
            )
        node = req.body.find("rsp:Shell", soap.NS) if req.body is not None else None
        if node is None:
            raise _fault("Create without rsp:Shell")
        creation = node.find(f"{{{soap.PSRP_NS}}}creationXml")
        if creation is None or not (creation.text or "").strip():
            raise _fault("Create of a runspace pool without creationXml ([MS-PSRP] 3.1.5.3.2)")
        if "protocolversion" not in req.options:
            raise _fault("Create of a runspace pool without the protocolversion option ([MS-PSRP] 3.1.5.3.2)")
        shell_id = (node.get("ShellId") or str(uuid.uuid4())).upper()
        inputs = (node.findtext("rsp:InputStreams", "", soap.NS) or "").strip() or "stdin pr"
        outputs = (node.findtext("rsp:OutputStreams", "", soap.NS) or "").strip() or "stdout"
        try:
            messages = pm.Defragmenter().feed(_fragments(creation.text or "", "creationXml"))
        except pm.PsrpError as exc:
            raise _fault(str(exc)) from exc
        kinds = [m.message_type for m in messages]
        if kinds != [pm.SESSION_CAPABILITY, pm.INIT_RUNSPACEPOOL]:
            raise _fault(
                "creationXml must hold SESSION_CAPABILITY then INIT_RUNSPACEPOOL ([MS-PSRP] 3.1.4.1), got "
                + ", ".join(m.name for m in messages)
            )
        for message in messages:
            if message.destination != pm.DESTINATION_SERVER or message.rpid != shell_id:
                raise _fault(f"{message.name} is not addressed to the server for runspace pool {shell_id}")
        try:
            capability = pm.read_session_capability(messages[0])
            low, high = pm.read_init_runspacepool(messages[1])
        except pm.PsrpError as exc:
            raise _fault(str(exc)) from exc
        if not re.match(r"^2\.\d+$", capability.protocol_version):
            raise _fault(f"client protocolversion {capability.protocol_version!r} not supported (2.x)")
        if not 1 <= low <= high:
            raise _fault(f"MinRunspaces {low} / MaxRunspaces {high} are not a valid pool size")
        pool = RunspacePool(shell_id, low, high, capability.protocol_version)
        if self.ep.shells.get(shell_id) is not None:
            raise _fault(f"a shell with ShellId {shell_id} already exists", "w:AlreadyExists")
        try:
            shell = self.ep.shells.create(
                self.ep.username, req.options, inputs, outputs, shell_id, req.resource_uri, pool
            )
        except ValueError as exc:
            raise _fault(str(exc), "w:AlreadyExists") from exc
        # [MS-PSRP] 3.1.4.1 / 3.2.4.1: the server answers its SESSION_CAPABILITY, then, for the
        # INIT_RUNSPACEPOOL, APPLICATION_PRIVATE_DATA and RUNSPACEPOOL_STATE Opened.
        pool.queue(pm.session_capability(shell_id))
        pool.queue(pm.application_private_data(shell_id))
        pool.queue(pm.runspacepool_state(shell_id, pm.RUNSPACEPOOL_OPENED))
        log.info(
            "%s: runspace pool %s opened (client protocol %s, PS %s, runspaces %d..%d)",
            self.ep.name,
            shell.id,
            capability.protocol_version,
            capability.ps_version,
            low,
            high,
        )
        return soap.create_response(
            req, shell.id, self.ep.url, self.ep.username, client_ip, inputs, outputs, req.resource_uri
        )

    def delete(self, req: soap.SoapRequest, shell: Shell) -> None:
        pool: RunspacePool = shell.psrp
        with pool.cond:
            pool.closed = True
            pool.cond.notify_all()
        log.info("%s: runspace pool %s closed", self.ep.name, shell.id)

    def _check_uri(self, req: soap.SoapRequest, shell: Shell) -> None:
        if req.resource_uri.lower() != shell.resource_uri.lower():
            raise _fault(
                f"resource URI {req.resource_uri!r} is not the one of shell {shell.id} ({shell.resource_uri})",
                "w:InvalidSelectors",
            )

    # -- pipelines -------------------------------------------------------------------------------
    def command(self, req: soap.SoapRequest, shell: Shell) -> bytes:
        self._check_uri(req, shell)
        pool: RunspacePool = shell.psrp
        line = req.body.find("rsp:CommandLine", soap.NS) if req.body is not None else None
        if line is None:
            raise _fault("Command without rsp:CommandLine")
        arguments = line.findall("rsp:Arguments", soap.NS)
        if (line.findtext("rsp:Command", "", soap.NS) or "").strip() or len(arguments) != 1:
            raise _fault(
                "a pipeline's Command has an empty rsp:Command and one rsp:Arguments: the CREATE_PIPELINE "
                "fragments ([MS-PSRP] 3.1.5.3.4)"
            )
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        if self.ep.shells.find_command(shell, command_id) is not None:
            raise _fault(f"a pipeline with CommandId {command_id} already exists", "w:AlreadyExists")
        data = _fragments(arguments[0].text or "", "the Command's Arguments")
        pipeline = Pipeline(pool, command_id)
        cmd = self.ws._new_command(shell, "", [], "psrp pipeline (CREATE_PIPELINE incomplete)", command_id, "psrp")
        cmd.psrp = pipeline
        cmd.runner = lambda: self._run(pipeline)
        with cmd.cond:
            self._take(cmd, pipeline, data, first=True)
        return soap.command_response(req, cmd.id)

    def send(self, req: soap.SoapRequest, shell: Shell) -> bytes:
        self._check_uri(req, shell)
        stream = req.body.find("rsp:Send/rsp:Stream", soap.NS) if req.body is not None else None
        if stream is None:
            raise _fault("Send without rsp:Stream")
        name = stream.get("Name", "")
        if name not in shell.input_streams.split():
            raise _fault(f"Send on stream {name!r}: the shell's input streams are {shell.input_streams!r}")
        data = _fragments(stream.text or "", f"the {name} data")
        command_id = stream.get("CommandId")
        if not command_id:
            pool: RunspacePool = shell.psrp
            try:
                messages = pool.incoming.feed(data)
            except pm.PsrpError as exc:
                raise _fault(str(exc)) from exc
            names = ", ".join(m.name for m in messages) or "a partial message"
            # The lab makes no runspace pool host calls and models no pool operations (SET_MAX_RUNSPACES,
            # GET_AVAILABLE_RUNSPACES, RESET_RUNSPACE_STATE, key exchange ...): refused loudly.
            raise _fault(f"runspace pool message(s) not modelled by the lab: {names}", "w:ActionNotSupported")
        cmd = self.ws._command(shell, command_id)
        pipeline: Pipeline = cmd.psrp
        with cmd.cond:
            if cmd.state != "waiting" or pipeline.input_ended:
                raise _fault(f"the input of pipeline {cmd.id} is already closed")
            self.ws._drop_at_send(cmd)
            cmd.stdin_seen = True
            self._take(cmd, pipeline, data, first=False)
        return soap.send_response(req)

    def _take(self, cmd: Command, pipeline: Pipeline, data: bytes, first: bool) -> None:
        """Messages for a pipeline (caller holds cmd.cond): CREATE_PIPELINE, then its input."""
        try:
            messages = pipeline.incoming.feed(data)
        except pm.PsrpError as exc:
            raise _fault(str(exc)) from exc
        for message in messages:
            if message.destination != pm.DESTINATION_SERVER or message.rpid != pipeline.pool.id:
                raise _fault(f"{message.name} is not addressed to the server for runspace pool {pipeline.pool.id}")
            if message.pid != pipeline.id:
                raise _fault(f"{message.name} names pipeline {message.pid}, sent to pipeline {pipeline.id}")
            if pipeline.create is None:
                if message.message_type != pm.CREATE_PIPELINE:
                    raise _fault(f"a pipeline starts with CREATE_PIPELINE, not {message.name}")
                try:
                    pipeline.create = pm.read_create_pipeline(message)
                except pm.PsrpError as exc:
                    raise _fault(f"CREATE_PIPELINE: {exc}") from exc
                scripts = [c.cmd for c in pipeline.create.commands]
                first_line = next((ln.strip() for ln in (scripts[0] if scripts else "").splitlines() if ln.strip()), "")
                shown = f"psrp pipeline: {first_line}" + (
                    f" (+{len(scripts) - 1} commands)" if len(scripts) > 1 else ""
                )
                cmd.record["command_line"] = shown if len(shown) <= 300 else shown[:297] + "..."
                if pipeline.create.no_input:
                    pipeline.input_ended = True
                    self._execute(cmd, pipeline)
            elif pipeline.input_ended:
                raise _fault(f"{message.name} after the pipeline's input ended")
            elif message.message_type == pm.PIPELINE_INPUT:
                try:
                    pipeline.inputs.append(pm.read_pipeline_input(message))
                except Exception as exc:  # pypsrp's Serializer raises assorted errors on bad CLIXML
                    raise _fault(f"PIPELINE_INPUT is not a serialized object: {exc}") from exc
            elif message.message_type == pm.END_OF_PIPELINE_INPUT:
                pipeline.input_ended = True
                self._execute(cmd, pipeline)
            else:
                raise _fault(f"pipeline message {message.name} not modelled by the lab", "w:ActionNotSupported")
        if first and pipeline.create is None and not pipeline.incoming.partial:
            raise _fault("the Command carries no CREATE_PIPELINE fragment")

    def _execute(self, cmd: Command, pipeline: Pipeline) -> None:
        """Run the pipeline (caller holds cmd.cond) and queue its messages before anyone reads them."""
        self.ws._execute(cmd)
        assert cmd.result is not None
        for message in result_messages(pipeline.pool.id, pipeline.id, cmd.result):
            pipeline.queue(message)

    def _run(self, pipeline: Pipeline) -> CommandResult:
        """The pipeline's shape must be the one ansible's psrp connection sends; then the backend."""
        create = pipeline.create
        assert create is not None
        problem = _shape_problem(create)
        run_script: Callable[[str, list[Any]], CommandResult] | None = getattr(self.ep.backend, "run_script", None)
        if run_script is None:
            problem = problem or "this endpoint does not run PowerShell remoting pipelines"
        if problem is not None or run_script is None:
            return CommandResult(b"", f"hyperv.integration lab: {problem}\r\n".encode(), 1, False, None)
        return run_script(create.commands[0].cmd, pipeline.inputs)

    def receive(self, req: soap.SoapRequest, shell: Shell) -> bytes:
        self._check_uri(req, shell)
        desired = req.body.find("rsp:Receive/rsp:DesiredStream", soap.NS) if req.body is not None else None
        if desired is None:
            raise _fault("Receive without rsp:DesiredStream")
        streams = (desired.text or "").split()
        if not streams or any(s not in shell.output_streams.split() for s in streams):
            raise _fault(f"Receive of streams {streams!r}: the shell's output streams are {shell.output_streams!r}")
        budget = max(1024, (req.max_envelope - 4096) * 3 // 4)
        deadline = time.monotonic() + req.operation_timeout
        command_id = desired.get("CommandId")
        if not command_id:
            pool: RunspacePool = shell.psrp
            with pool.cond:
                while not pool.outbox:  # nothing for the pool: wait as Windows does, then time out
                    if pool.closed or not pool.cond.wait(max(0.0, deadline - time.monotonic())):
                        raise self.ws._timeout()
                data = pool.outbox.take(budget)
            return soap.psrp_receive_response(req, None, data, False)
        cmd = self.ws._command(shell, command_id)
        pipeline: Pipeline = cmd.psrp
        with cmd.cond:
            self.ws._await_output(cmd, deadline)
            data = pipeline.outbox.take(budget)
            return soap.psrp_receive_response(req, cmd.id, data, not pipeline.outbox)

    def signal(self, req: soap.SoapRequest, shell: Shell) -> bytes:
        self._check_uri(req, shell)
        node = req.body.find("rsp:Signal", soap.NS) if req.body is not None else None
        if node is None:
            raise _fault("Signal without rsp:Signal")
        code = (node.findtext("rsp:Code", "", soap.NS) or "").strip()
        if code.lower() not in (*soap.SIGNAL_PS_CTRL_C, soap.SIGNAL_TERMINATE):
            raise _fault(f"signal code {code!r} is not one PowerShell remoting takes ([MS-PSRP] 3.1.5.3.9)")
        command_id = node.get("CommandId")
        if not command_id:
            log.info("%s: signal %s for runspace pool %s", self.ep.name, code, shell.id)
            return soap.signal_response(req)
        cmd = self.ws._command(shell, command_id)
        with cmd.cond:
            if cmd.state == "waiting":
                cmd.state = "terminated"  # input never ended: the pipeline never runs
                cmd.record["state"] = "stopped before it ran"
            cmd.cond.notify_all()
        self.ep.shells.drop_command(shell, cmd.id)
        log.info("%s: signal %s for pipeline %s", self.ep.name, code, cmd.id)
        return soap.signal_response(req)


def _shape_problem(create: pm.CreatePipelineIn) -> str | None:
    """What the lab does not recognise in a pipeline: it runs exactly one script, no arguments."""
    # With several statements pypsrp sends every statement's commands in ExtraCmds (Cmds holds the first).
    count = max(len(create.commands), create.extra_statements)
    if count != 1:
        return (
            f"the pipeline has {count} commands; the lab recognises exactly one, the hyperv.integration "
            "bootstrap (or ansible-core's put_file/temporary directory script) as a script"
        )
    command = create.commands[0]
    if not command.is_script:
        return f"the pipeline's command is the command {command.cmd[:80]!r}, not a script"
    if command.args:
        return f"the pipeline's script has {command.args} arguments/parameters; the bootstrap takes none"
    merged = sorted(name for name, value in command.merges.items() if value != 0)
    if merged:
        return f"stream merging ({', '.join(merged)}) is not modelled by the lab"
    if create.is_nested or create.redirect_shell_error_output:
        return "nested pipelines and RedirectShellErrorOutputPipe are not modelled by the lab"
    return None


def _lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", "replace")
    if not text:
        return []
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return re.split(r"\r\n|\n", text)


def result_messages(rpid: str, pid: str, result: CommandResult) -> list[bytes]:
    """A lab CommandResult as the messages a Windows PowerShell pipeline would send."""
    messages = [pm.pipeline_output(rpid, pid, line) for line in _lines(result.stdout)]
    if not result.recognised or result.script_refused:
        text = result.stderr.decode("utf-8", "replace").strip() or "hyperv.integration lab: not recognised"
        messages.append(pm.pipeline_state(rpid, pid, pm.PIPELINE_FAILED, (text, LAB_ERROR_ID)))
        return messages
    for line in _lines(result.stderr):
        if line.strip():
            messages.append(pm.error_record_message(rpid, pid, line, "NativeCommandError"))
    if result.exit_code != 0:
        messages.append(pm.set_should_exit(rpid, pid, result.exit_code))
    messages.append(pm.pipeline_state(rpid, pid, pm.PIPELINE_COMPLETED))
    return messages
