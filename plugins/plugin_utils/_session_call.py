# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the calls over a session of our own share, whatever carries them (_winrm_call with pywinrm,
_psrp_call with pypsrp): where the host is, and the request in and the answer out, built and read as the
action plugins build and read them (protocol doc section 1). For code that has no task connection: the
inventory plugin.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import validate_params


@dataclass(frozen=True)
class SessionTarget:
    """Where one Hyper-V host is, and as whom; each connection's own options are in its subclass."""

    host: str
    port: int
    user: str
    password: str | None


def prepared(library: str, operation: str, params: dict[str, t.Any]) -> tuple[dict[str, t.Any], bytes]:
    """The request (a read: check mode off) and the stdin that carries it with the library; the params are
    checked against the operation's schema first (a mismatch is our bug: never send it)."""
    validate_params(operation, params)
    request = _powershell.build_request(operation, params, False)
    return request, _powershell.build_stdin(_powershell.library_text(library), request)


def answered(stdout: str, stderr: str, rc: int, request: dict[str, t.Any]) -> dict[str, t.Any]:
    """The operation's result from what the host printed; the _powershell errors otherwise."""
    return _powershell.result_of(_powershell.parse_output(stdout, stderr, rc, request["nonce"]))
