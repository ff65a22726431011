# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A guest's addresses, from the intrinsic Key-Value Pair Exchange items it reports to its host
(vm_kvp_info's ip_addresses, the inventory plugin's hyperv_ip_addresses).

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

# The intrinsic items that list the guest's addresses, separated by ';' (docs/dev/hyperv-facts.md section 8).
ADDRESS_ITEMS = ("NetworkAddressIPv4", "NetworkAddressIPv6")


def ip_addresses(intrinsic: dict[str, str] | None) -> list[str] | None:
    """The guest's addresses, IPv4 then IPv6; None when the guest data could not be read."""
    if intrinsic is None:
        return None
    addresses: list[str] = []
    for item in ADDRESS_ITEMS:
        for address in str(intrinsic.get(item) or "").split(";"):
            address = address.strip()
            if address and address not in addresses:
                addresses.append(address)
    return addresses
