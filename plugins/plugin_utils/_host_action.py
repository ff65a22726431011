# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every host module's action plugin does around its one library call.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.plugin_utils import _call_failure, _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_args import vm_names
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_report import (
    host_error_message,
    listing_problem,
    read_warnings,
    vm_resolution_problem,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params


class HostAction(ActionBase):
    """Validate arguments, make one PowerShell call on the host, turn failures into clear messages.

    Subclasses set ARGUMENT_SPEC and implement ``run_host(result, args)``.
    """

    TRANSFERS_FILES = False
    _requires_connection = True
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {}

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        self._supports_check_mode = True
        self._supports_async = False
        result = super().run(tmp, task_vars)
        del tmp
        self.host = _powershell.target_label(self, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        try:
            return self.run_host(result, args)
        except ArgumentError as exc:
            return dict(result, failed=True, msg=str(exc))
        except CallFailed as exc:
            return dict(result, failed=True, changed=False, msg=str(exc))

    def run_host(self, result: dict[str, t.Any], args: dict[str, t.Any]) -> dict[str, t.Any]:
        raise NotImplementedError

    def call_host(self, operation: str, params: dict[str, t.Any], writes: bool) -> dict[str, t.Any]:
        """One library operation; ``writes`` says whether it may change the host (for the messages)."""
        check_mode = bool(self._task.check_mode) if writes else False
        return _call_failure.call(
            self,
            _powershell.HOST_LIBRARY,
            operation,
            params,
            check_mode,
            target="Hyper-V host %s" % self.host,
            writes=writes,
            explain=lambda exc: host_error_message(self.host, exc),
            may_have_changed="The host may have applied some of the changes",
        )


class HostInfoAction(HostAction):
    """A host info module: option ``name`` (omitted: every VM), one read, each VM described by ``describe``.

    Subclasses set OPERATION and implement ``describe(vm)``; ``extra_params()`` adds request keys.
    """

    OPERATION = ""

    def run_host(self, result: dict[str, t.Any], args: dict[str, t.Any]) -> dict[str, t.Any]:
        # Read-only: runs the same in check mode.
        names = None if args.get("name") is None else vm_names(args["name"])
        params = build_params(self.OPERATION, vm_names=names, **self.extra_params())
        answer = self.call_host(self.OPERATION, params, writes=False)
        problem = vm_resolution_problem(self.host, answer)
        if not problem and not answer.get("vms") and answer.get("vm_list_errors"):
            # Get-VM listed nothing and said why (e.g. not allowed): that is no empty host.
            problem = listing_problem(self.host, answer["vm_list_errors"])
        if problem:
            result.update(failed=True, msg=problem)
            if answer.get("missing"):
                result["missing_vms"] = answer["missing"]
            return result
        result["changed"] = False
        result["vms"] = [self.describe(vm) for vm in answer.get("vms") or []]
        warnings = read_warnings(self.host, answer) + self.more_warnings(result["vms"])
        if warnings:
            result["warnings"] = warnings
        return result

    def extra_params(self) -> dict[str, t.Any]:
        return {}

    def more_warnings(self, vms: list[dict[str, t.Any]]) -> list[str]:
        """Warnings of this module's own, from the VMs as described."""
        return []

    def describe(self, vm: dict[str, t.Any]) -> dict[str, t.Any]:
        raise NotImplementedError
