# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the host modules that write (vm_integration_service, vm_kvp) return per VM, and how they word
a call whose writes failed part-way.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.plugin_utils._host_report import (
    named_twice_problem,
    vm_resolution_problem,
)


def vm_result(vm: dict[str, t.Any], items_key: str, items: dict[str, dict[str, t.Any]]) -> dict[str, t.Any]:
    """One VM of the module's ``vms``: the host's answer for it, with its items by key."""
    return {
        "name": vm.get("name"),
        "requested_name": vm.get("requested_name"),
        "id": vm.get("id"),
        "state": vm.get("state"),
        "changed": any(item["changed"] for item in items.values()),
        "error": (vm.get("error") or {}).get("message"),
        items_key: items,
    }


def write_failure_message(
    host: str,
    vms: list[dict[str, t.Any]],
    items_key: str,
    label: t.Callable[[str], str],
    done: list[str],
) -> str | None:
    """Say which writes failed, and which were done, so the user knows where the host stands; None when
    nothing failed. ``label`` names an item in the message; ``done`` lists what was changed."""
    failed = []
    for vm in vms:
        if vm.get("error"):
            failed.append("VM %r could not be read, so nothing was changed on it: %s" % (vm["name"], vm["error"]))
        for key, item in vm[items_key].items():
            if "error" in item:
                failed.append("VM %r %s: %s" % (vm["name"], label(key), item["error"]))
    if not failed:
        return None
    message = "Hyper-V host %s: %d change(s) failed: %s." % (host, len(failed), "; ".join(failed))
    message += " Done: %s." % ("; ".join(done) if done else "nothing")
    return message + " Everything else was already as requested. Rerun the task to converge."


def refused(host: str, answer: dict[str, t.Any], result: dict[str, t.Any], problem: str | None) -> bool:
    """Whether the host wrote nothing because of the request (VMs missing, ambiguous or named twice, or
    ``problem``, the module's own reason from the answer); then ``result`` fails, saying so."""
    problem = (
        vm_resolution_problem(host, answer) or named_twice_problem(host, answer.get("named_twice") or []) or problem
    )
    if not problem:
        return False
    result.update(failed=True, changed=False, msg=problem + ". Nothing was changed.")
    if answer.get("missing"):
        result["missing_vms"] = answer["missing"]
    return True


def report(
    result: dict[str, t.Any], vms: list[dict[str, t.Any]], diff: dict[str, t.Any] | None, failure: str | None
) -> None:
    """The module's vms, changed (only when something changed), diff (when asked) and failure message."""
    result["vms"] = vms
    result["changed"] = any(vm["changed"] for vm in vms)
    if diff is not None:
        result["diff"] = diff
    if failure:
        result.update(failed=True, msg=failure)


def summarise(
    answer: dict[str, t.Any],
    items_key: str,
    key_of: t.Callable[[dict[str, t.Any]], str],
    describe: t.Callable[[dict[str, t.Any]], dict[str, t.Any]],
    diff_of: t.Callable[[dict[str, t.Any]], tuple[t.Any, t.Any]],
) -> tuple[list[dict[str, t.Any]], dict[str, t.Any]]:
    """The module's ``vms`` and diff from the host's answer: each VM's answered items (``items_key``) by
    ``key_of``, each described by ``describe`` with its error's message, and in the diff by ``diff_of``
    (before, after; a None side is left out)."""
    vms = []
    before: dict[str, dict[str, t.Any]] = {}
    after: dict[str, dict[str, t.Any]] = {}
    for vm in answer.get("vms") or []:
        items: dict[str, dict[str, t.Any]] = {}
        for item in vm.get(items_key) or []:
            key = key_of(item)
            items[key] = describe(item)
            if item.get("error"):
                items[key]["error"] = (item["error"] or {}).get("message")
            was, now = diff_of(item)
            vm_before, vm_after = before.setdefault(vm["name"], {}), after.setdefault(vm["name"], {})
            if was is not None:
                vm_before[key] = was
            if now is not None:
                vm_after[key] = now
        vms.append(vm_result(vm, items_key, items))
    return vms, {"before": before, "after": after}
