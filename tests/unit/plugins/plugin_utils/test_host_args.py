from __future__ import annotations

import pytest

from ansible_collections.hyperv.integration.plugins.plugin_utils._host_args import (
    ArgumentError,
    desired_services,
    vm_names,
    vm_requests,
)


def test_a_string_is_one_name_even_with_commas() -> None:
    assert vm_names("web,01") == ["web,01"]


def test_list_keeps_order_and_drops_exact_duplicates_only() -> None:
    # 'Straße' and 'STRASSE' may be two VMs for the host's ordinal comparison: the host decides.
    assert vm_names(["b", "A", "a", "b", "Straße", "STRASSE", "ウェブ 01"]) == [
        "b",
        "A",
        "a",
        "Straße",
        "STRASSE",
        "ウェブ 01",
    ]


def test_numbers_are_names_and_empty_lists_only_when_allowed() -> None:
    assert vm_names(2019) == ["2019"]
    assert vm_names([7, "x"]) == ["7", "x"]
    assert vm_names([], allow_empty=True) == []
    with pytest.raises(ArgumentError, match="at least one VM"):
        vm_names([])


@pytest.mark.parametrize("bad", [[], [""], ["ok", "  "], [True], {"a": 1}, None, 1.5])
def test_bad_vm_names_are_refused(bad: object) -> None:
    with pytest.raises(ArgumentError):
        vm_names(bad)


def test_services_accept_words_booleans_and_any_spelling() -> None:
    wanted = desired_services(
        {"Takt": "enabled", "vss": False, "Guest Service Interface": "Disabled", "shutdown": "yes"}
    )
    assert wanted == {"heartbeat": True, "vss": False, "guest_service_interface": False, "shutdown": True}


def test_two_spellings_of_one_service_must_agree() -> None:
    assert desired_services({"heartbeat": True, "Takt": "enabled"}) == {"heartbeat": True}
    with pytest.raises(ArgumentError, match="'heartbeat' and 'Takt'"):
        desired_services({"heartbeat": True, "Takt": "disabled"})


def test_unknown_service_names_the_value_and_the_valid_keys() -> None:
    with pytest.raises(ArgumentError) as info:
        desired_services({"Backup (volume snapshot)": "enabled"})
    assert "Backup (volume snapshot)" in str(info.value)
    assert "guest_service_interface" in str(info.value)


@pytest.mark.parametrize("bad", [{}, None, ["vss"], {"vss": "on-ish"}, {"vss": 2}])
def test_bad_services_are_refused(bad: object) -> None:
    with pytest.raises(ArgumentError):
        desired_services(bad)


def test_vm_requests_keep_each_vms_own_wishes_in_order() -> None:
    requests = vm_requests(
        [
            {"name": "web01", "services": {"Gastdienstschnittstelle": "enabled"}},
            {"name": 2019, "services": {"vss": False}},
            {"name": "idle", "services": {}},
        ]
    )
    assert requests == [("web01", {"guest_service_interface": True}), ("2019", {"vss": False}), ("idle", {})]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([{"name": "web01", "services": {}}, {"name": "web01", "services": {}}], "named twice"),
        ([{"name": ["a", "b"], "services": {}}], "names one VM"),
        ([{"name": "web01", "services": {"tacho": "enabled"}}], "VM 'web01': services: "),
        (["web01"], "must be a mapping"),
    ],
)
def test_vm_requests_refuse_what_is_unclear(value: list, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        vm_requests(value)


def test_vm_requests_leave_spellings_to_the_host() -> None:
    # Whether two spellings are one VM is the host's to say (it refuses them: named_twice); Python's
    # notion of case (casefold makes 'ß' 'ss') is not Hyper-V's, so nothing is folded here.
    names = [name for name, _wishes in vm_requests([{"name": "straße"}, {"name": "STRAßE"}, {"name": "STRASSE"}])]
    assert names == ["straße", "STRAßE", "STRASSE"]
