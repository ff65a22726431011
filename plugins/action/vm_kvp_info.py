# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for hyperv.integration.vm_kvp_info (documentation: plugins/modules)."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_key
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_action import HostInfoAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._kvp_addresses import ip_addresses

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC: dict[str, t.Any] = {
    "name": {"type": "raw", "aliases": ["vm", "vm_name"]},
}


def _items(value: t.Any) -> dict[str, str] | None:
    # None stays None: the library says null when it could not read them, never an empty mapping.
    return None if value is None else dict(value)


def describe_vm(vm: dict[str, t.Any]) -> dict[str, t.Any]:
    """One VM as the module returns it, from the host's answer."""
    intrinsic = _items(vm.get("intrinsic_items"))
    return {
        "name": vm.get("name"),
        "requested_name": vm.get("requested_name"),
        "id": vm.get("id"),
        "state": vm.get("state"),
        "kvp_enabled": vm.get("kvp_enabled"),
        "host_items": _items(vm.get("host_items")),
        "guest_items": _items(vm.get("guest_items")),
        "intrinsic_items": intrinsic,
        "ip_addresses": ip_addresses(intrinsic),
        "guest_items_unavailable": vm.get("guest_items_unavailable"),
        "unparsed_items": vm.get("unparsed_items"),
        "error": (vm.get("error") or {}).get("message"),
    }


def unparsed_warnings(host: str, vms: list[dict[str, t.Any]]) -> list[str]:
    """One warning per VM some of whose items the host could not parse (they are left out)."""
    return [
        "Hyper-V host %s: VM %r: %d key-value item(s) were not well-formed CIM-XML and are left out; the other "
        "items were read." % (host, vm["name"], vm["unparsed_items"])
        for vm in vms
        if vm.get("unparsed_items")
    ]


class ActionModule(HostInfoAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    OPERATION = "vm_kvp_info"

    def extra_params(self) -> dict[str, t.Any]:
        return {"kvp_guid": by_key("key_value_pair_exchange").host_guid}

    def describe(self, vm: dict[str, t.Any]) -> dict[str, t.Any]:
        return describe_vm(vm)

    def more_warnings(self, vms: list[dict[str, t.Any]]) -> list[str]:
        return unparsed_warnings(self.host, vms)
