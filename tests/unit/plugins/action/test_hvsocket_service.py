from __future__ import annotations

import pytest

from ansible_collections.hyperv.integration.plugins.action.hvsocket_service import resolve_wish
from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.plugin_utils._hvsocket import guid_for_name

SESSION = "999E53D4-3D5C-4C3E-8779-BED06EC056E1"


def test_port_and_id_wishes_need_no_registry() -> None:
    assert resolve_wish({"name": "agent", "vsock_port": 2761}, None) == {
        "service_id": "00000AC9-FACB-11E6-BD58-64006A7986D3",
        "name": "agent",
        "state": "present",
        "force": None,
    }
    assert resolve_wish({"service_id": "{%s}" % SESSION.lower(), "state": "absent"}, None)["service_id"] == SESSION


def test_name_only_reuses_an_entry_with_exactly_that_name_or_derives_one() -> None:
    entries = {"11111111-1111-1111-1111-111111111111": "agent", SESSION: "VM Session Service"}
    assert resolve_wish({"name": "agent"}, entries)["service_id"] == "11111111-1111-1111-1111-111111111111"
    assert resolve_wish({"name": "Agent"}, entries)["service_id"] == guid_for_name("Agent")


def test_absent_by_name_needs_exactly_one_entry() -> None:
    entries = {"11111111-1111-1111-1111-111111111111": "twin", "22222222-2222-2222-2222-222222222222": "twin"}
    with pytest.raises(ArgumentError, match="ElementName of 2 entries"):
        resolve_wish({"name": "twin", "state": "absent"}, entries)


@pytest.mark.parametrize(
    ("wish", "message"),
    [
        ({"service_id": SESSION, "vsock_port": 1, "name": "x"}, "not both"),
        ({"vsock_port": 5}, "needs name"),
        ({"state": "absent"}, "needs name, service_id or vsock_port"),
    ],
)
def test_conflicting_or_missing_options(wish: dict, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        resolve_wish(wish, {})
