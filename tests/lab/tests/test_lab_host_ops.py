"""vm_integration_service_info / _set against the host model (protocol doc section 4)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hvlab.hyperv_host import LAB_NAMESPACE
from support.labspec import lab_spec, vm_spec

GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
HEARTBEAT = "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47"
VSS = "5CED1297-4598-4915-A5FC-AD21BB4D02A4"
HOST_ORDER = [
    GSI,
    HEARTBEAT,
    "2A34B1C2-FD73-4043-8A5B-DD2159BC743F",
    "9F8233AC-BE49-4C79-8EE3-E7E1985B2077",
    "2497F4DE-E9FA-4204-80E4-4B75C46419C0",
    VSS,
]
HOSTILE = ["Prüf'VM", "ウェブ 01", "a$(b)`c;{d}"]


def by_guid(vm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {ic["id"].rsplit("\\", 1)[1]: ic for ic in vm["integration_services"]}


def test_info_every_vm_in_host_order(basic_lab: Any) -> None:
    result = basic_lab.info()
    assert [vm["name"] for vm in result["vms"]] == ["web01", "db01", "bare"]
    assert result["missing"] == [] and result["ambiguous"] == {}
    web = result["vms"][0]
    assert web["id"] == str(uuid.uuid5(LAB_NAMESPACE, "hv01/web01"))
    assert web["id"] == web["id"].lower()
    assert [ic["id"].rsplit("\\", 1)[1] for ic in web["integration_services"]] == HOST_ORDER
    for ic in web["integration_services"]:
        assert ic["id"].startswith(f"Microsoft:{web['id'].upper()}\\")
        assert set(ic) == {"id", "guid", "name", "enabled", "primary_status", "secondary_status"}
        assert ic["guid"] == ic["id"].rsplit("\\", 1)[1]  # what follows the last backslash, upper case
    assert set(web) == {
        "name",
        "requested_name",
        "id",
        "state",
        "heartbeat",
        "integration_services_version",
        "integration_services_state",
        "integration_services",
        "error",
    }
    assert web["error"] is None


def test_status_rules(basic_lab: Any) -> None:
    web, db, bare = basic_lab.info()["vms"]
    # Running Windows guest: enabled ICs Ok, heartbeat Ok/Ok; disabled GSI "False OK" (seed 000).
    assert web["state"] == "Running" and web["heartbeat"] == "OkApplicationsHealthy"
    ics = by_guid(web)
    assert (ics[GSI]["enabled"], ics[GSI]["primary_status"], ics[GSI]["secondary_status"]) == (False, "Ok", None)
    assert (ics[HEARTBEAT]["primary_status"], ics[HEARTBEAT]["secondary_status"]) == ("Ok", "Ok")
    assert (ics[VSS]["primary_status"], ics[VSS]["secondary_status"]) == ("Ok", None)
    assert (web["integration_services_version"], web["integration_services_state"]) == ("10.0.20348", "Up to date")
    # Off: no statuses at all, heartbeat null (docs/dev/hyperv-facts.md section 1); Linux guest: no version by default.
    assert db["heartbeat"] is None
    assert all(ic["primary_status"] is None and ic["secondary_status"] is None for ic in db["integration_services"])
    assert (db["integration_services_version"], db["integration_services_state"]) == (None, None)
    # Running without a guest: nobody answers.
    assert bare["heartbeat"] == "NoContact"
    assert by_guid(bare)[HEARTBEAT]["primary_status"] == "NoContact"
    assert by_guid(bare)[GSI]["primary_status"] == "Ok"  # disabled


def test_paused_saved_and_disabled_heartbeat(make_lab: Any) -> None:
    lab = make_lab(
        lab_spec(
            vm_spec("p", "linux", "Paused"),
            vm_spec("s", "windows", "Saved"),
            vm_spec(
                "h",
                "windows",
                integration_services={"heartbeat": False, "guest_service_interface": True},
                integration_services_version="6.3.9600.16384",
                integration_services_state="Update required",
            ),
        )
    )
    p, s, h = lab.info()["vms"]
    assert p["heartbeat"] == "Paused" and by_guid(p)[HEARTBEAT]["primary_status"] == "Ok"
    assert s["heartbeat"] is None and all(ic["primary_status"] is None for ic in s["integration_services"])
    assert h["heartbeat"] == "Disabled"
    assert (by_guid(h)[HEARTBEAT]["primary_status"], by_guid(h)[HEARTBEAT]["secondary_status"]) == ("Ok", None)
    assert by_guid(h)[GSI]["enabled"] is True
    assert (h["integration_services_version"], h["integration_services_state"]) == ("6.3.9600.16384", "Update required")


@pytest.mark.parametrize(
    ("language", "heartbeat", "gsi"),
    [
        ("en-US", "Heartbeat", "Guest Service Interface"),
        ("de-DE", "Takt", "Gastdienstschnittstelle"),
        ("fr-FR", "Pulsation", "Interface de services d'invité"),
        ("zh-TW", "活動訊號", "客體服務介面"),
    ],
)
def test_localized_names(make_lab: Any, language: str, heartbeat: str, gsi: str) -> None:
    lab = make_lab({"host": {"name": "hv", "language": language}, "vms": [{"name": "v"}]})
    ics = by_guid(lab.info()["vms"][0])
    assert ics[HEARTBEAT]["name"] == heartbeat and ics[GSI]["name"] == gsi
    result = lab.set(["v"], [{"guid": GSI, "enabled": True}])["result"]
    assert result["vms"][0]["integration_services"][0]["name"] == gsi


def test_name_matching(make_lab: Any) -> None:
    lab = make_lab({"vms": [{"name": "Web01"}, {"name": "dup"}, {"name": "DUP"}, {"name": "straße"}, {"name": "web*"}]})
    result = lab.info(["WEB01", "nope", "Dup", "STRASSE", "STRAßE", "web?", "web*"])
    assert [vm["name"] for vm in result["vms"]] == ["Web01", "straße", "web*"]
    assert result["missing"] == ["nope", "STRASSE", "web?"]  # ordinal: no 'ß' == 'SS'; no wildcards
    ids = result["ambiguous"]["Dup"]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_duplicate_exact_names_get_distinct_ids(make_lab: Any) -> None:
    lab = make_lab({"vms": [{"name": "twin"}, {"name": "twin"}]})
    result = lab.info(["twin"])
    assert result["vms"] == [] and len(set(result["ambiguous"]["twin"])) == 2
    state = lab.state()["vms"]
    assert len(state) == 2 and "twin" in state  # the second one is keyed "twin#<id>"


def test_set_changes_and_is_idempotent(basic_lab: Any) -> None:
    response = basic_lab.set(["web01"], [{"guid": GSI, "enabled": True}, {"guid": VSS, "enabled": True}])
    assert response["ok"] and response["error"] is None
    result = response["result"]
    assert result["missing"] == [] and result["ambiguous"] == {} and result["missing_services"] == []
    vm = result["vms"][0]
    assert (vm["name"], vm["state"]) == ("web01", "Running")
    assert vm["integration_services"] == [
        {
            "guid": GSI,
            "name": "Guest Service Interface",
            "before": False,
            "after": True,
            "changed": True,
            "error": None,
            "primary_status": None,  # changed: no status yet (protocol doc, vm_integration_service_set)
        },
        {  # unchanged: the status read with it
            "guid": VSS,
            "name": "VSS",
            "before": True,
            "after": True,
            "changed": False,
            "error": None,
            "primary_status": "Ok",
        },
    ]
    assert basic_lab.state()["vms"]["web01"]["integration_services"]["guest_service_interface"]["enabled"]
    assert basic_lab.counters()["writes"] == 1
    again = basic_lab.set(["web01"], [{"guid": GSI, "enabled": True}])["result"]
    assert again["vms"][0]["integration_services"][0]["changed"] is False
    assert basic_lab.counters()["writes"] == 1


def test_set_check_mode_writes_nothing(basic_lab: Any) -> None:
    result = basic_lab.set(
        ["web01", "db01"],
        [{"guid": GSI.lower(), "enabled": True}, {"guid": HEARTBEAT, "enabled": False}],
        check_mode=True,
    )["result"]
    for vm in result["vms"]:
        gsi, hb = vm["integration_services"]
        assert (gsi["before"], gsi["after"], gsi["changed"]) == (False, True, True)
        assert (hb["before"], hb["after"], hb["changed"]) == (True, False, True)
    assert basic_lab.counters()["writes"] == 0
    assert basic_lab.state()["vms"]["web01"]["integration_services"]["guest_service_interface"]["enabled"] is False


def test_set_missing_or_ambiguous_vm_writes_nothing(make_lab: Any) -> None:
    lab = make_lab({"vms": [{"name": "a"}, {"name": "b"}, {"name": "B"}]})
    result = lab.set(["a", "zz"], [{"guid": GSI, "enabled": True}])["result"]
    assert result == {
        "vms": [],
        "missing": ["zz"],
        "ambiguous": {},
        "missing_services": [],
        "named_twice": [],
        "vm_list_errors": [],
    }
    result = lab.set(["a", "b"], [{"guid": GSI, "enabled": True}])["result"]
    assert result["vms"] == [] and list(result["ambiguous"]) == ["b"]
    assert lab.counters()["writes"] == 0
    assert lab.state()["vms"]["a"]["integration_services"]["guest_service_interface"]["enabled"] is False


def test_set_missing_service_writes_nothing(make_lab: Any) -> None:
    lab = make_lab(
        {"vms": [{"name": "new"}, {"name": "old", "integration_services": {"guest_service_interface": "absent"}}]}
    )
    assert GSI not in by_guid(lab.info(["old"])["vms"][0])
    result = lab.set(["new", "old"], [{"guid": VSS, "enabled": False}, {"guid": GSI, "enabled": True}])["result"]
    assert result["vms"] == [] and result["missing_services"] == [{"vm": "old", "guid": GSI}]
    unknown = "00000000-1111-2222-3333-444444444444"
    result = lab.set(["new"], [{"guid": unknown, "enabled": True}])["result"]
    assert result["missing_services"] == [{"vm": "new", "guid": unknown}]
    assert lab.counters()["writes"] == 0


def test_hostile_and_unicode_names_round_trip(make_lab: Any) -> None:
    lab = make_lab({"vms": [{"name": name, "guest": "windows"} for name in HOSTILE]})
    result = lab.info(list(reversed(HOSTILE)))
    assert [vm["name"] for vm in result["vms"]] == list(reversed(HOSTILE))
    result = lab.set(HOSTILE, [{"guid": GSI, "enabled": True}])["result"]
    assert [vm["name"] for vm in result["vms"]] == HOSTILE
    assert all(vm["integration_services"][0]["changed"] for vm in result["vms"])
    state = lab.state()["vms"]
    assert all(state[name]["integration_services"]["guest_service_interface"]["enabled"] for name in HOSTILE)
    assert lab.info(["prüf'vm"])["vms"][0]["name"] == "Prüf'VM"


def test_empty_lists(basic_lab: Any) -> None:
    assert basic_lab.info([]) == {"vms": [], "missing": [], "ambiguous": {}, "vm_list_errors": []}
    result = basic_lab.set(["web01"], [])["result"]
    assert result["vms"][0]["integration_services"] == []
