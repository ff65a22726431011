# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PowerShell call layer: one fixed library plus a request as data, JSON back between markers.

Internal to this collection: not a public API, it may change without notice.

docs/dev/powershell-protocol.md is the contract. Nothing a user gives is
ever placed in PowerShell text: the request is JSON, base64-encoded, read by the library from stdin.
The command line carries only the fixed bootstrap, far below the 8191-character limit of a command
line through cmd.exe (docs/dev/hyperv-facts.md section 1), whatever the number of VMs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import typing as t

from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import validate_params

PROTOCOL = 1
LIBRARY_MARKER = "# HYPERV_INTEGRATION_LIBRARY protocol=%d" % PROTOCOL
_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "powershell")

# The library bodies the collection ships, by the kind of Windows machine they run on. Each call sends
# one library: _prelude.ps1 + the body + _dispatch.ps1 (one text, one script block on the far side).
HOST_LIBRARY = "hyperv_host.ps1"
WINDOWS_GUEST_LIBRARY = "windows_guest.ps1"


class PowerShellCallError(Exception):
    """The call could not be made or its answer could not be read (transport, shell, crash)."""


class UnsupportedHostError(Exception):
    """The bootstrap found it cannot run the library there (language mode, version): nothing ran."""


class NotPowerShellError(Exception):
    """The connection does not use a PowerShell shell: nothing was sent."""


class HostOperationError(Exception):
    """The library ran and reported an error; nothing was written by that operation."""

    def __init__(self, error: dict[str, t.Any]) -> None:
        self.error_type = str(error.get("type") or "")
        self.error_message = str(error.get("message") or "")
        self.category = str(error.get("category") or "")
        self.vm = error.get("vm")
        self.service = error.get("service")
        super().__init__("%s: %s" % (self.error_type, self.error_message))


def read_text(name: str) -> str:
    with open(os.path.join(_HERE, name), encoding="utf-8") as handle:
        return handle.read()


def library_text(body: str) -> str:
    """The whole library for one body: prelude (param block, marker), body, dispatch."""
    return "\n".join(read_text(part) for part in ("_prelude.ps1", body, "_dispatch.ps1"))


def build_request(
    operation: str, params: dict[str, t.Any], check_mode: bool, nonce: str | None = None
) -> dict[str, t.Any]:
    return {
        "protocol": PROTOCOL,
        "nonce": nonce or secrets.token_hex(16),
        "operation": operation,
        "check_mode": bool(check_mode),
        "params": params,
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def build_stdin(library: str, request: dict[str, t.Any]) -> bytes:
    """Two base64 lines: the library, then the request (protocol section 1)."""
    if LIBRARY_MARKER not in library.splitlines():
        raise ValueError("PowerShell library lacks its marker line %r" % LIBRARY_MARKER)
    payload = json.dumps(request, ensure_ascii=False, separators=(",", ":"))
    return ("%s\n%s\n" % (_b64(library), _b64(payload))).encode("ascii")


def build_command(shell: t.Any) -> str:
    """The encoded bootstrap for the connection's PowerShell shell plugin.

    winrm and psrp recognise an already encoded command and run it as is; ssh runs it through the
    remote shell. In every case the bootstrap reads the library and the request from stdin.
    """
    if getattr(shell, "SHELL_FAMILY", None) != "powershell":  # see is_windows()
        raise NotPowerShellError(
            "this module runs PowerShell on the Windows host: set ansible_shell_type=powershell "
            "(the connection plugin winrm, psrp or ssh with a PowerShell shell)"
        )
    return shell._encode_script(read_text("bootstrap.ps1"), strict_mode=False, preserve_rc=False)


# The bootstrap's one line when the library cannot run there (protocol doc section 6).
_UNSUPPORTED = re.compile(r"^HYPERV_INTEGRATION_UNSUPPORTED (language_mode|powershell_version)=(\S*)\s*$", re.M)
# ansible's winrm connection quotes stdout inline in its error when the stdin send fails.
_UNSUPPORTED_QUOTED = re.compile(r"HYPERV_INTEGRATION_UNSUPPORTED (language_mode|powershell_version)=(\w*)")


def unsupported_message(what: str, value: str) -> str:
    if what == "language_mode":
        return (
            "PowerShell there runs in %s mode, not FullLanguage, so the collection's PowerShell cannot run: "
            "Constrained Language Mode (enforced by an AppLocker or Windows Defender Application Control "
            "policy) forbids the .NET calls and script blocks it needs. Nothing was run. Use an account or "
            "session configuration that the policy lets run in FullLanguage" % (value or "an unknown")
        )
    return (
        "the collection needs Windows PowerShell 5.1 or later, and PowerShell there is version %s. "
        "Nothing was run. Install Windows Management Framework 5.1" % value
    )


def parse_output(stdout: str, stderr: str, rc: int, nonce: str) -> dict[str, t.Any]:
    """Return the RESPONSE object from the library's output; UnsupportedHostError when the bootstrap
    said the library cannot run there; PowerShellCallError when there is no readable answer."""
    unsupported = _UNSUPPORTED.search(stdout or "")
    if unsupported:
        raise UnsupportedHostError(unsupported_message(unsupported.group(1), unsupported.group(2)))
    pattern = r"HYPERV_INTEGRATION_BEGIN_%s\s+([A-Za-z0-9+/=\s]*?)\s*HYPERV_INTEGRATION_END_%s" % (nonce, nonce)
    match = re.search(pattern, stdout or "")
    if not match:
        detail = (stderr or "").strip() or (stdout or "").strip() or "no output"
        raise PowerShellCallError("the PowerShell library gave no answer (rc=%s): %s" % (rc, detail[:4000]))
    try:
        response = json.loads(base64.b64decode("".join(match.group(1).split())).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PowerShellCallError("the PowerShell library answered something unreadable: %s" % exc) from exc
    if not isinstance(response, dict) or response.get("protocol") != PROTOCOL:
        raise PowerShellCallError("the PowerShell library answered with an unexpected protocol: %r" % (response,))
    return response


def result_of(response: dict[str, t.Any]) -> dict[str, t.Any]:
    """The operation's result, or HostOperationError when the library reported a failure."""
    if not response.get("ok"):
        raise HostOperationError(response.get("error") or {"type": "Unknown", "message": "no error given"})
    result = response.get("result")
    return result if isinstance(result, dict) else {}


def call(action: t.Any, library: str, operation: str, params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """Run one operation in one PowerShell process through the task's connection.

    ``action`` is the running ActionBase. A connection without a PowerShell shell raises
    NotPowerShellError (nothing sent), a host where the library cannot run UnsupportedHostError,
    transport problems PowerShellCallError, a reported failure HostOperationError; otherwise the
    operation's result is returned.
    """
    validate_params(operation, params)  # a schema mismatch is our bug: never send it
    request = build_request(operation, params, check_mode)
    command = build_command(action._connection._shell)
    stdin = build_stdin(library_text(library), request)
    try:
        res = action._low_level_execute_command(command, in_data=stdin, sudoable=False)
    except Exception as exc:  # the connection plugin raises many types; all mean "no reliable answer"
        # winrm reports a failed stdin send with the stdout it got: the bootstrap's refusal may be in it.
        unsupported = _UNSUPPORTED_QUOTED.search(str(exc))
        if unsupported:
            raise UnsupportedHostError(unsupported_message(unsupported.group(1), unsupported.group(2))) from exc
        raise PowerShellCallError("the connection failed during the call: %s" % exc) from exc
    response = parse_output(res.get("stdout", ""), res.get("stderr", ""), res.get("rc", -1), request["nonce"])
    return result_of(response)


def target_label(action: t.Any, task_vars: dict[str, t.Any] | None) -> str:
    """The inventory name of the machine the call reaches: the delegate when the task is delegated."""
    delegate = getattr(action._task, "delegate_to", None)
    if delegate:
        return str(delegate)
    return str((task_vars or {}).get("inventory_hostname") or action._play_context.remote_addr)


def is_windows(action: t.Any) -> bool:
    """Whether the task's connection talks to a PowerShell shell (a Windows machine)."""
    return getattr(action._connection._shell, "SHELL_FAMILY", None) == "powershell"
