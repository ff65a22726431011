# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring a Linux guest's half of the integration services to the wanted state: probe, plan, run the
steps, probe again (the guest modules' logic). Internal to this collection: not a public API."""

from __future__ import annotations

import errno
import os
import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.linux_guest_plan import (
    IcPlan,
    Step,
    plan_hv_sock,
    plan_ic,
)
from ansible_collections.hyperv.integration.plugins.module_utils.linux_guest_probe import (
    HV_SOCK,
    GuestProbe,
    GuestStateError,
    Runner,
    _path,
    probe,
)

NOT_A_GUEST = (
    "this machine is not a Hyper-V guest: it has no VMBus (/sys/bus/vmbus), so there are no integration "
    "services to configure. Nothing was changed."
)


def _state_of(probe_: GuestProbe, key: str) -> dict[str, t.Any]:
    ic = probe_.services[key]
    if ic.provider == "kernel":
        return {"driver": ic.driver, "hv_utils": bool(probe_.modules.get("hv_utils"))}
    unit = ic.daemon
    return {
        "unit": unit.name if unit else None,
        "active": bool(unit and unit.active),
        "enabled": bool(unit and unit.enabled),
    }


def _projected(before: dict[str, t.Any], wish: dict[str, t.Any], plan: IcPlan) -> dict[str, t.Any]:
    """What check mode expects after the plan's steps."""
    after = dict(before)
    if "unit" in after and plan.steps:
        if wish.get("state") in ("started", "restarted"):
            after["active"] = True
        elif wish.get("state") == "stopped":
            after["active"] = False
        if "enabled" in wish and any(s.command and s.command[1] in ("enable", "disable") for s in plan.steps):
            after["enabled"] = wish["enabled"]
    if "hv_utils" in after and plan.steps:
        after["hv_utils"] = True
    return after


def _execute(step: Step, root: str, run: Runner) -> str | None:
    """Run one step; the error text, or None."""
    if step.command:
        rc, out, err = run(step.command)
        return None if rc == 0 else (err or out or "exit code %d" % rc).strip()
    if step.write:
        path, text = step.write
        try:
            if path.startswith("/etc/"):  # a configuration file (sysfs files exist or must not be made)
                os.makedirs(os.path.dirname(_path(root, path)), exist_ok=True)
            with open(_path(root, path), "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            if exc.errno == errno.EEXIST:  # new_id already holds the class: the kernel knows it
                return None
            return str(exc)
    if step.remove:
        try:
            os.unlink(_path(root, step.remove))
        except FileNotFoundError:
            return None
        except OSError as exc:
            return str(exc)
    return None


def _hv_sock_state(probe_: GuestProbe) -> dict[str, bool]:
    return {
        "loaded": bool(probe_.modules.get(HV_SOCK)),
        "at_boot": bool(probe_.modules_at_boot.get(HV_SOCK)) or HV_SOCK in probe_.modules_builtin,
    }


def apply_guest_state(
    wanted: dict[str, dict[str, t.Any]],
    skip_not_offered: bool,
    check_mode: bool,
    root: str,
    run: Runner,
    release: str,
    hv_sock: bool | None = None,
) -> dict[str, t.Any]:
    """Probe, plan every IC (failing before any change), run the steps, verify. Returns the module result."""
    try:
        before = probe(root, run, release)
    except GuestStateError as exc:
        return {"failed": True, "changed": False, "msg": str(exc) + ". Nothing was changed.", "diff_data": {}}
    result: dict[str, t.Any] = {
        "changed": False,
        "hyperv_guest": before.hyperv_guest,
        "integration_services": {},
        "not_offered": [],
        "diff_data": {"before": {}, "after": {}},
    }
    if not before.hyperv_guest:
        return dict(result, failed=True, msg=NOT_A_GUEST)

    plans: dict[str, IcPlan] = {}
    problems = []
    for key, wish in wanted.items():
        if key not in before.services:
            problems.append("%s is a Windows guest service; Linux guests do not have it" % key)
            continue
        try:
            plans[key] = plan_ic(before, key, wish, skip_not_offered)
        except GuestStateError as exc:
            problems.append(str(exc))
    hv_sock_steps: list[Step] = []
    if hv_sock is not None:
        try:
            hv_sock_steps = plan_hv_sock(before, root, hv_sock)
        except GuestStateError as exc:
            problems.append(str(exc))
    if problems:
        return dict(result, failed=True, msg="; ".join(problems) + ". Nothing was changed.")

    failures: dict[str, str] = {}
    done: dict[str, list[str]] = {key: [] for key in plans}
    if not check_mode:
        for key, plan in plans.items():
            for step in plan.steps:
                error = _execute(step, root, run)
                if error:
                    failures[key] = "%s: %s failed: %s" % (key, step.description, error)
                    break
                done[key].append(step.description)
        done[HV_SOCK] = []
        for step in hv_sock_steps:
            error = _execute(step, root, run)
            if error:
                failures[HV_SOCK] = "hv_sock: %s failed: %s" % (step.description, error)
                break
            done[HV_SOCK].append(step.description)
    try:
        after = probe(root, run, release) if not check_mode else None
    except GuestStateError as exc:
        return dict(result, failed=True, changed=any(done.values()), msg="after the changes: %s" % exc)

    for key, plan in plans.items():
        wish = wanted[key]
        old = _state_of(before, key)
        new = _projected(old, wish, plan) if after is None else _state_of(after, key)
        entry: dict[str, t.Any] = {
            "offered": before.services[key].offered,
            "before": old,
            "after": new,
            "steps": [s.description for s in plan.steps] if check_mode else done[key],
            "changed": bool(plan.steps) if check_mode else bool(done[key]),
        }
        if plan.not_offered:
            # Not "skipped": Ansible would count a result with a true "skipped" as a skipped task.
            entry["not_offered"] = True
            result["not_offered"].append(key)
        if plan.note:
            entry["note"] = plan.note
        if after is not None and key not in failures and "unit" in new and not plan.not_offered:
            state = wish.get("state")
            if state in ("started", "restarted") and not new["active"]:
                unit = after.services[key].daemon
                failures[key] = "%s: %s is not active after starting it (ActiveState=%s)" % (
                    key,
                    new["unit"],
                    unit.active_state if unit else "unknown",
                )
        if key in failures:
            entry["error"] = failures[key]
        result["integration_services"][key] = entry
        result["diff_data"]["before"][key] = old
        result["diff_data"]["after"][key] = new

    if hv_sock is not None:
        old = _hv_sock_state(before)
        new = {"loaded": hv_sock, "at_boot": hv_sock} if after is None else _hv_sock_state(after)
        if after is not None and HV_SOCK not in failures and new != {"loaded": hv_sock, "at_boot": hv_sock}:
            failures[HV_SOCK] = "hv_sock: still %s after the changes" % new
        entry = {
            "before": old,
            "after": new,
            "steps": [s.description for s in hv_sock_steps] if check_mode else done.get(HV_SOCK, []),
            "changed": bool(hv_sock_steps) if check_mode else bool(done.get(HV_SOCK)),
        }
        if HV_SOCK in failures:
            entry["error"] = failures[HV_SOCK]
        result["hv_sock"] = entry
        result["diff_data"]["before"][HV_SOCK] = old
        result["diff_data"]["after"][HV_SOCK] = new

    entries = list(result["integration_services"].items()) + (
        [(HV_SOCK, result["hv_sock"])] if "hv_sock" in result else []
    )
    result["changed"] = any(e["changed"] for _key, e in entries)
    if failures:
        changed = [k for k, e in entries if e["changed"]]
        result["failed"] = True
        result["msg"] = "%s. Changed: %s. Rerun to converge once the cause is fixed." % (
            "; ".join(failures.values()),
            ", ".join(changed) if changed else "nothing",
        )
    return result
