# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for hyperv.integration.vm_integration_service (documentation: plugins/modules)."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_key
from ansible_collections.hyperv.integration.plugins.plugin_utils import _host_changes, _host_wait
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_action import HostAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_args import (
    desired_services,
    vm_names,
    vm_requests,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_report import (
    ic_label,
    missing_services_problem,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC: dict[str, t.Any] = {
    "name": {"type": "raw", "aliases": ["vm", "vm_name"]},
    "services": {"type": "dict"},
    "vms": {
        "type": "list",
        "elements": "dict",
        "options": {"name": {"type": "raw", "required": True}, "services": {"type": "dict", "default": {}}},
    },
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": _host_wait.DEFAULT_TIMEOUT},
}


def _state_word(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


def summarise(result: dict[str, t.Any]) -> tuple[list[dict[str, t.Any]], dict[str, t.Any]]:
    """Per-VM return values and the diff, from the host's answer."""

    def describe(item: dict[str, t.Any]) -> dict[str, t.Any]:
        return {
            "name": item.get("name"),
            "enabled_before": bool(item.get("before")),
            "enabled": bool(item.get("after")),
            "changed": bool(item.get("changed")),
            "primary_status": item.get("primary_status"),
        }

    return _host_changes.summarise(
        result,
        "integration_services",
        lambda item: ic_label(item["guid"]),
        describe,
        lambda item: (_state_word(bool(item.get("before"))), _state_word(bool(item.get("after")))),
    )


def changes_done(vms: list[dict[str, t.Any]]) -> list[str]:
    """The changes made (or, in check mode, that would be made), e.g. "VM 'web01' vss enabled"."""
    done = []
    for vm in vms:
        for key, item in vm["integration_services"].items():
            if "error" not in item and item["changed"]:
                done.append("VM %r %s %s" % (vm["name"], key, _state_word(item["enabled"])))
    return done


def write_failure_message(host: str, vms: list[dict[str, t.Any]]) -> str | None:
    """Say which writes failed, and which were done, so the user knows where the host stands."""
    return _host_changes.write_failure_message(host, vms, "integration_services", str, changes_done(vms))


class ActionModule(HostAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run_host(self, result: dict[str, t.Any], args: dict[str, t.Any]) -> dict[str, t.Any]:
        if args.get("vms") is not None:
            if args.get("name") is not None or args.get("services") is not None:
                raise ArgumentError("give either vms, or name and services, not both")
            requests = vm_requests(args["vms"])
            names = [name for name, _wishes in requests]
            changes = [
                {"guid": by_key(key).host_guid, "enabled": enabled, "vm": name}
                for name, wishes in requests
                for key, enabled in wishes.items()
            ]
            by_vm: dict[str, dict[str, bool]] | None = dict(requests)
            wanted: dict[str, bool] = {}
        else:
            if args.get("name") is None or args.get("services") is None:
                raise ArgumentError("name and services are required (or give vms, a list of {name, services})")
            names = vm_names(args["name"], allow_empty=True)
            wanted = desired_services(args["services"])
            changes = [
                {"guid": by_key(key).host_guid, "enabled": enabled, "vm": None} for key, enabled in wanted.items()
            ]
            by_vm = None
        if args["wait_timeout"] < 0:
            raise ArgumentError("wait_timeout must be 0 or more seconds, got %d" % args["wait_timeout"])
        if not names:  # e.g. "every VM of the host" on a host that has none
            result.update(changed=False, vms=[])
            if args["wait"]:
                result["wait"] = skipped_wait("no VM was named")
            return result

        params = build_params("vm_integration_service_set", vm_names=names, changes=changes)
        answer = self.call_host("vm_integration_service_set", params, writes=True)

        missing = answer.get("missing_services") or []
        if _host_changes.refused(self.host, answer, result, missing_services_problem(self.host, missing)):
            if missing:
                result["missing_services"] = [
                    {"vm": item.get("vm"), "service": ic_label(item.get("guid", ""))} for item in missing
                ]
            return result

        vms, diff = summarise(answer)
        failure = write_failure_message(self.host, vms)
        _host_changes.report(result, vms, diff if self._task.diff else None, failure)
        if failure:
            if args["wait"]:
                result["wait"] = skipped_wait("some changes failed")
            return result
        if args["wait"]:
            keys: _host_wait.WaitedKeys = _host_wait.waited_keys(wanted)
            if by_vm is not None:
                # Each VM waits for its own services, by the name the task gave it (the host answers it).
                keys = {name: _host_wait.waited_keys(wishes) for name, wishes in by_vm.items()}
            self.wait_for_guests(result, vms, keys, args["wait_timeout"])
        return result

    def wait_for_guests(
        self, result: dict[str, t.Any], vms: list[dict[str, t.Any]], keys: _host_wait.WaitedKeys, timeout: int
    ) -> None:
        """wait=true: read the host until the guests answer every service asked enabled (see _host_wait)."""
        running, not_running = _host_wait.split_by_state(vms)
        if self._task.check_mode:
            result["wait"] = skipped_wait("check mode: nothing was changed, so no guest was waited for")
            return
        if isinstance(keys, dict):
            running = [name for name in running if keys.get(name)]  # a VM that asks nothing enabled has no wait
        asked = any(keys.values()) if isinstance(keys, dict) else bool(keys)
        if not asked or not running:
            reason = "no service is asked to be enabled" if not asked else "no VM named is Running"
            result["wait"] = dict(skipped_wait(reason), not_running=not_running)
            return

        def poll(names: list[str]) -> dict[str, t.Any]:
            return self.call_host(
                "vm_integration_service_info", build_params("vm_integration_service_info", vm_names=names), writes=False
            )

        done = changes_done(vms)
        if not any(vm["changed"] for vm in vms) and not _host_wait.pending_in(vms, running, keys):
            # Nothing changed and the set answer's statuses are current: every guest has answered already.
            waited = [vm["name"] for vm in vms if vm["requested_name"] in running]
            result["wait"] = dict(skipped_wait(None), answered=True, vms=waited, not_running=not_running)
            result["wait"]["services"] = _host_wait.all_keys(keys)
            return
        try:
            report = _host_wait.wait_for_guests(poll, running, keys, timeout)
        except CallFailed as exc:
            made = "; ".join(done) if done else "nothing (the services were already as requested)"
            result.update(
                failed=True,
                msg="While waiting for the guests to answer: %s The changes were made and stay made: %s." % (exc, made),
            )
            return
        report["vms"] = [vm["name"] for vm in vms if vm["requested_name"] in running]  # as the host spells them
        report["services"] = _host_wait.all_keys(keys)
        report["not_running"] = not_running + report["not_running"]
        report["skipped"] = None
        result["wait"] = report
        if not report["answered"]:
            result.update(failed=True, msg=_host_wait.timeout_message(self.host, report, timeout, done))


def skipped_wait(reason: str | None) -> dict[str, t.Any]:
    """The ``wait`` return value when nothing was waited for (no host read made)."""
    return {
        "skipped": reason,
        "answered": None,
        "polls": 0,
        "elapsed": 0.0,
        "vms": [],
        "services": [],
        "not_answering": [],
        "not_running": [],
        "not_found": [],
    }
