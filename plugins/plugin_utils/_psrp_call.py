# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One library operation on a Windows host over a PowerShell Remoting (PSRP) session of our own (pypsrp), for
code that has no task connection: the inventory plugin. What runs is what ansible.builtin.psrp runs for an
action plugin's call: the bootstrap's text as the pipeline's script, the two stdin lines as its input
(ansible/plugins/connection/psrp.py, exec_command: it decodes the shell plugin's -EncodedCommand and
feeds the input lines to the pipeline). One pipeline per call.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import base64
import typing as t
from dataclasses import dataclass

from ansible.plugins.shell.powershell import ShellModule

from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils._session_call import SessionTarget, answered, prepared

try:
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    HAS_PYPSRP = True
except ImportError:  # reported when a host is asked for, with what to install
    HAS_PYPSRP = False


@dataclass(frozen=True)
class PsrpTarget(SessionTarget):
    """How to reach one Hyper-V host over PSRP (options named as ansible.builtin.psrp names them)."""

    auth: str
    protocol: str
    cert_validation: str
    connection_timeout: int = 30  # ansible.builtin.psrp's default; operations and reads get as long
    ca_cert: str | None = None
    message_encryption: str = "auto"

    @property
    def endpoint(self) -> str:
        return "%s://%s:%d/wsman" % (self.protocol, self.host, self.port)


def bootstrap_script() -> str:
    """The bootstrap as ansible.builtin.psrp runs it: the text of the shell plugin's -EncodedCommand."""
    command = _powershell.build_command(ShellModule())
    return base64.b64decode(command.rsplit(" ", maxsplit=1)[-1]).decode("utf-16-le")


def call(target: PsrpTarget, library: str, operation: str, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The operation's result; the _powershell errors as for the action plugins (PowerShellCallError for a
    host that cannot be reached or gives no answer)."""
    if not HAS_PYPSRP:
        raise _powershell.PowerShellCallError(
            "the Python library pypsrp is needed on the controller (pip install pypsrp)"
        )
    request, stdin = prepared(library, operation, params)
    # As ansible.builtin.psrp: "ignore" turns validation off, a CA file or directory validates against it.
    cert_validation: bool | str = target.cert_validation != "ignore"
    if cert_validation and target.ca_cert:
        cert_validation = target.ca_cert
    try:
        wsman = WSMan(
            target.host,
            port=target.port,
            username=target.user,
            password=target.password,
            ssl=target.protocol == "https",
            auth=target.auth,
            # pypsrp hands it to requests' verify, which also takes a CA path (ansible.builtin.psrp passes one too).
            cert_validation=cert_validation,  # type: ignore[arg-type]
            connection_timeout=target.connection_timeout,
            operation_timeout=target.connection_timeout,
            read_timeout=target.connection_timeout + 10,
            encryption=target.message_encryption,
        )
        with wsman, RunspacePool(wsman) as pool:
            pipeline = PowerShell(pool)
            pipeline.add_script(bootstrap_script(), use_local_scope=True)
            # A list, as ansible.builtin.psrp passes it (pypsrp's annotation says Iterator; it takes any iterable).
            pipeline.invoke(input=stdin.decode("utf-8").splitlines())  # type: ignore[arg-type]
            stdout = "\r\n".join(str(item) for item in pipeline.output)
            stderr = "\r\n".join(str(error) for error in pipeline.streams.error)
            rc = 1 if pipeline.had_errors else 0
    except Exception as exc:  # requests, pypsrp and auth errors: all mean "no answer from this host"
        raise _powershell.PowerShellCallError("PSRP %s: %s" % (target.endpoint, exc)) from exc
    return answered(stdout, stderr, rc, request)
