# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One library call, with every way it can fail turned into a message for the user.

Internal to this collection: not a public API. Both PowerShell callers (the host action plugins and
the Windows guest half) call through here, so a failure reads the same wherever it happens.
"""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell

# Exception types a caller without the rights gets: .NET's access denied, and the registry's
# "Requested registry access is not allowed" (protocol doc sections 5 and 7).
_PERMISSION_TYPES = ("System.UnauthorizedAccessException", "System.Security.SecurityException")


class CallFailed(Exception):
    """The call gave no usable answer; the message is ready for the user."""


def is_permission_denied(category: object, error_type: object) -> bool:
    """Whether an error the library reported means the account lacks the rights (the one test for it)."""
    return category == "PermissionDenied" or error_type in _PERMISSION_TYPES


def call(
    action: t.Any,
    library: str,
    operation: str,
    params: dict[str, t.Any],
    check_mode: bool,
    *,
    target: str,
    writes: bool,
    explain: t.Callable[[_powershell.HostOperationError], str],
    may_have_changed: str,
) -> dict[str, t.Any]:
    """``_powershell.call``, raising CallFailed with a message that starts with ``target``.

    ``explain`` words an error the library reported (it ran, and wrote nothing by then: protocol doc
    section 4); ``may_have_changed`` says what a writing call may have done before its answer was lost.
    """
    nothing_changed = " Nothing was changed." if writes else ""
    try:
        return _powershell.call(action, library, operation, params, check_mode)
    except _powershell.NotPowerShellError as exc:
        raise CallFailed("%s: %s" % (target, exc)) from exc
    except _powershell.UnsupportedHostError as exc:
        raise CallFailed("%s: %s.%s" % (target, exc, nothing_changed)) from exc
    except _powershell.HostOperationError as exc:
        raise CallFailed(explain(exc) + nothing_changed) from exc
    except _powershell.PowerShellCallError as exc:
        message = "%s: %s." % (target, exc)
        if writes:
            message += " %s before the answer was lost; rerun the task, it converges." % may_have_changed
        raise CallFailed(message) from exc
