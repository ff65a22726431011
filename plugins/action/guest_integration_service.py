# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_integration_service: Windows guests through the PowerShell call layer, others run the module."""

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase

from ansible_collections.hyperv.integration.plugins.module_utils.guest_args import (
    GUEST_ARGUMENT_SPEC,
    GuestArgumentError,
    desired_guest_services,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils._powershell import is_windows
from ansible_collections.hyperv.integration.plugins.plugin_utils._windows_guest import WindowsGuestError, guest_set

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC = GUEST_ARGUMENT_SPEC


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        self._supports_check_mode = True
        self._supports_async = False
        result = super().run(tmp, task_vars)
        del tmp
        if not is_windows(self):
            # Linux (and any other POSIX guest): the real module in plugins/modules does the work.
            result.update(
                self._execute_module(
                    module_name="hyperv.integration.guest_integration_service",
                    module_args=self._task.args,
                    task_vars=task_vars,
                )
            )
            return result
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        guest = _powershell.target_label(self, task_vars)
        try:
            wanted = desired_guest_services(args["services"], windows=True)
            result.update(guest_set(self, guest, wanted, bool(self._task.check_mode), bool(self._task.diff)))
        except (GuestArgumentError, WindowsGuestError) as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result
