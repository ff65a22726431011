# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_kvp_info: Windows guests through the PowerShell call layer, others run the module."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed
from ansible_collections.hyperv.integration.plugins.plugin_utils._guest_action import GuestAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._windows_guest_kvp import kvp_info

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC: dict[str, t.Any] = {}


class ActionModule(GuestAction):
    MODULE = "hyperv.integration.guest_kvp_info"

    def run_windows(self, result: dict[str, t.Any], guest: str) -> dict[str, t.Any]:
        self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            result.update(kvp_info(self, guest))
        except CallFailed as exc:
            result.update(failed=True, msg=str(exc))
        return result
