# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One library operation on a Windows host over a WinRM session of our own (pywinrm), for code that has no
task connection: the inventory plugin. The same bootstrap, library and request as the action plugins send
through ansible's winrm connection (protocol doc section 1), one PowerShell process per call.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils._session_call import SessionTarget, answered, prepared

try:
    import winrm

    HAS_WINRM = True
except ImportError:  # reported when a host is asked for, with what to install
    HAS_WINRM = False


@dataclass(frozen=True)
class WinRMTarget(SessionTarget):
    """How to reach one Hyper-V host over WinRM (options named as ansible.builtin.winrm names them)."""

    transport: str
    scheme: str
    server_cert_validation: str
    connection_timeout: int = 20  # WinRM OperationTimeout; reads wait 10 s more (as ansible.builtin.winrm sets them)
    ca_trust_path: str | None = None

    @property
    def endpoint(self) -> str:
        return "%s://%s:%d/wsman" % (self.scheme, self.host, self.port)


def command_words() -> list[str]:
    """The bootstrap as the words of a WinRS command, exactly as ansible's PowerShell shell encodes it."""
    return _powershell.build_command(ShellModule()).split(" ")  # encoding needs none of the shell's options


def call(target: WinRMTarget, library: str, operation: str, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The operation's result; the _powershell errors as for the action plugins (PowerShellCallError for a
    host that cannot be reached or gives no answer)."""
    if not HAS_WINRM:
        raise _powershell.PowerShellCallError(
            "the Python library pywinrm is needed on the controller (pip install pywinrm)"
        )
    request, stdin = prepared(library, operation, params)
    words = command_words()
    try:
        protocol = winrm.Protocol(
            endpoint=target.endpoint,
            transport=target.transport,  # type: ignore[arg-type]
            username=target.user,
            password=target.password,
            server_cert_validation=target.server_cert_validation,  # type: ignore[arg-type]
            operation_timeout_sec=target.connection_timeout,
            read_timeout_sec=target.connection_timeout + 10,
            ca_trust_path=target.ca_trust_path or "legacy_requests",  # pywinrm's default: requests' own CAs
        )
        shell_id = protocol.open_shell(codepage=65001)
        try:
            command_id = protocol.run_command(shell_id, words[0], words[1:])
            protocol.send_command_input(shell_id, command_id, stdin, end=True)
            stdout, stderr, rc = protocol.get_command_output(shell_id, command_id)
            protocol.cleanup_command(shell_id, command_id)
        finally:
            protocol.close_shell(shell_id)
    except Exception as exc:  # requests, pywinrm and auth errors: all mean "no answer from this host"
        raise _powershell.PowerShellCallError("WinRM %s: %s" % (target.endpoint, exc)) from exc
    return answered(stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"), rc, request)
