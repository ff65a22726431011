"""vm_kvp_info against the in-process lab (tests/support/lab_actions.py): what a user sees for running,
stopped and unreadable VMs, and for names the host does not know."""

from __future__ import annotations

import typing as t

from hvlab import library_reads
from support.lab_actions import run_action
from support.labspec import lab_spec, vm_spec

from ansible_collections.hyperv.integration.plugins.action import vm_kvp_info
from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_key

NOTE = 'it\'s "quoted" $(Remove-Item C:\\ -Recurse) `n; & <b>'
ACTION = vm_kvp_info.ActionModule


def _run(args: dict[str, t.Any], spec: dict[str, t.Any]) -> tuple[dict[str, t.Any], t.Any]:
    result, connection = run_action(ACTION, args, "hv01", lab_spec=spec)
    for library, request in zip(connection.libraries, connection.requests, strict=True):
        assert library_reads.strict_mode_violation(library, request) is None, request
    return result, connection


def test_running_vms_give_host_guest_and_intrinsic_items_and_addresses() -> None:
    spec = lab_spec(
        vm_spec("web01", "windows", kvp_host_items={"role": "web", "note": NOTE}),
        vm_spec("db01", "linux"),
    )
    result, connection = _run({"name": ["web01", "DB01"]}, spec)
    assert "failed" not in result and result["changed"] is False, result
    assert [r["operation"] for r in connection.requests] == ["vm_kvp_info"]
    assert connection.requests[0]["params"] == {
        "vm_names": ["web01", "DB01"],
        "kvp_guid": by_key("key_value_pair_exchange").host_guid,
    }
    web, db = result["vms"]
    assert web["host_items"] == {"role": "web", "note": NOTE}
    assert web["guest_items"] == {} and web["intrinsic_items"]["OSName"] == "Windows Server 2022 Datacenter"
    assert web["ip_addresses"] == ["192.0.2.10", "2001:db8::10"]
    assert web["kvp_enabled"] is True and web["guest_items_unavailable"] is None and web["error"] is None
    assert web["unparsed_items"] == 0
    assert db["name"] == "db01" and db["requested_name"] == "DB01"
    assert db["ip_addresses"] == ["192.0.2.20", "2001:db8::20"]
    assert "warnings" not in result


def test_addresses_are_split_on_semicolons() -> None:
    items = {"NetworkAddressIPv4": "192.0.2.1;192.0.2.2; ", "NetworkAddressIPv6": "fe80::1;2001:db8::1"}
    assert vm_kvp_info.ip_addresses(items) == ["192.0.2.1", "192.0.2.2", "fe80::1", "2001:db8::1"]
    assert vm_kvp_info.ip_addresses({}) == []
    assert vm_kvp_info.ip_addresses(None) is None


def test_items_the_host_could_not_parse_are_counted_and_named_in_a_warning() -> None:
    # The lab holds items as data, so it never answers unparsed items: the host's answer as the library
    # gives it when one guest item is not well-formed (protocol doc section 9).
    read = vm_kvp_info.describe_vm(
        {"name": "web01", "host_items": {}, "guest_items": {"a": "1"}, "intrinsic_items": {}, "unparsed_items": 1}
    )
    assert read["unparsed_items"] == 1 and read["guest_items"] == {"a": "1"}
    warnings = vm_kvp_info.unparsed_warnings("hv01", [read, {**read, "name": "db01", "unparsed_items": 0}])
    assert warnings == [
        "Hyper-V host hv01: VM 'web01': 1 key-value item(s) were not well-formed CIM-XML and are left out; the "
        "other items were read."
    ]


def test_a_vm_that_is_off_has_host_items_and_null_guest_data_with_the_reason() -> None:
    spec = lab_spec(vm_spec("web01", "windows", "Off", kvp_host_items={"role": "web"}))
    result, _connection = _run({"name": "web01"}, spec)
    (vm,) = result["vms"]
    assert vm["state"] == "Off" and vm["host_items"] == {"role": "web"}
    assert vm["guest_items"] is None and vm["intrinsic_items"] is None and vm["ip_addresses"] is None
    assert vm["guest_items_unavailable"] == "vm_not_running"


def test_reasons_for_missing_guest_data() -> None:
    spec = lab_spec(
        vm_spec("a", "none"),
        vm_spec("b", "windows", integration_services={"key_value_pair_exchange": False}),
        vm_spec("c", "windows", integration_services={"key_value_pair_exchange": "absent"}),
    )
    result, _connection = _run({}, spec)
    reasons = {
        vm["name"]: (vm["kvp_enabled"], vm["guest_items_unavailable"], vm["guest_items"]) for vm in result["vms"]
    }
    assert reasons == {
        "a": (True, "guest_not_answering", None),
        "b": (False, "kvp_disabled", None),
        "c": (None, "kvp_missing", None),
    }
    assert all(vm["requested_name"] is None for vm in result["vms"])


def test_a_vm_that_cannot_be_read_is_a_warning_and_the_others_are_read() -> None:
    spec = lab_spec(
        vm_spec("web01", "windows"), vm_spec("gone", "windows"), faults=[{"type": "vm_read_error", "vm": "gone"}]
    )
    result, _connection = _run({"name": ["web01", "gone"]}, spec)
    assert "failed" not in result, result
    gone = result["vms"][1]
    assert gone["error"].startswith("Hyper-V was unable to find a virtual machine with ID")
    assert gone["host_items"] is None and gone["guest_items"] is None and gone["state"] is None
    assert result["vms"][0]["error"] is None
    assert result["warnings"] == ["Hyper-V host hv01: VM 'gone' could not be read: %s" % gone["error"]]


def test_a_missing_name_fails() -> None:
    spec = lab_spec(vm_spec("web01", "windows"))
    result, _connection = _run({"name": ["web01", "nope"]}, spec)
    assert result["failed"] is True and result["missing_vms"] == ["nope"]
    assert result["msg"] == "no VM named 'nope' on Hyper-V host hv01"


def test_an_ambiguous_name_fails() -> None:
    spec = lab_spec(vm_spec("twin", "windows"), vm_spec("twin", "linux"))
    result, _connection = _run({"name": "twin"}, spec)
    assert result["failed"] is True
    assert result["msg"].startswith("'twin' names 2 VMs on Hyper-V host hv01 (ids ")


def test_access_denied_is_explained() -> None:
    spec = lab_spec(vm_spec("web01", "windows"), faults=[{"type": "access_denied"}])
    result, _connection = _run({}, spec)
    assert result["failed"] is True
    assert "You do not have the required permission" in result["msg"]
    assert "'Hyper-V Administrators' group" in result["msg"]
