# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_integration_service_info: Windows guests through the PowerShell call layer, others run the module."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.guest_args import GUEST_INFO_ARGUMENT_SPEC
from ansible_collections.hyperv.integration.plugins.plugin_utils._guest_action import GuestInfoAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._windows_guest import guest_info

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC = GUEST_INFO_ARGUMENT_SPEC


class ActionModule(GuestInfoAction):
    MODULE = "hyperv.integration.guest_integration_service_info"

    def read_windows(self, guest: str) -> dict[str, t.Any]:
        return guest_info(self, guest)
