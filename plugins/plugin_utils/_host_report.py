# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Messages for what a Hyper-V host answered: unknown VMs, missing ICs, failed writes.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_host_guid
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import is_permission_denied
from ansible_collections.hyperv.integration.plugins.plugin_utils._powershell import HostOperationError

# Exception text Hyper-V gives a user who is not allowed to manage it (protocol doc section 5).
_PERMISSION_HINT = (
    " The account needs to be a member of the host's 'Hyper-V Administrators' group (or an administrator)."
)


def _any_permission_denied(errors: list[dict[str, t.Any]]) -> bool:
    return any(is_permission_denied((e or {}).get("category"), (e or {}).get("type")) for e in errors)


def ic_label(guid: str) -> str:
    ic = by_host_guid(guid)
    return ic.key if ic else guid


def quoted(names: t.Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


def vm_resolution_problem(host: str, result: dict[str, t.Any]) -> str | None:
    """A message when names matched no VM or several VMs, else None."""
    parts = []
    missing = result.get("missing") or []
    ambiguous = result.get("ambiguous") or {}
    if missing:
        parts.append("no VM named %s on Hyper-V host %s" % (quoted(missing), host))
        errors = result.get("vm_list_errors") or []
        if errors:
            parts[-1] += " (listing its VMs reported: %s)" % "; ".join(str((e or {}).get("message")) for e in errors)
            if _any_permission_denied(errors):
                parts[-1] += _PERMISSION_HINT
    for name, ids in ambiguous.items():
        parts.append(
            "%r names %d VMs on Hyper-V host %s (ids %s); rename one of them" % (name, len(ids), host, ", ".join(ids))
        )
    return "; ".join(parts) if parts else None


def read_warnings(host: str, result: dict[str, t.Any]) -> list[str]:
    """Warnings for what the host could not read: VMs Get-VM could not list, and each VM whose
    integration services could not be read (answered on that VM; the other VMs were read)."""
    warnings = [
        "Hyper-V host %s: listing its VMs reported an error: %s" % (host, (error or {}).get("message"))
        for error in result.get("vm_list_errors") or []
    ]
    warnings.extend(
        "Hyper-V host %s: VM %r could not be read: %s" % (host, vm.get("name"), (vm["error"] or {}).get("message"))
        for vm in result.get("vms") or []
        if vm.get("error")
    )
    return warnings


def listing_problem(host: str, errors: list[dict[str, t.Any]]) -> str:
    """Get-VM listed no VM and reported errors: say so, with the permission hint when it applies."""
    message = "Hyper-V host %s could not list its VMs: %s" % (
        host,
        "; ".join(str((e or {}).get("message")) for e in errors),
    )
    if _any_permission_denied(errors):
        message += _PERMISSION_HINT
    return message


def named_twice_problem(host: str, items: list[dict[str, t.Any]]) -> str | None:
    """VMs that two entries of vms name (in two spellings the host takes for one VM)."""
    if not items:
        return None
    described = "; ".join(
        "VM %r is named twice in vms (%s); give it one entry" % (item.get("vm"), quoted(item.get("names") or []))
        for item in items
    )
    return "on Hyper-V host %s: %s" % (host, described)


def missing_services_problem(host: str, items: list[dict[str, t.Any]]) -> str | None:
    if not items:
        return None
    described = ", ".join("VM %r has no %s" % (item.get("vm"), ic_label(item.get("guid", ""))) for item in items)
    return "integration service not found on Hyper-V host %s: %s" % (host, described)


def host_error_message(host: str, error: HostOperationError) -> str:
    where = ""
    if error.vm:
        where += " for VM %r" % error.vm
    if error.service:
        where += " (%s)" % ic_label(str(error.service))
    message = "Hyper-V host %s reported an error%s: %s" % (host, where, error.error_message or error.error_type)
    if is_permission_denied(error.category, error.error_type):
        message += _PERMISSION_HINT
    return message
