# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows half of the guest modules: the vmic* services, through the PowerShell call layer."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import (
    CATALOG,
    WINDOWS_GUEST_ONLY_SERVICES,
    windows_service_name,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell

GUEST_KEYS: tuple[str, ...] = tuple(ic.key for ic in CATALOG) + tuple(WINDOWS_GUEST_ONLY_SERVICES)
_START_MODE = {"automatic": "Automatic", "manual": "Manual", "disabled": "Disabled"}


class WindowsGuestError(Exception):
    """No usable answer from the guest; the message is ready for the user."""


def _call(action: t.Any, guest: str, operation: str, params: dict[str, t.Any], check_mode: bool, writes: bool) -> dict:
    try:
        return _powershell.call(action, _powershell.WINDOWS_GUEST_LIBRARY, operation, params, check_mode)
    except _powershell.HostOperationError as exc:
        text = "Windows guest %s reported an error: %s" % (guest, exc.error_message or exc.error_type)
        if exc.category == "PermissionDenied" or exc.error_type == "System.UnauthorizedAccessException":
            text += " Managing services needs an administrator account in the guest."
        raise WindowsGuestError(text + (" Nothing was changed." if writes else "")) from exc
    except _powershell.PowerShellCallError as exc:
        text = "Windows guest %s: %s." % (guest, exc)
        if writes:
            text += " Some services may have been changed before the answer was lost; rerun the task, it converges."
        raise WindowsGuestError(text) from exc


def guest_info(action: t.Any, guest: str) -> dict[str, t.Any]:
    names = [windows_service_name(key) for key in GUEST_KEYS]
    answer = _call(action, guest, "guest_service_info", {"names": names}, False, writes=False)
    computer = answer.get("computer") or {}
    by_name = {s.get("name"): s for s in answer.get("services") or []}
    services = []
    for key in GUEST_KEYS:
        service = by_name.get(windows_service_name(key)) or {"name": windows_service_name(key), "exists": False}
        services.append({"key": key, "offered": None, "provider": "service", "service": service})
    return {
        "changed": False,
        "os": "windows",
        # A Hyper-V VM reports itself as Microsoft Corporation / Virtual Machine (Win32_ComputerSystem).
        "hyperv_guest": computer.get("manufacturer") == "Microsoft Corporation"
        and computer.get("model") == "Virtual Machine",
        "computer": computer,
        "integration_services": services,
    }


def guest_set(
    action: t.Any, guest: str, wanted: dict[str, dict[str, t.Any]], check_mode: bool, diff: bool
) -> dict[str, t.Any]:
    keys_by_name = {windows_service_name(key): key for key in wanted}
    params = {
        "services": [
            {
                "name": windows_service_name(key),
                "state": wish.get("state"),
                "start_mode": _START_MODE.get(wish.get("start_mode", "")),
            }
            for key, wish in wanted.items()
        ]
    }
    answer = _call(action, guest, "guest_service_set", params, check_mode, writes=True)
    if answer.get("not_a_guest"):
        computer = answer.get("computer") or {}
        return {
            "failed": True,
            "changed": False,
            "msg": "%s is not a Hyper-V guest (it reports %s / %s), so its vmic* services are not changed. "
            "Nothing was changed." % (guest, computer.get("manufacturer"), computer.get("model")),
        }
    if answer.get("missing"):
        return {
            "failed": True,
            "changed": False,
            "msg": "Windows guest %s has no service %s. Nothing was changed."
            % (guest, ", ".join("%s (%s)" % (n, keys_by_name.get(n, n)) for n in answer["missing"])),
        }
    result: dict[str, t.Any] = {"changed": False, "integration_services": {}, "not_offered": []}
    before: dict[str, t.Any] = {}
    after: dict[str, t.Any] = {}
    failures = []
    for item in answer.get("services") or []:
        key = keys_by_name.get(item.get("name"), item.get("name"))
        entry = {
            "service": item.get("name"),
            "before": item.get("before"),
            "after": item.get("after"),
            "changed": bool(item.get("changed")),
        }
        if item.get("error"):
            entry["error"] = item["error"].get("message")
            failures.append("%s (%s): %s" % (key, item.get("name"), entry["error"]))
        result["integration_services"][key] = entry
        before[key], after[key] = entry["before"], entry["after"]
    result["changed"] = any(e["changed"] for e in result["integration_services"].values())
    if diff:
        result["diff"] = {"before": before, "after": after}
    if failures:
        done = [k for k, e in result["integration_services"].items() if e["changed"]]
        result["failed"] = True
        result["msg"] = "Windows guest %s: %s. Changed: %s. Rerun to converge once the cause is fixed." % (
            guest,
            "; ".join(failures),
            ", ".join(done) if done else "nothing",
        )
    return result
