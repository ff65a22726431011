# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_integration_service: Windows guests through the PowerShell call layer, others run the module."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.guest_args import (
    GUEST_ARGUMENT_SPEC,
    GUEST_REQUIRED_ONE_OF,
    HV_SOCK_ON_WINDOWS,
    GuestArgumentError,
    desired_guest_services,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils._guest_action import GuestAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._windows_guest import WindowsGuestError, guest_set

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC = GUEST_ARGUMENT_SPEC


class ActionModule(GuestAction):
    MODULE = "hyperv.integration.guest_integration_service"

    def run_windows(self, result: dict[str, t.Any], guest: str) -> dict[str, t.Any]:
        _validation, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC, required_one_of=GUEST_REQUIRED_ONE_OF
        )
        if args.get("hv_sock") is not None:
            result.update(failed=True, changed=False, msg="Windows guest %s: %s" % (guest, HV_SOCK_ON_WINDOWS))
            return result
        try:
            wanted = desired_guest_services(args["services"], windows=True)
            result.update(guest_set(self, guest, wanted, bool(self._task.check_mode), bool(self._task.diff)))
        except (GuestArgumentError, WindowsGuestError) as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result
