# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_kvp: Windows guests through the PowerShell call layer, others run the module."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.guest_kvp import GUEST_KVP_ARGUMENT_SPEC, kvp_wishes
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed
from ansible_collections.hyperv.integration.plugins.plugin_utils._guest_action import GuestAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._windows_guest_kvp import kvp_set

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC = GUEST_KVP_ARGUMENT_SPEC


class ActionModule(GuestAction):
    MODULE = "hyperv.integration.guest_kvp"

    def run_windows(self, result: dict[str, t.Any], guest: str) -> dict[str, t.Any]:
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            # The library checks the sizes, against the limits kvp_set sends it.
            wishes = kvp_wishes(args["items"], args["state"], check_limits=False)
            result.update(
                kvp_set(self, guest, wishes, args["state"], bool(self._task.check_mode), bool(self._task.diff))
            )
        except ArgumentError as exc:
            result.update(failed=True, changed=False, msg="Windows guest %s: %s" % (guest, exc))
        except CallFailed as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result
