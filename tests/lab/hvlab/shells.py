"""WinRS shells and commands of one endpoint: what Create/Command/Send/Receive/Signal/Delete
change. Each command has a condition variable: a Receive waits on it for stdin to end, for the
command to run, or for an injected delay to pass."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .protocol import CommandResult


@dataclass
class Command:
    id: str
    command: str
    arguments: list[str]
    stdin: list[bytes] = field(default_factory=list)
    stdin_seen: bool = False  # at least one Send arrived
    stdin_ended: bool = False  # Send with End="true" arrived
    state: str = "waiting"  # waiting | done | aborted | terminated
    result: CommandResult | None = None
    ready_at: float = 0.0  # output held back until then (delay fault)
    stdout_sent: int = 0
    stderr_sent: int = 0
    aborted_receives: int = 0
    record: dict[str, Any] = field(default_factory=dict)  # entry in the endpoint's recent list
    cond: threading.Condition = field(default_factory=threading.Condition)
    runner: Callable[[], CommandResult] | None = None  # set for a psrp pipeline: runs instead of backend.run
    psrp: Any = None  # hvlab.psrp.Pipeline of a PowerShell remoting shell's command


@dataclass
class Shell:
    id: str
    owner: str
    options: dict[str, str]
    input_streams: str
    output_streams: str
    created: float = field(default_factory=time.time)
    commands: dict[str, Command] = field(default_factory=dict)
    resource_uri: str = ""
    psrp: Any = None  # hvlab.psrp.RunspacePool when this shell is a PowerShell remoting runspace pool


class ShellTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shells: dict[str, Shell] = {}

    def create(
        self,
        owner: str,
        options: dict[str, str],
        input_streams: str,
        output_streams: str,
        shell_id: str | None = None,
        resource_uri: str = "",
        psrp: Any = None,
    ) -> Shell:
        """A new shell; ``shell_id``: the id the client chose (a psrp client names its runspace pool),
        None when the server picks one. ValueError when a shell with that id already exists."""
        shell = Shell((shell_id or str(uuid.uuid4())).upper(), owner, options, input_streams, output_streams)
        shell.resource_uri = resource_uri
        shell.psrp = psrp
        with self._lock:
            if shell.id in self._shells:
                raise ValueError(f"a shell with ShellId {shell.id} already exists")
            self._shells[shell.id] = shell
        return shell

    def get(self, shell_id: str | None) -> Shell | None:
        with self._lock:
            return self._shells.get((shell_id or "").upper())

    def delete(self, shell_id: str | None) -> Shell | None:
        with self._lock:
            return self._shells.pop((shell_id or "").upper(), None)

    def add_command(self, shell: Shell, command: str, arguments: list[str], command_id: str | None = None) -> Command:
        cmd = Command((command_id or str(uuid.uuid4())).upper(), command, arguments)
        with self._lock:
            shell.commands[cmd.id] = cmd
        return cmd

    def find_command(self, shell: Shell, command_id: str | None) -> Command | None:
        with self._lock:
            return shell.commands.get((command_id or "").upper())

    def drop_command(self, shell: Shell, command_id: str) -> Command | None:
        with self._lock:
            return shell.commands.pop(command_id.upper(), None)

    def count(self) -> int:
        with self._lock:
            return len(self._shells)
