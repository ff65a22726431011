# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for hyperv.integration.hvsocket_service_info (documentation: plugins/modules)."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.plugin_utils._host_action import HostAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._hvsocket import BUILTIN_SERVICES, port_for_guid

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC: dict[str, t.Any] = {}


class ActionModule(HostAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run_host(self, result: dict[str, t.Any], args: dict[str, t.Any]) -> dict[str, t.Any]:
        answer = self.call_host("hvsocket_service_info", {}, writes=False)
        result["changed"] = False
        result["services"] = [
            {
                "service_id": entry["service_id"],
                "name": entry.get("name"),
                "vsock_port": port_for_guid(entry["service_id"]),
                "builtin": entry["service_id"] in BUILTIN_SERVICES,
            }
            for entry in answer.get("services") or []
        ]
        return result
