# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_integration_service: Windows guests through the PowerShell call layer, others run the module."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.guest_args import (
    GUEST_ARGUMENT_SPEC,
    GUEST_REQUIRED_ONE_OF,
    HOST_TIME_SAMPLES_ON_LINUX,
    HV_SOCK_ON_WINDOWS,
    desired_guest_services,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed
from ansible_collections.hyperv.integration.plugins.plugin_utils._guest_action import GuestAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._windows_guest import guest_set

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC = GUEST_ARGUMENT_SPEC


class ActionModule(GuestAction):
    MODULE = "hyperv.integration.guest_integration_service"

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        if self._task.args.get("host_time_samples") is not None and not _powershell.is_windows(self):
            # Refused here, before anything is sent, so the message names the guest as the inventory does.
            guest = _powershell.target_label(self, task_vars)
            return {"failed": True, "changed": False, "msg": "Linux guest %s: %s" % (guest, HOST_TIME_SAMPLES_ON_LINUX)}
        return super().run(tmp, task_vars)

    def run_windows(self, result: dict[str, t.Any], guest: str) -> dict[str, t.Any]:
        _validation, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC, required_one_of=GUEST_REQUIRED_ONE_OF
        )
        if args.get("hv_sock") is not None:
            result.update(failed=True, changed=False, msg="Windows guest %s: %s" % (guest, HV_SOCK_ON_WINDOWS))
            return result
        try:
            wanted = desired_guest_services(args["services"], windows=True)
            result.update(
                guest_set(
                    self,
                    guest,
                    wanted,
                    bool(self._task.check_mode),
                    bool(self._task.diff),
                    host_time_samples=args.get("host_time_samples"),
                )
            )
        except (ArgumentError, CallFailed) as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result
