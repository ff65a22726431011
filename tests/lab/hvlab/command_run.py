"""One command on one endpoint, whatever carried it (a WinRS Command, a PSRP pipeline, an ssh
session): what is counted, recorded in `recent_commands`, logged, and which per-command faults
(delay) are taken. The transports decide only how the command and its input arrive and how the
output leaves."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .protocol import CommandResult

if TYPE_CHECKING:
    from .wsman import Endpoint

log = logging.getLogger("hvlab.commands")


def begin(ep: Endpoint, command_line: str, transport: str, command_id: str | None = None) -> dict[str, Any]:
    """Count a command that arrived and start its `recent_commands` entry."""
    ep.counters.add("commands")
    record: dict[str, Any] = {
        "id": command_id or str(uuid.uuid4()).upper(),
        "time": round(time.time(), 3),
        "transport": transport,
        "command_line": command_line if len(command_line) <= 300 else command_line[:297] + "...",
        "state": "waiting",
        "exit_code": None,
        "operation": None,
        "stderr": None,
    }
    ep.recent.append(record)
    return record


def execute(
    ep: Endpoint,
    record: dict[str, Any],
    command: str,
    arguments: list[str],
    stdin: bytes | None,
    runner: Callable[[], CommandResult] | None = None,
) -> tuple[CommandResult, float]:
    """Run the command on the endpoint's backend, or ``runner`` instead (a PSRP pipeline's script and
    input), and return its result with the seconds its output is held back (the delay fault, 0 without).
    The model changes here, before any output."""
    try:
        result = runner() if runner is not None else ep.backend.run(command, arguments, stdin)
    except Exception as exc:  # a lab bug must fail the command loudly, not hang the client
        log.exception("%s: command %s: lab internal error", ep.name, record.get("id"))
        result = CommandResult(b"", f"hyperv.integration lab internal error: {exc!r}\r\n".encode(), 1)
    ep.counters.add("calls" if result.recognised else "rejected")
    delay = ep.faults.take("delay")
    seconds = float(delay.params["seconds"]) if delay else 0.0
    record.update(
        state="done",
        exit_code=result.exit_code,
        operation=result.operation,
        stderr=result.stderr.decode("utf-8", "replace").strip() or None,
    )
    level = logging.INFO if result.exit_code == 0 else logging.WARNING
    log.log(
        level,
        "%s: command %s (%s): exit %d operation %s%s%s",
        ep.name,
        record.get("id"),
        record["transport"],
        result.exit_code,
        result.operation,
        f" delay {seconds}s" if delay else "",
        f" stderr: {record['stderr']}" if record["stderr"] else "",
    )
    return result, seconds
