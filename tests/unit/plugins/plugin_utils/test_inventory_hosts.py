"""What the inventory plugin makes of one VM: its address (never loopback or link-local), filters, names."""

from __future__ import annotations

import pytest

from ansible_collections.hyperv.integration.plugins.plugin_utils import _inventory_hosts as hosts


@pytest.mark.parametrize(
    ("addresses", "preference", "chosen"),
    [
        (["127.0.0.1", "169.254.3.4", "fe80::1", "192.0.2.7", "2001:db8::7"], "ipv4", "192.0.2.7"),
        (["127.0.0.1", "169.254.3.4", "fe80::1%eth0", "192.0.2.7", "2001:db8::7"], "ipv6", "2001:db8::7"),
        (["fe80::1", "2001:db8::7"], "ipv4", "2001:db8::7"),  # none of the preferred family: the other one
        (["127.0.0.1", "::1", "0.0.0.0", "224.0.0.1", "not an address"], "ipv4", None),
        ([], "ipv4", None),
        (None, "ipv4", None),
    ],
)
def test_the_address_that_becomes_ansible_host(
    addresses: list[str] | None, preference: str, chosen: str | None
) -> None:
    assert hosts.preferred_address(addresses, preference) == chosen


def test_filters_by_state_and_name_pattern_ignoring_case() -> None:
    vm = {"name": "Web01", "state": "Running"}
    assert hosts.selected(vm, None, None)
    assert hosts.selected(vm, ["running"], ["web*"])
    assert not hosts.selected(vm, ["Off"], None)
    assert not hosts.selected(vm, None, ["db*"])


def test_names_and_variables_of_a_vm() -> None:
    vm = {
        "name": "web01",
        "id": "0b8e5a3e-6c0f-4d8a-9f58-3c2f3e0c1a11",
        "state": "Running",
        "heartbeat": "OkApplicationsHealthy",
        "integration_services": [
            {"guid": "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47", "enabled": True, "primary_status": "Ok"},
            {"guid": "00000000-0000-0000-0000-000000000000", "enabled": True, "primary_status": "Ok"},  # unknown IC
        ],
        "intrinsic_items": {"FullyQualifiedDomainName": "web01.example.test", "NetworkAddressIPv4": "192.0.2.7"},
    }
    assert hosts.inventory_name(vm, "name") == "web01"
    assert hosts.inventory_name(vm, "id") == vm["id"]
    assert hosts.inventory_name(vm, "fqdn") == "web01.example.test"
    assert hosts.inventory_name(dict(vm, intrinsic_items=None), "fqdn") is None
    variables = hosts.host_variables("hv01", vm, "ipv4")
    assert variables["hyperv_integration_services"] == {"heartbeat": {"enabled": True, "primary_status": "Ok"}}
    assert variables["ansible_host"] == "192.0.2.7" and variables["hyperv_ip_addresses"] == ["192.0.2.7"]
    quiet = hosts.host_variables("hv01", dict(vm, intrinsic_items=None), "ipv4")
    assert quiet["hyperv_ip_addresses"] is None and "ansible_host" not in quiet


def test_a_reported_fqdn_is_stripped_and_a_blank_one_names_nothing() -> None:
    vm = {"name": "web01", "intrinsic_items": {"FullyQualifiedDomainName": "web01.example.test\n"}}
    assert hosts.inventory_name(vm, "fqdn") == "web01.example.test"
    assert (
        hosts.inventory_name({"name": "web01", "intrinsic_items": {"FullyQualifiedDomainName": " \n"}}, "fqdn") is None
    )


def test_read_problems_name_what_failed_and_what_was_still_read() -> None:
    assert hosts.read_problems({"error": None, "kvp_error": None, "unparsed_items": 0}) == []
    kvp = hosts.read_problems({"error": None, "kvp_error": {"message": "Generic failure"}, "unparsed_items": 2})
    assert kvp == [
        "its Key-Value Pair Exchange items could not be read (no addresses; its integration services are listed): "
        "Generic failure",
        "2 Key-Value Pair Exchange item(s) its guest reports could not be parsed and are left out",
    ]
    whole = hosts.read_problems({"error": {"message": "gone"}, "kvp_error": None, "unparsed_items": 0})
    assert whole == ["could not be read: gone"]
