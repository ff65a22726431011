# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for hyperv.integration.vm_integration_service_info (documentation: plugins/modules)."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_host_guid
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_action import HostInfoAction

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC: dict[str, t.Any] = {
    "name": {"type": "raw", "aliases": ["vm", "vm_name"]},
}


def describe_vm(vm: dict[str, t.Any]) -> dict[str, t.Any]:
    """One VM as the module returns it: IC keys added, host order kept."""
    services = []
    for item in vm.get("integration_services") or []:
        guid = str(item.get("guid") or "")  # the library takes it from the IC's Id
        ic = by_host_guid(guid)
        services.append(
            {
                "key": ic.key if ic else None,  # None: an IC this collection does not know (newer host)
                "name": item.get("name"),
                "id": item.get("id"),
                "guid": guid,
                "enabled": bool(item.get("enabled")),
                "primary_status": item.get("primary_status"),
                "secondary_status": item.get("secondary_status"),
            }
        )
    return {
        "name": vm.get("name"),
        "requested_name": vm.get("requested_name"),
        "id": vm.get("id"),
        "state": vm.get("state"),
        "heartbeat": vm.get("heartbeat"),
        "integration_services_version": vm.get("integration_services_version"),
        "integration_services_state": vm.get("integration_services_state"),
        "error": (vm.get("error") or {}).get("message"),
        "integration_services": services,
    }


class ActionModule(HostInfoAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    OPERATION = "vm_integration_service_info"

    def describe(self, vm: dict[str, t.Any]) -> dict[str, t.Any]:
        return describe_vm(vm)
