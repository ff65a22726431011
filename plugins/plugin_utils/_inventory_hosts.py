# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the inventory plugin makes of a Hyper-V host's vm_inventory answer: one inventory host per VM, its
variables, its address. Pure functions (no ansible inventory object), so that they are tested alone.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_host_guid
from ansible_collections.hyperv.integration.plugins.plugin_utils._kvp_addresses import ip_addresses


def integration_services(vm: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """IC key -> {enabled, primary_status}, for the ICs the catalog knows (by GUID, never by localized name)."""
    services: dict[str, dict[str, t.Any]] = {}
    for ic in vm.get("integration_services") or []:
        known = by_host_guid(str(ic.get("guid") or ""))
        if known is not None:
            services[known.key] = {"enabled": ic.get("enabled"), "primary_status": ic.get("primary_status")}
    return services


def usable_address(address: str) -> bool:
    """An address another machine can reach the guest at: not loopback, link-local, unspecified or multicast."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def preferred_address(addresses: list[str] | None, preference: str) -> str | None:
    """The first usable address of the preferred family, else the first usable one of the other."""
    usable = [a for a in addresses or [] if usable_address(a)]
    first = [a for a in usable if (":" in a) == (preference == "ipv6")]
    return next(iter(first or usable), None)


def selected(vm: dict[str, t.Any], states: list[str] | None, names: list[str] | None) -> bool:
    """The filters: VM state (names as Hyper-V gives them, ignoring case) and name patterns (fnmatch, ignoring case)."""
    if states and str(vm.get("state") or "").lower() not in {s.lower() for s in states}:
        return False
    name = str(vm.get("name") or "")
    return not names or any(fnmatch.fnmatchcase(name.lower(), pattern.lower()) for pattern in names)


def host_variables(host: str, vm: dict[str, t.Any], preference: str) -> dict[str, t.Any]:
    """The hyperv_* variables of one VM's inventory host (and ansible_host when the guest reports an address)."""
    intrinsic = vm.get("intrinsic_items")
    addresses = ip_addresses(intrinsic)
    variables = {
        "hyperv_host": host,
        "hyperv_vm_name": vm.get("name"),
        "hyperv_vm_id": vm.get("id"),
        "hyperv_vm_state": vm.get("state"),
        "hyperv_heartbeat": vm.get("heartbeat"),
        "hyperv_integration_services": integration_services(vm),
        "hyperv_kvp_intrinsic": None if intrinsic is None else dict(intrinsic),
        "hyperv_ip_addresses": addresses,
    }
    address = preferred_address(addresses, preference)
    if address is not None:
        variables["ansible_host"] = address
    return variables


def read_problems(vm: dict[str, t.Any]) -> list[str]:
    """What went wrong reading one VM, for a warning each: the VM itself, its Key-Value Pair Exchange
    component (its integration services were still read), items that could not be parsed."""
    problems = []
    if vm.get("error"):
        problems.append("could not be read: %s" % (vm["error"] or {}).get("message"))
    elif vm.get("kvp_error"):
        problems.append(
            "its Key-Value Pair Exchange items could not be read (no addresses; its integration services "
            "are listed): %s" % (vm["kvp_error"] or {}).get("message")
        )
    if vm.get("unparsed_items"):
        problems.append(
            "%d Key-Value Pair Exchange item(s) its guest reports could not be parsed and are left out"
            % vm["unparsed_items"]
        )
    return problems


def inventory_name(vm: dict[str, t.Any], hostname: str) -> str | None:
    """The VM's inventory name by the hostname option (fqdn: the guest's FullyQualifiedDomainName item, None
    when it reports none)."""
    if hostname == "id":
        return str(vm.get("id") or "") or None
    if hostname == "fqdn":
        # Stripped as the addresses are (_kvp_addresses): an item may end in a newline (hyperv-facts section 8).
        fqdn = str((vm.get("intrinsic_items") or {}).get("FullyQualifiedDomainName") or "").strip()
        return fqdn or None
    return str(vm.get("name") or "") or None
