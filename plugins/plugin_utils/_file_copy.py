# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm_file_copy's decisions on the host's answers: which VMs can take a copy, which need one, and how the
outcome reads.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.plugin_utils._guest_path import RECORD_VALUE

GSI = "Guest Service Interface"
_ENABLE_HINT = "enable it with hyperv.integration.vm_integration_service (services: {guest_service_interface: enabled})"
_GUEST_HINT = (
    "start its guest half: the vmicguestinterface service in a Windows guest (hyperv.integration."
    "guest_integration_service), hv_fcopy_daemon in a Linux guest (the hyperv.integration.linux_guest role)"
)


def record_value(sha256: str) -> str:
    return RECORD_VALUE % sha256.lower()


def unready_reason(vm: dict[str, t.Any]) -> str | None:
    """Why this VM cannot take a copy now (from vm_file_copy_plan's answer), or None when it can."""
    if vm.get("error"):
        return "could not be read: %s" % (vm["error"] or {}).get("message")
    if vm.get("state") != "Running":
        return "is %s: %s copies only into a running VM" % (vm.get("state"), GSI)
    if vm.get("gsi_enabled") is None:
        return "has no %s (a VM configuration version that predates it)" % GSI
    if not vm["gsi_enabled"]:
        return "has %s disabled: %s" % (GSI, _ENABLE_HINT)
    if vm.get("gsi_status") != "Ok":
        return "does not answer %s (status %s): %s" % (GSI, vm.get("gsi_status"), _GUEST_HINT)
    return None


def _unready(host: str, unready: list[tuple[str, str]]) -> str:
    described = "; ".join("VM %r %s" % (name, reason) for name, reason in unready)
    return "Hyper-V host %s: %d VM(s) cannot take a file through %s: %s" % (host, len(unready), GSI, described)


def unready_message(host: str, unready: list[tuple[str, str]]) -> str:
    return _unready(host, unready) + ". Nothing was copied to any VM (skip_unready: true copies to the others)"


def skipped_warning(host: str, unready: list[tuple[str, str]]) -> str:
    return _unready(host, unready) + ". skip_unready is set: they were skipped, the others were copied to"


def vm_entry(vm: dict[str, t.Any], dest: str, checksum: str, force: bool, skip: str | None) -> dict[str, t.Any]:
    """One VM of the module's ``vms``, before the copy: whether it needs one."""
    previous = vm.get("recorded")
    wanted = record_value(checksum)
    return {
        "name": vm.get("name"),
        "requested_name": vm.get("requested_name"),
        "id": vm.get("id"),
        "dest": dest,
        "previous_checksum": previous.split(":", 1)[1] if isinstance(previous, str) and ":" in previous else None,
        "checksum": checksum,
        "needs_copy": skip is None and (force or previous != wanted),
        "changed": False,
        "skipped": skip,
        "error": None,
    }


def apply_copies(entries: list[dict[str, t.Any]], answer: dict[str, t.Any]) -> list[str]:
    """Fold vm_file_copy's answer into the entries; the errors, each naming its VM."""
    by_id = {vm.get("id"): vm for vm in answer.get("vms") or []}
    failed = []
    for entry in entries:
        if not entry["needs_copy"]:
            continue
        done = by_id.get(entry["id"])
        if done is None:
            entry["error"] = "the host answered nothing for this VM"
        else:
            entry["changed"] = bool(done.get("copied"))
            if done.get("error"):
                entry["error"] = (done["error"] or {}).get("message")
                if done.get("copied") and not done.get("recorded"):
                    entry["error"] = "copied, but the checksum could not be recorded: %s" % entry["error"]
        if entry["error"]:
            failed.append("VM %r: %s" % (entry["name"], entry["error"]))
    return failed


def finish(entries: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The module's ``vms``: the entries without the working key."""
    return [{k: v for k, v in entry.items() if k != "needs_copy"} for entry in entries]


def diff_of(entries: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    """Per VM that gets (or would get) the file: the recorded checksum before and the source's after."""
    before: dict[str, t.Any] = {}
    after: dict[str, t.Any] = {}
    for entry in entries:
        if entry["needs_copy"]:
            if entry["previous_checksum"] is not None:
                before[entry["name"]] = {entry["dest"]: "sha256:%s" % entry["previous_checksum"]}
            after[entry["name"]] = {entry["dest"]: "sha256:%s" % entry["checksum"]}
    return {"before": before, "after": after}


def removal_note(host: str, path: str, answer: dict[str, t.Any] | None) -> str | None:
    """A sentence when the controller's upload is still on the host, else None."""
    if answer is not None and answer.get("source_removed"):
        return None
    why = ""
    if answer is not None and answer.get("remove_error"):
        why = " (%s)" % (answer["remove_error"] or {}).get("message")
    return "The temporary directory %s on Hyper-V host %s could not be removed%s; remove it by hand." % (
        path,
        host,
        why,
    )
