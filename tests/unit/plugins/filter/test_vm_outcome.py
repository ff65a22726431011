"""hyperv.integration.vm_outcome: each guest's part of a per-host, run-once vm_integration_service result."""

from __future__ import annotations

import typing as t

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hyperv.integration.plugins.filter.vm_outcome import FilterModule, vm_outcome


def _vm(host_name: str, requested: str, **services: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"name": host_name, "requested_name": requested, "error": None, "integration_services": services}


def _registered(*results: dict[str, t.Any]) -> dict[str, t.Any]:
    """A looped task's registered value, as ansible makes it (ansible_loop_var names the loop variable)."""
    return {"results": [dict(r, ansible_loop_var="integration_services_host") for r in results]}


GSI_ON = {"enabled": True, "changed": True}


def test_the_vm_is_found_by_the_name_the_guest_gave_not_the_host_spelling() -> None:
    registered = _registered(
        {"integration_services_host": "hv01", "changed": True, "vms": [_vm("web01", "WEB01", gsi=GSI_ON)]},
        {"integration_services_host": "hv02", "changed": True, "vms": [_vm("WEB01", "web01")]},
    )
    mine = vm_outcome(registered, "hv01", "WEB01")
    assert mine["found"] is True and mine["failed"] is False and mine["concerns_vm"] is False
    assert mine["vm"]["name"] == "web01" and mine["integration_services"] == {"gsi": GSI_ON}
    # Another spelling is another request: no match by case folding in the filter.
    assert vm_outcome(registered, "hv01", "web01")["vm"] is None
    assert vm_outcome(registered, "hv02", "web01")["vm"]["name"] == "WEB01"


def test_a_write_failure_concerns_only_the_vm_whose_entry_has_an_error() -> None:
    failed = dict(GSI_ON, error="Zugriff verweigert")
    registered = _registered(
        {
            "integration_services_host": "hv01",
            "failed": True,
            "msg": "1 change(s) failed",
            "vms": [_vm("web01", "web01", gsi=failed), _vm("web02", "web02", gsi=GSI_ON)],
        }
    )
    assert vm_outcome(registered, "hv01", "web01")["concerns_vm"] is True
    assert vm_outcome(registered, "hv01", "web01")["msg"] == "1 change(s) failed"
    assert vm_outcome(registered, "hv01", "web02")["concerns_vm"] is False


def test_a_vm_the_host_could_not_read_is_concerned() -> None:
    unread = dict(_vm("web01", "web01"), error="Hyper-V was unable to find a virtual machine")
    registered = _registered({"integration_services_host": "hv01", "failed": True, "msg": "m", "vms": [unread]})
    assert vm_outcome(registered, "hv01", "web01")["concerns_vm"] is True


def test_a_host_level_failure_concerns_every_guest_of_that_host_only() -> None:
    registered = _registered(
        {"integration_services_host": "hv01", "failed": True, "msg": "Hyper-V host hv01: unreachable"},
        {"integration_services_host": "hv02", "changed": False, "vms": [_vm("db01", "db01")]},
    )
    assert vm_outcome(registered, "hv01", "web01")["concerns_vm"] is True
    assert vm_outcome(registered, "hv02", "db01")["concerns_vm"] is False


def test_a_wait_timeout_concerns_the_vms_that_did_not_answer() -> None:
    pending = {"vm": "web01", "requested_name": "WEB01", "service": "vss", "name": "VSS", "status": "NoContact"}
    registered = _registered(
        {
            "integration_services_host": "hv01",
            "failed": True,
            "msg": "did not report status Ok",
            "vms": [_vm("web01", "WEB01"), _vm("web02", "web02")],
            "wait": {"answered": False, "not_answering": [pending]},
        }
    )
    mine = vm_outcome(registered, "hv01", "WEB01")
    assert mine["concerns_vm"] is True and mine["not_answering"] == [pending]
    assert vm_outcome(registered, "hv01", "web02")["concerns_vm"] is False


def test_no_result_for_the_host_concerns_nobody() -> None:
    mine = vm_outcome(_registered(), "hv01", "web01")
    assert (mine["found"], mine["concerns_vm"], mine["vm"]) == (False, False, None)


def test_the_loop_variable_is_read_from_the_result() -> None:
    registered = {"results": [{"item": "hv01", "ansible_loop_var": "item", "vms": [_vm("a", "a")]}]}
    assert vm_outcome(registered, "hv01", "a")["vm"]["name"] == "a"


def test_an_input_that_is_no_registered_result_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="registered task result"):
        vm_outcome(["not", "a", "result"], "hv01", "web01")


def test_the_filter_is_registered_under_its_name() -> None:
    assert FilterModule().filters() == {"vm_outcome": vm_outcome}
