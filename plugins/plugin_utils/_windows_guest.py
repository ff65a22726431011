# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows half of the guest modules: the vmic* services, through the PowerShell call layer.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import (
    CATALOG,
    WINDOWS_GUEST_ONLY_SERVICES,
    windows_service_name,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils import _call_failure, _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed, is_permission_denied
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params

GUEST_KEYS: tuple[str, ...] = tuple(ic.key for ic in CATALOG) + tuple(WINDOWS_GUEST_ONLY_SERVICES)
_START_MODE = {"automatic": "Automatic", "manual": "Manual", "disabled": "Disabled"}
# W32Time's Hyper-V time provider (docs/dev/hyperv-facts.md section 2): the library knows its key and
# names it in every time_provider answer (key); messages made before any answer say host_time_samples.


def call_library(
    action: t.Any, guest: str, operation: str, params: dict[str, t.Any], check_mode: bool, writes: bool
) -> dict:
    """One Windows guest library operation; every failure becomes CallFailed with the guest named."""

    def explain(exc: _powershell.HostOperationError) -> str:
        text = "Windows guest %s reported an error: %s" % (guest, exc.error_message or exc.error_type)
        if is_permission_denied(exc.category, exc.error_type):
            if params.get("time_provider_enabled") is not None:
                text += " Setting host_time_samples needs an administrator account in the guest."
            elif operation.startswith("guest_kvp"):
                text += " Publishing key-value pairs needs an administrator account in the guest."
            else:
                text += " Managing services needs an administrator account in the guest."
        return text

    return _call_failure.call(
        action,
        _powershell.WINDOWS_GUEST_LIBRARY,
        operation,
        params,
        check_mode,
        target="Windows guest %s" % guest,
        writes=writes,
        explain=explain,
        may_have_changed="Some services may have been changed",
    )


def guest_info(action: t.Any, guest: str) -> dict[str, t.Any]:
    names = [windows_service_name(key) for key in GUEST_KEYS]
    answer = call_library(
        action, guest, "guest_service_info", build_params("guest_service_info", names=names), False, writes=False
    )
    computer = answer.get("computer") or {}
    by_name = {s.get("name"): s for s in answer.get("services") or []}
    services = []
    for key in GUEST_KEYS:
        service = by_name.get(windows_service_name(key)) or {"name": windows_service_name(key), "exists": False}
        services.append({"key": key, "offered": None, "provider": "service", "service": service})
    return {
        "changed": False,
        "os": "windows",
        # Decided by the library (Get-ComputerIdentity), the same test its guest_service_set refuses on.
        "hyperv_guest": bool(computer.get("hyperv_guest")),
        "computer": {"manufacturer": computer.get("manufacturer"), "model": computer.get("model")},
        "integration_services": services,
        "time_provider": {"vmic_time_provider_enabled": _samples_enabled(answer.get("time_provider"))},
    }


def _samples_enabled(state: t.Any) -> bool | None:
    """Whether W32Time takes time samples from the host, from VMICTimeProvider's Enabled value.

    None when the key or the value is absent, or the value is not a REG_DWORD (Windows' own reading of
    those is not documented, so it is not guessed here).
    """
    if not isinstance(state, dict) or state.get("kind") != "DWord" or not isinstance(state.get("enabled"), int):
        return None
    return state["enabled"] != 0


def guest_set(
    action: t.Any,
    guest: str,
    wanted: dict[str, dict[str, t.Any]],
    check_mode: bool,
    diff: bool,
    host_time_samples: bool | None = None,
) -> dict[str, t.Any]:
    """Apply ``wanted`` (IC key -> wish) and, unless None, ``host_time_samples`` in one call."""
    keys_by_name = {windows_service_name(key): key for key in wanted}
    params = build_params(
        "guest_service_set",
        services=[
            {
                "name": windows_service_name(key),
                "state": wish.get("state"),
                "start_mode": _START_MODE.get(wish.get("start_mode") or ""),
            }
            for key, wish in wanted.items()
        ],
        time_provider_enabled=None if host_time_samples is None else int(bool(host_time_samples)),
    )
    answer = call_library(action, guest, "guest_service_set", params, check_mode, writes=True)
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
    time_provider = answer.get("time_provider")
    if host_time_samples is not None:
        if not isinstance(time_provider, dict):
            raise CallFailed(
                "Windows guest %s: the guest library gave no answer about host_time_samples; rerun the task, "
                "it converges." % guest
            )
        if not time_provider.get("present"):
            return {
                "failed": True,
                "changed": False,
                "msg": "Windows guest %s has no registry key %s (the Hyper-V time provider of W32Time), so "
                "host_time_samples cannot be set. Nothing was changed." % (guest, time_provider.get("key")),
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
    if host_time_samples is not None and isinstance(time_provider, dict):
        entry, problems = _time_provider_entry(time_provider)
        result["host_time_samples"] = entry
        result["changed"] = result["changed"] or entry["changed"]
        before["host_time_samples"], after["host_time_samples"] = entry["before"], entry["after"]
        failures.extend(problems)
    if diff:
        result["diff"] = {"before": before, "after": after}
    if failures:
        done = [k for k, e in result["integration_services"].items() if e["changed"]]
        if result.get("host_time_samples", {}).get("changed"):
            done.append("host_time_samples")
        result["failed"] = True
        result["msg"] = "Windows guest %s: %s. Changed: %s. Rerun to converge once the cause is fixed." % (
            guest,
            "; ".join(failures),
            ", ".join(done) if done else "nothing",
        )
    return result


def _time_provider_entry(answer: dict[str, t.Any]) -> tuple[dict[str, t.Any], list[str]]:
    """The module's ``host_time_samples`` result from the library's ``time_provider`` answer, and the
    failures to report (a failed write, a failed W32Time restart)."""
    before = answer.get("before") or {}
    after = answer.get("after") or {}
    w32time = answer.get("w32time") or {}
    entry: dict[str, t.Any] = {
        "key": answer.get("key"),
        "before": _samples_enabled(before),
        "after": _samples_enabled(after),
        "value_before": before.get("enabled"),
        "value_after": after.get("enabled"),
        "changed": bool(answer.get("changed")),
        "w32time_restarted": bool(w32time.get("restarted")),
    }
    problems = []
    error = answer.get("error")
    if error:
        entry["error"] = error.get("message") or error.get("type")
        text = "host_time_samples (%s value Enabled): %s" % (entry["key"], entry["error"])
        if is_permission_denied(error.get("category"), error.get("type")):
            text += " Setting it needs an administrator account in the guest"
        problems.append(text)
    restart_error = w32time.get("error")
    if restart_error:
        entry["w32time_error"] = restart_error.get("message") or restart_error.get("type")
        problems.append(
            "host_time_samples: the value was written, but restarting W32Time failed (%s); W32Time reads it when "
            "it starts, and a rerun finds the value already set and does not restart it again, so restart W32Time "
            "(Restart-Service W32Time) or the guest for it to take effect" % entry["w32time_error"]
        )
    return entry, problems
