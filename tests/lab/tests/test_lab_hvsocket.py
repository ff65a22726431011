"""hvsocket_service_info / _set on the host's GuestCommunicationServices key (protocol doc section 8)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from labclient import bootstrap_args, in_threads, request, run, stdin_for

SESSION = "999E53D4-3D5C-4C3E-8779-BED06EC056E1"
SESSION_2 = "A5201C21-2770-4C11-A68E-F182EDB29220"
BUILTINS = {SESSION: "VM Session Service", SESSION_2: "VM Session Service-2"}
PORT_2761 = "00000AC9-FACB-11E6-BD58-64006A7986D3"  # vsock port 2761 (docs/dev/hyperv-facts.md section 4)
PORT_5000 = "00001388-FACB-11E6-BD58-64006A7986D3"
OTHER = "3CE544E1-2645-4383-B332-FEDF8A18736B"
REGISTRY = (
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\GuestCommunicationServices"
)
HOSTILE = [
    'Prüf\'Agent "$(Remove-Item C:\\)" `whoami`; {ウェブ}',
    "$env:COMPUTERNAME @(1) ${x} -and 1; exit 1",
    "tab\there, newline\nthere, 'single' \"double\" \u2018curly\u2019 \u201equotes\u201c",
    "",
    " leading and trailing spaces ",
    "客體服務 🚀 Ünïcödé",
]
LAB = {"host": {"name": "hv01"}, "vms": [{"name": "web01", "guest": "windows"}]}


def lab_with(make_lab: Any, services: dict[str, Any] | None = None, faults: list[dict[str, Any]] | None = None) -> Any:
    config: dict[str, Any] = dict(LAB)
    if services is not None:
        config["hvsocket_services"] = services
    if faults is not None:
        config["faults"] = faults
    return make_lab(config)


def info(lab: Any) -> list[dict[str, Any]]:
    response = lab.call("hvsocket_service_info", {})
    assert response["ok"], response
    return response["result"]["services"]


def hv_set(lab: Any, *items: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    services = [{"name": None, "state": "present", **item} for item in items]
    return lab.call("hvsocket_service_set", {"services": services}, check_mode)


def items(lab: Any, *wishes: dict[str, Any], check_mode: bool = False) -> list[dict[str, Any]]:
    response = hv_set(lab, *wishes, check_mode=check_mode)
    assert response["ok"], response
    return response["result"]["services"]


def registered(lab: Any) -> dict[str, Any]:
    return lab.state()["hvsocket_services"]


def registry(lab: Any) -> list[dict[str, Any]]:
    return lab.state()["hvsocket_registry"]


def writes(lab: Any) -> int:
    return lab.counters()["writes"]


def test_info_lists_the_builtins(make_lab: Any) -> None:
    lab = lab_with(make_lab)
    assert info(lab) == [
        {"service_id": SESSION, "key": SESSION, "name": "VM Session Service"},
        {"service_id": SESSION_2, "key": SESSION_2, "name": "VM Session Service-2"},
    ]
    assert registered(lab) == BUILTINS
    counters = lab.counters()
    assert (counters["calls"], counters["writes"]) == (1, 0)


def test_info_registry_order_spelling_and_non_guid_subkeys(make_lab: Any) -> None:
    lab = lab_with(
        make_lab,
        {
            "{00000ac9-facb-11e6-bd58-64006a7986d3}": "braced, lower case",
            "NotAGuid": "left out",
            OTHER.lower(): None,  # a subkey without an ElementName value
        },
    )
    # Registry order: names sorted case-insensitively ('{' after digits and letters), not creation order.
    assert info(lab) == [
        {"service_id": OTHER, "key": OTHER.lower(), "name": None},
        {"service_id": SESSION, "key": SESSION, "name": "VM Session Service"},
        {"service_id": SESSION_2, "key": SESSION_2, "name": "VM Session Service-2"},
        {"service_id": PORT_2761, "key": "{00000ac9-facb-11e6-bd58-64006a7986d3}", "name": "braced, lower case"},
    ]
    assert registered(lab) == {**BUILTINS, OTHER: None, PORT_2761: "braced, lower case"}
    assert [(e["key"], e["service_id"]) for e in registry(lab)] == [
        (OTHER.lower(), OTHER),
        (SESSION, SESSION),
        (SESSION_2, SESSION_2),
        ("NotAGuid", None),
        ("{00000ac9-facb-11e6-bd58-64006a7986d3}", PORT_2761),
    ]


def test_present_creates_renames_and_is_idempotent(make_lab: Any) -> None:
    lab = lab_with(make_lab)
    (item,) = items(lab, {"service_id": PORT_2761, "name": "agent"})
    assert item == {
        "service_id": PORT_2761,
        "before": {"present": False, "name": None},
        "after": {"present": True, "name": "agent"},
        "changed": True,
        "error": None,
    }
    assert registered(lab) == {PORT_2761: "agent", **BUILTINS} and writes(lab) == 1
    assert registry(lab)[0] == {"key": PORT_2761, "service_id": PORT_2761, "name": "agent"}  # new key: upper case

    (again,) = items(lab, {"service_id": PORT_2761, "name": "agent"})
    assert again["changed"] is False and again["after"] == again["before"] and writes(lab) == 1

    (renamed,) = items(lab, {"service_id": PORT_2761, "name": "Agent"})  # case matters in ElementName
    assert (renamed["before"]["name"], renamed["after"]["name"], renamed["changed"]) == ("agent", "Agent", True)
    assert writes(lab) == 2

    (keep,) = items(lab, {"service_id": PORT_2761, "name": None})  # null: only ensure the key
    assert keep["changed"] is False and keep["after"] == {"present": True, "name": "Agent"} and writes(lab) == 2


def test_present_without_name_creates_a_bare_key(make_lab: Any) -> None:
    lab = lab_with(make_lab)
    (item,) = items(lab, {"service_id": OTHER})
    assert (item["after"], item["changed"]) == ({"present": True, "name": None}, True)
    assert registered(lab)[OTHER] is None and writes(lab) == 1
    assert {"service_id": OTHER, "key": OTHER, "name": None} in info(lab)


def test_matching_is_case_insensitive_without_braces_and_keeps_the_spelling(make_lab: Any) -> None:
    braced = "{00000ac9-facb-11e6-bd58-64006a7986d3}"
    lab = lab_with(make_lab, {braced: "old"})
    for spelling in (PORT_2761, PORT_2761.lower(), "{" + PORT_2761 + "}", "(" + PORT_2761.lower() + ")"):
        (item,) = items(lab, {"service_id": spelling, "name": "old"})
        assert item["service_id"] == PORT_2761 and item["before"] == {"present": True, "name": "old"}
        assert item["changed"] is False
    (item,) = items(lab, {"service_id": PORT_2761.replace("-", ""), "name": "new"})  # [guid]::Parse format N
    assert item["changed"] is True
    assert registry(lab)[-1] == {"key": braced, "service_id": PORT_2761, "name": "new"}  # renamed in place
    assert len(registry(lab)) == 3 and writes(lab) == 1


def test_absent_removes_exactly_that_entry(make_lab: Any) -> None:
    lab = lab_with(make_lab, {PORT_2761: "a", PORT_5000: "b", "NotAGuid": "c", "{" + OTHER.lower() + "}": "d"})
    before = registry(lab)
    (item,) = items(lab, {"service_id": PORT_5000.lower(), "state": "absent"})
    assert item == {
        "service_id": PORT_5000,
        "before": {"present": True, "name": "b"},
        "after": {"present": False, "name": None},
        "changed": True,
        "error": None,
    }
    assert registry(lab) == [entry for entry in before if entry["service_id"] != PORT_5000]
    assert registered(lab) == {**BUILTINS, PORT_2761: "a", OTHER: "d"} and writes(lab) == 1

    (braced,) = items(lab, {"service_id": OTHER, "state": "absent"})  # the braced subkey is that service
    assert braced["changed"] is True and OTHER not in registered(lab)

    (missing,) = items(lab, {"service_id": PORT_5000, "state": "absent"})
    assert missing["changed"] is False and missing["after"] == {"present": False, "name": None}
    assert writes(lab) == 2
    assert {k: registered(lab)[k] for k in BUILTINS} == BUILTINS  # built-ins untouched unless named


def test_absent_removes_a_builtin_when_told(make_lab: Any) -> None:
    """The lab is the registry: refusing built-ins is the controller's job, not the host's."""
    lab = lab_with(make_lab)
    (item,) = items(lab, {"service_id": SESSION, "state": "absent"})
    assert item["before"] == {"present": True, "name": "VM Session Service"} and item["changed"] is True
    assert registered(lab) == {SESSION_2: "VM Session Service-2"} and writes(lab) == 1


def test_items_run_in_order_and_each_write_counts_once(make_lab: Any) -> None:
    lab = lab_with(make_lab, {PORT_5000: "gone soon"})
    result = items(
        lab,
        {"service_id": PORT_2761, "name": "one"},
        {"service_id": PORT_2761, "name": "two"},  # sees the first item's write
        {"service_id": PORT_5000, "state": "absent"},
        {"service_id": SESSION, "name": "VM Session Service"},  # already so: no write
    )
    assert [(i["before"], i["after"], i["changed"]) for i in result] == [
        ({"present": False, "name": None}, {"present": True, "name": "one"}, True),
        ({"present": True, "name": "one"}, {"present": True, "name": "two"}, True),
        ({"present": True, "name": "gone soon"}, {"present": False, "name": None}, True),
        ({"present": True, "name": "VM Session Service"}, {"present": True, "name": "VM Session Service"}, False),
    ]
    assert writes(lab) == 3 and registered(lab) == {**BUILTINS, PORT_2761: "two"}


def test_check_mode_writes_nothing(make_lab: Any) -> None:
    lab = lab_with(make_lab, {PORT_5000: "keep me"})
    before = lab.state()
    result = items(
        lab,
        {"service_id": PORT_2761, "name": "new"},
        {"service_id": PORT_2761, "name": "renamed"},  # predicted on top of the item before
        {"service_id": PORT_5000, "state": "absent"},
        {"service_id": SESSION, "name": "other name"},
        {"service_id": SESSION_2, "state": "absent"},
        check_mode=True,
    )
    assert [(i["after"], i["changed"], i["error"]) for i in result] == [
        ({"present": True, "name": "new"}, True, None),
        ({"present": True, "name": "renamed"}, True, None),
        ({"present": False, "name": None}, True, None),
        ({"present": True, "name": "other name"}, True, None),
        ({"present": False, "name": None}, True, None),
    ]
    after = lab.state()
    assert after["hvsocket_registry"] == before["hvsocket_registry"]
    assert after["counters"]["writes"] == 0 and after["counters"]["calls"] == 1
    assert registered(lab) == {**BUILTINS, PORT_5000: "keep me"}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_element_name_is_stored_exactly(make_lab: Any, name: str) -> None:
    lab = lab_with(make_lab)
    (item,) = items(lab, {"service_id": PORT_5000, "name": name})
    assert item["after"] == {"present": True, "name": name} and item["changed"] is True
    assert registered(lab)[PORT_5000] == name
    assert {"service_id": PORT_5000, "key": PORT_5000, "name": name} in info(lab)
    (again,) = items(lab, {"service_id": PORT_5000, "name": name})
    assert again["changed"] is False and writes(lab) == 1


def test_hostile_element_name_from_the_labfile(make_lab: Any) -> None:
    lab = lab_with(make_lab, {PORT_2761: HOSTILE[0], PORT_5000: HOSTILE[2]})
    assert registered(lab)[PORT_2761] == HOSTILE[0] and registered(lab)[PORT_5000] == HOSTILE[2]
    (item,) = items(lab, {"service_id": PORT_2761, "name": HOSTILE[0]})
    assert item["changed"] is False


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-guid",
        "",
        "   ",
        "999E53D4-3D5C-4C3E-8779-BED06EC056E",  # a digit short
        "999E53D4-3D5C-4C3E-8779-BED06EC056E1A",  # a digit too many
        "999E53D4-3D5C-4C3E-8779-BED06EC056EG",  # not hex
        "{999E53D4-3D5C-4C3E-8779-BED06EC056E1)",  # mismatched brackets
        "999E53D43D5C-4C3E-8779-BED06EC056E1",  # a dash missing
        "vsock:2761",
    ],
)
def test_invalid_guid_fails_the_whole_call_before_any_write(make_lab: Any, bad: str) -> None:
    lab = lab_with(make_lab)
    response = hv_set(
        lab,
        {"service_id": PORT_2761, "name": "would be first"},
        {"service_id": SESSION, "state": "absent"},
        {"service_id": bad, "name": "x"},
    )
    assert response["ok"] is False and response["result"] is None
    error = response["error"]
    assert (error["type"], error["category"], error["service"]) == (
        "System.Management.Automation.MethodInvocationException",
        "NotSpecified",
        None,
    )
    assert "Guid should contain 32 digits with 4 dashes" in error["message"]
    assert registered(lab) == BUILTINS and writes(lab) == 0


def test_guid_formats_parse_accepts(make_lab: Any) -> None:
    lab = lab_with(make_lab)
    spellings = [f"  {PORT_2761.lower()}  ", PORT_2761.replace("-", "").lower(), f"{{{PORT_2761}}}", f"({PORT_2761})"]
    result = items(lab, *({"service_id": s, "name": "agent"} for s in spellings))
    assert [i["service_id"] for i in result] == [PORT_2761] * 4
    assert [i["changed"] for i in result] == [True, False, False, False]
    assert [e["key"] for e in registry(lab)].count(PORT_2761) == 1 and writes(lab) == 1


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("hvsocket_service_info", {"services": []}, "unknown ['services']"),
        ("hvsocket_service_set", {}, "missing ['services']"),
        ("hvsocket_service_set", {"services": {}}, "params.services must be a list"),
        ("hvsocket_service_set", {"services": [{"service_id": PORT_2761, "state": "present"}]}, "params.services"),
        ("hvsocket_service_set", {"services": [{"service_id": PORT_2761, "name": None, "state": "Present"}]}, "list"),
        ("hvsocket_service_set", {"services": [{"service_id": PORT_2761, "name": 5, "state": "present"}]}, "list"),
        ("hvsocket_service_set", {"services": [{"service_id": 2761, "name": None, "state": "absent"}]}, "list"),
        (
            "hvsocket_service_set",
            {"services": [{"service_id": PORT_2761, "name": None, "state": "absent", "force": True}]},
            "params.services",
        ),
    ],
)
def test_malformed_params_are_not_recognised(make_lab: Any, operation: str, params: Any, expected: str) -> None:
    lab = lab_with(make_lab)
    out = run(lab.client(), "PowerShell", bootstrap_args(), stdin_for(request(operation, params)))
    assert out.rc == 1 and expected in out.stderr_text, out.stderr_text
    assert registered(lab) == BUILTINS and lab.counters()["rejected"] == 1


def test_registry_error_fails_that_item_only(make_lab: Any) -> None:
    lab = lab_with(
        make_lab,
        {PORT_5000: "old"},
        [{"type": "registry_error", "service_id": PORT_5000.lower(), "times": 1}],
    )
    result = items(
        lab,
        {"service_id": PORT_2761, "name": "first"},
        {"service_id": PORT_5000, "name": "new"},
        {"service_id": SESSION_2, "state": "absent"},
    )
    first, failed, last = result
    assert first["changed"] is True and first["error"] is None
    assert last["changed"] is True and last["error"] is None  # the next item still ran
    assert failed["before"] == failed["after"] == {"present": True, "name": "old"} and failed["changed"] is False
    assert failed["error"] == {
        "type": "System.UnauthorizedAccessException",
        "message": f"Access to the registry key '{REGISTRY}\\{PORT_5000}' is denied.",
        "category": "PermissionDenied",
        "vm": None,
        "service": PORT_5000,
    }
    assert registered(lab) == {SESSION: "VM Session Service", PORT_2761: "first", PORT_5000: "old"}
    assert writes(lab) == 2
    (fault,) = lab.state()["endpoints"]["hv01"]["faults"]
    assert (fault["type"], fault["service_id"], fault["triggered"], fault["times_left"]) == (
        "registry_error",
        PORT_5000,
        1,
        0,
    )
    (retry,) = items(lab, {"service_id": PORT_5000, "name": "new"})  # times: 1 used up
    assert retry["changed"] is True and retry["error"] is None and registered(lab)[PORT_5000] == "new"


def test_registry_error_fires_only_on_a_real_write(make_lab: Any) -> None:
    lab = lab_with(
        make_lab,
        faults=[{"type": "registry_error", "service_id": "{" + PORT_2761 + "}", "message": "Zugriff verweigert."}],
    )
    (check,) = items(lab, {"service_id": PORT_2761, "name": "x"}, check_mode=True)
    (nothing,) = items(lab, {"service_id": PORT_2761, "state": "absent"})  # nothing to remove
    assert check["error"] is None and nothing["error"] is None
    assert lab.state()["endpoints"]["hv01"]["faults"][0]["triggered"] == 0
    for _attempt in range(2):  # no times: unlimited
        (create,) = items(lab, {"service_id": PORT_2761, "name": "x"})
        assert create["error"]["message"] == "Zugriff verweigert." and create["after"]["present"] is False
    assert lab.state()["endpoints"]["hv01"]["faults"][0]["triggered"] == 2
    assert PORT_2761 not in registered(lab) and writes(lab) == 0


def test_registry_error_on_removing_names_the_key_as_spelled(make_lab: Any) -> None:
    braced = "{" + OTHER.lower() + "}"
    lab = lab_with(make_lab, {braced: "agent"}, [{"type": "registry_error", "service_id": OTHER}])
    (item,) = items(lab, {"service_id": OTHER, "state": "absent"})
    assert item["error"]["message"] == f"Access to the registry key '{REGISTRY}\\{braced}' is denied."
    assert item["after"] == {"present": True, "name": "agent"} and registered(lab)[OTHER] == "agent"


def test_access_denied_covers_the_registry_operations(make_lab: Any) -> None:
    lab = lab_with(make_lab, faults=[{"type": "access_denied", "times": 2}])
    for response in (lab.call("hvsocket_service_info", {}), hv_set(lab, {"service_id": PORT_2761, "name": "x"})):
        assert response["ok"] is False and response["error"]["category"] == "PermissionDenied"
    assert registered(lab) == BUILTINS and writes(lab) == 0
    assert len(info(lab)) == 2  # used up


def test_labfile_entry_replaces_the_builtin_of_the_same_guid(make_lab: Any) -> None:
    braced = "{" + SESSION.lower() + "}"
    lab = lab_with(make_lab, {braced: "Renamed"})
    assert registered(lab) == {SESSION: "Renamed", SESSION_2: "VM Session Service-2"}
    assert [e["key"] for e in registry(lab)] == [SESSION_2, braced]


def test_concurrent_registrations_lose_nothing(make_lab: Any) -> None:
    lab = lab_with(make_lab)
    guids = [f"{n:08X}-FACB-11E6-BD58-64006A7986D3" for n in range(8)]
    barrier = threading.Barrier(len(guids))

    def worker(guid: str) -> None:
        client = lab.protocol()
        barrier.wait()
        req = request("hvsocket_service_set", {"services": [{"service_id": guid, "name": guid, "state": "present"}]})
        out = run(client, "PowerShell", bootstrap_args(), stdin_for(req))
        assert out.rc == 0, (guid, out.stderr_text)
        assert out.response(req["nonce"])["result"]["services"][0]["changed"], guid

    assert in_threads(worker, guids) == []
    assert registered(lab) == {**BUILTINS, **{guid: guid for guid in guids}} and writes(lab) == len(guids)
