"""WinRS actions of one endpoint (Create, Command, Send, Receive, Signal, Delete): what each
does to the shells and commands, when a command runs, and where faults fire. No HTTP here."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import TYPE_CHECKING, Any

from . import command_run, soap
from .psrp import PsrpService
from .shells import Command, Shell

if TYPE_CHECKING:
    from .wsman import Endpoint

log = logging.getLogger("hvlab.wsman")


class DropConnection(Exception):
    """Fault injection: close the HTTP connection without answering."""


class WsmanService:
    """SOAP action handling for one endpoint (no HTTP here)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.ep = endpoint
        self.actions = {
            soap.ACTION_CREATE: self.create,
            soap.ACTION_COMMAND: self.command,
            soap.ACTION_SEND: self.send,
            soap.ACTION_RECEIVE: self.receive,
            soap.ACTION_SIGNAL: self.signal,
            soap.ACTION_DELETE: self.delete,
        }
        # PowerShell remoting shells (resource URI .../powershell/<configuration>): hvlab/psrp.py.
        self.psrp = PsrpService(self)

    def handle(self, data: bytes, client_ip: str) -> tuple[int, bytes]:
        relates_to = ""
        try:
            req = soap.parse_request(data)
            relates_to = req.message_id
            handler = self.actions.get(req.action)
            if handler is None:
                raise soap.SoapError(
                    f"the WS-Management action {req.action!r} is not supported by the hyperv.integration lab",
                    "a:ActionNotSupported",
                )
            return 200, handler(req, client_ip)
        except soap.SoapError as exc:
            log.warning("%s: SOAP fault: %s", self.ep.name, exc.reason)
            return 500, soap.fault_response(relates_to, exc, self.ep.name)

    # -- helpers ------------------------------------------------------------------------------
    def _shell(self, req: soap.SoapRequest) -> Shell:
        shell = self.ep.shells.get(req.shell_id)
        if shell is None:
            raise soap.SoapError(
                f"The request for the Windows Remote Shell with ShellId {req.shell_id} failed "
                "because the shell was not found on the server.",
                "w:InvalidSelectors",
                wsman_code=soap.CODE_SHELL_NOT_FOUND,
            )
        return shell

    def _command(self, shell: Shell, command_id: str | None) -> Command:
        cmd = self.ep.shells.find_command(shell, command_id)
        if cmd is None:
            raise soap.SoapError(f"no command {command_id!r} in shell {shell.id}", "w:InvalidSelectors")
        return cmd

    @staticmethod
    def _timeout() -> soap.SoapError:
        return soap.SoapError(
            "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
            "w:TimedOut",
            "s:Receiver",
            soap.CODE_OPERATION_TIMEOUT,
        )

    # -- actions ------------------------------------------------------------------------------
    def create(self, req: soap.SoapRequest, client_ip: str) -> bytes:
        if req.resource_uri.lower().startswith(soap.PSRP_URI_PREFIX):
            return self.psrp.create(req, client_ip)
        if req.resource_uri != soap.CMD_SHELL_URI:
            raise soap.SoapError(
                f"resource {req.resource_uri!r} is not supported by the lab (only the "
                "cmd shell that pywinrm and ansible's winrm connection use)",
                "w:DestinationUnreachable",
            )
        body = req.body
        node = body.find("rsp:Shell", soap.NS) if body is not None else None
        inputs = _text(node, "rsp:InputStreams") or "stdin"
        outputs = _text(node, "rsp:OutputStreams") or "stdout stderr"
        shell = self.ep.shells.create(self.ep.username, req.options, inputs, outputs)
        log.info("%s: shell %s created (options %s)", self.ep.name, shell.id, req.options)
        return soap.create_response(req, shell.id, self.ep.url, self.ep.username, client_ip, inputs, outputs)

    def command(self, req: soap.SoapRequest, client_ip: str) -> bytes:
        shell = self._shell(req)
        if shell.psrp is not None:
            return self.psrp.command(req, shell)
        line = _required(req, "rsp:CommandLine", "Command")
        command = _text(line, "rsp:Command")
        arguments = [(a.text or "") for a in line.findall("rsp:Arguments", soap.NS)]
        cmd = self._new_command(shell, command, arguments, " ".join([command, *arguments]))
        return soap.command_response(req, cmd.id)

    def _new_command(
        self,
        shell: Shell,
        command: str,
        arguments: list[str],
        shown: str,
        command_id: str | None = None,
        transport: str = "winrs",
    ) -> Command:
        """A new command in the shell: counted in `commands`, in the recent list and the log;
        ``transport``: winrs (a cmd shell command) or psrp (a PowerShell remoting pipeline)."""
        cmd = self.ep.shells.add_command(shell, command, arguments, command_id)
        cmd.record = command_run.begin(self.ep, shown, transport, cmd.id)
        log.info("%s: command %s: %s", self.ep.name, cmd.id, cmd.record["command_line"])
        return cmd

    def send(self, req: soap.SoapRequest, client_ip: str) -> bytes:
        shell = self._shell(req)
        if shell.psrp is not None:
            return self.psrp.send(req, shell)
        stream = req.body.find("rsp:Send/rsp:Stream", soap.NS) if req.body is not None else None
        if stream is None or stream.get("Name", "stdin") != "stdin":
            raise soap.SoapError('Send without an rsp:Stream Name="stdin"')
        cmd = self._command(shell, stream.get("CommandId"))
        try:
            chunk = base64.b64decode((stream.text or "").strip(), validate=True)
        except binascii.Error as exc:
            raise soap.SoapError(f"stdin chunk is not base64: {exc}") from exc
        end = stream.get("End", "false").lower() == "true"
        with cmd.cond:
            if cmd.state != "waiting" or cmd.stdin_ended:
                raise soap.SoapError(f"stdin of command {cmd.id} is already closed")
            self._drop_at_send(cmd)
            cmd.stdin.append(chunk)
            cmd.stdin_seen = True
            if end:
                cmd.stdin_ended = True
                self._execute(cmd)
        return soap.send_response(req)

    def _drop_at_send(self, cmd: Command) -> None:
        """drop_connection at send (caller holds cmd.cond): the command never runs, no reply."""
        if self.ep.faults.take("drop_connection", lambda f: f.params["at"] == "send"):
            cmd.state = "aborted"  # the command never runs
            cmd.record["state"] = "aborted (drop_connection at send)"
            cmd.cond.notify_all()
            log.warning("%s: fault drop_connection at send: command %s aborted", self.ep.name, cmd.id)
            raise DropConnection()

    def receive(self, req: soap.SoapRequest, client_ip: str) -> bytes:
        shell = self._shell(req)
        if shell.psrp is not None:
            return self.psrp.receive(req, shell)
        desired = _required(req, "rsp:Receive/rsp:DesiredStream", "Receive")
        cmd = self._command(shell, desired.get("CommandId"))
        deadline = time.monotonic() + req.operation_timeout
        with cmd.cond:
            if cmd.state == "waiting" and not cmd.stdin_seen:
                self._execute(cmd)  # a command without stdin runs at the first Receive
            self._await_output(cmd, deadline)
            return self._output(req, cmd)

    def _await_output(self, cmd: Command, deadline: float) -> None:
        """Wait (caller holds cmd.cond) until the command's output may be sent: it ran and a delay fault
        has passed; the faults of an aborted or terminated command, and drop_connection at receive."""
        while cmd.state == "waiting":  # stdin started but not ended: wait like a real process
            if not cmd.cond.wait(max(0.0, deadline - time.monotonic())):
                raise self._timeout()
        if cmd.state == "aborted":
            # First Receive: what the client would see after OperationTimeout (answered at once
            # so tests stay fast); later ones: a plain fault, so retry loops end.
            cmd.aborted_receives += 1
            if cmd.aborted_receives == 1:
                raise self._timeout()
            raise soap.SoapError(
                f"command {cmd.id} was aborted by a dropped connection (lab fault injection)", "w:InvalidSelectors"
            )
        if cmd.state == "terminated":
            raise soap.SoapError(f"command {cmd.id} was terminated", "w:InvalidSelectors")
        while time.monotonic() < cmd.ready_at:  # delay fault: output held back
            if time.monotonic() >= deadline:
                raise self._timeout()
            cmd.cond.wait(min(cmd.ready_at, deadline) - time.monotonic())
        if self.ep.faults.take("drop_connection", lambda f: f.params["at"] == "receive"):
            log.warning("%s: fault drop_connection at receive: command %s", self.ep.name, cmd.id)
            raise DropConnection()

    def signal(self, req: soap.SoapRequest, client_ip: str) -> bytes:
        shell = self._shell(req)
        if shell.psrp is not None:
            return self.psrp.signal(req, shell)
        node = _required(req, "rsp:Signal", "Signal")
        code = _text(node, "rsp:Code")
        command_id = node.get("CommandId") or ""
        cmd = self.ep.shells.find_command(shell, command_id)
        if cmd is not None and code.lower() == soap.SIGNAL_TERMINATE:
            with cmd.cond:
                if cmd.state == "waiting":
                    cmd.state = "terminated"  # stdin never completed: it never runs
                    cmd.record["state"] = "terminated before it ran"
                cmd.cond.notify_all()
            self.ep.shells.drop_command(shell, cmd.id)
        log.info("%s: signal %s for command %s", self.ep.name, code.rsplit("/", 1)[-1], command_id)
        return soap.signal_response(req)

    def delete(self, req: soap.SoapRequest, client_ip: str) -> bytes:
        shell = self._shell(req)
        if shell.psrp is not None:
            self.psrp.delete(req, shell)
        self.ep.shells.delete(req.shell_id)
        log.info("%s: shell %s deleted", self.ep.name, req.shell_id)
        return soap.delete_response(req)

    # -- running ------------------------------------------------------------------------------
    def _execute(self, cmd: Command) -> None:
        """Run the command (caller holds cmd.cond). The model changes here, before any output."""
        stdin = b"".join(cmd.stdin) if cmd.stdin_seen else None
        result, delay = command_run.execute(self.ep, cmd.record, cmd.command, cmd.arguments, stdin, cmd.runner)
        cmd.ready_at = time.monotonic() + delay
        cmd.result = result
        cmd.state = "done"
        cmd.cond.notify_all()

    def _output(self, req: soap.SoapRequest, cmd: Command) -> bytes:
        """Next slice of output; large output spans several Receives, as on Windows, so that no
        envelope exceeds the client's MaxEnvelopeSize."""
        assert cmd.result is not None
        budget = max(1024, (req.max_envelope - 4096) * 3 // 4)
        out = cmd.result.stdout[cmd.stdout_sent : cmd.stdout_sent + budget]
        cmd.stdout_sent += len(out)
        err = cmd.result.stderr[cmd.stderr_sent : cmd.stderr_sent + budget - len(out)]
        cmd.stderr_sent += len(err)
        done = cmd.stdout_sent >= len(cmd.result.stdout) and cmd.stderr_sent >= len(cmd.result.stderr)
        return soap.receive_response(req, cmd.id, out, err, done, cmd.result.exit_code)


def _required(req: soap.SoapRequest, path: str, action: str) -> Any:
    """The element at ``path`` in the SOAP body; a SOAP fault naming it when it is not there."""
    node = req.body.find(path, soap.NS) if req.body is not None else None
    if node is None:
        raise soap.SoapError("%s without %s" % (action, path))
    return node


def _text(node: Any, path: str) -> str:
    if node is None:
        return ""
    child = node.find(path, soap.NS)
    return (child.text or "").strip() if child is not None else ""
