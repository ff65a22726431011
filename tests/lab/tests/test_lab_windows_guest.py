"""Windows guest doubles: one WinRM endpoint per Windows VM, the guest library's operations
(protocol doc section 7) on its vmic* services, and the host's IC status following the guest."""

from __future__ import annotations

from typing import Any

import labclient
import pytest
import requests
from labclient import bootstrap_args, request, run, stdin_for
from support.labspec import lab_spec, vm_spec

SERVICES = [
    "vmicguestinterface",
    "vmicheartbeat",
    "vmickvpexchange",
    "vmicrdv",
    "vmicshutdown",
    "vmictimesync",
    "vmicvmsession",
    "vmicvss",
]
EN_US = {  # reference/seeds/000: `Get-Service -Name vm*` (vmicrdv's name is cut off there)
    "vmicguestinterface": "Hyper-V Guest Service Interface",
    "vmicheartbeat": "Hyper-V Heartbeat Service",
    "vmickvpexchange": "Hyper-V Data Exchange Service",
    "vmicrdv": "Hyper-V Remote Desktop Virtualization Service",
    "vmicshutdown": "Hyper-V Guest Shutdown Service",
    "vmictimesync": "Hyper-V Time Synchronization Service",
    "vmicvmsession": "Hyper-V VM Session Service",
    "vmicvss": "Hyper-V Volume Shadow Copy Requestor",
}
GUEST_LAB = lab_spec(
    vm_spec("web01", "windows"), vm_spec("off01", "windows", "Off"), vm_spec("db01", "linux"), vm_spec("bare")
)


@pytest.fixture
def guest_lab(make_lab: Any) -> Any:
    return make_lab(GUEST_LAB)


def host_ic(lab: Any, vm: str, key: str) -> tuple[str | None, str | None]:
    ic = lab.state()["vms"][vm]["integration_services"][key]
    return ic["primary_status"], ic["secondary_status"]


def test_one_endpoint_per_windows_vm_whatever_its_state(guest_lab: Any) -> None:
    endpoints = guest_lab.state()["endpoints"]
    assert set(endpoints) == {"hv01", "web01", "off01"}
    assert endpoints["hv01"]["kind"] == "hyperv_host"
    assert (endpoints["web01"]["kind"], endpoints["web01"]["vm"], endpoints["web01"]["reachable"]) == (
        "windows_guest",
        "web01",
        True,
    )
    assert endpoints["off01"]["reachable"] is False
    assert len({ep["port"] for ep in endpoints.values()}) == 3


def test_service_info(guest_lab: Any) -> None:
    result = guest_lab.guest("web01").info([*SERVICES, "VMICVSS", "vmicnope"])
    assert result["computer"] == {
        "manufacturer": "Microsoft Corporation",
        "model": "Virtual Machine",
        "hyperv_guest": True,
    }
    services = result["services"]
    assert [s["name"] for s in services] == [*SERVICES, "VMICVSS", "vmicnope"]  # answered as asked for
    assert services[-2]["exists"] is True and services[-2]["display_name"] == EN_US["vmicvss"]  # case-insensitive
    for service in services[: len(SERVICES)]:
        assert service["exists"] is True
        assert service["display_name"] == EN_US[service["name"]]
        assert service["start_mode"] == "Manual"
        assert service["status"] == ("Stopped" if service["name"] == "vmicvmsession" else "Running")
    assert services[-1] == {
        "name": "vmicnope",
        "exists": False,
        "display_name": None,
        "status": None,
        "start_mode": None,
    }
    assert guest_lab.guest("web01").counters()["calls"] == 1
    # A wildcard is never a pattern: the library refuses the name before any lookup.
    response = guest_lab.guest("web01").call("guest_service_info", {"names": ["vm*"]})
    assert response["ok"] is False and response["error"]["type"] == "System.ArgumentException"
    assert response["error"]["message"] == "service name 'vm*' contains wildcard characters"


@pytest.mark.parametrize(
    ("language", "kvp"),
    [
        ("en-US", "Hyper-V Data Exchange Service"),
        ("de-DE", "Hyper-V-Datenaustauschdienst"),  # the protocol doc's example
        ("fr-FR", "Service Échange de données Microsoft Hyper-V"),
        ("zh-TW", "Hyper-V 資料交換服務"),
    ],
)
def test_display_names_follow_the_host_language(make_lab: Any, language: str, kvp: str) -> None:
    lab = make_lab({"host": {"language": language}, "vms": [{"name": "w", "guest": "windows"}]})
    services = lab.guest("w").info(SERVICES)["services"]
    names = {s["name"]: s["display_name"] for s in services}
    assert names["vmickvpexchange"] == kvp
    assert len(set(names.values())) == len(SERVICES)


def test_stop_and_start_a_service_and_the_host_follows(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    assert host_ic(guest_lab, "web01", "vss") == ("Ok", None)
    result = guest.set([{"name": "vmicvss", "state": "stopped"}])
    assert result == {
        "not_a_guest": False,
        "computer": {"manufacturer": "Microsoft Corporation", "model": "Virtual Machine", "hyperv_guest": True},
        "missing": [],
        "services": [
            {
                "name": "vmicvss",
                "before": {"status": "Running", "start_mode": "Manual"},
                "after": {"status": "Stopped", "start_mode": "Manual"},
                "changed": True,
                "error": None,
            }
        ],
        "time_provider": None,  # time_provider_enabled not asked for
    }
    # It ran before: the host has lost it (README, Status rules).
    assert host_ic(guest_lab, "web01", "vss") == ("LostCommunication", None)
    vss = next(ic for ic in guest_lab.info(["web01"])["vms"][0]["integration_services"] if ic["name"] == "VSS")
    assert (vss["primary_status"], vss["secondary_status"]) == ("LostCommunication", None)
    again = guest.set([{"name": "vmicvss", "state": "stopped"}])["services"][0]
    assert again["changed"] is False
    started = guest.set([{"name": "vmicvss", "state": "started"}])["services"][0]
    assert (started["after"]["status"], started["changed"]) == ("Running", True)
    assert host_ic(guest_lab, "web01", "vss") == ("Ok", None)
    # Writes count on the guest endpoint and in the totals, never on the host endpoint.
    state = guest_lab.state()
    assert state["endpoints"]["web01"]["counters"]["writes"] == 2
    assert state["host"]["counters"]["writes"] == 0
    assert state["counters"]["writes"] == 2
    assert state["vms"]["web01"]["guest"]["services"]["vmicvss"] == {"status": "Running", "start_mode": "Manual"}


def test_restart_is_always_a_change(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    for _round in range(2):
        item = guest.set([{"name": "vmictimesync", "state": "restarted"}])["services"][0]
        assert item["before"] == item["after"] == {"status": "Running", "start_mode": "Manual"}
        assert item["changed"] is True
    assert guest.counters()["writes"] == 2
    item = guest.set([{"name": "vmicvmsession", "state": "restarted"}])["services"][0]  # a stopped one starts
    assert (item["before"]["status"], item["after"]["status"], item["changed"]) == ("Stopped", "Running", True)


def test_start_mode_then_state_in_one_item(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    item = guest.set([{"name": "vmicvmsession", "state": "started", "start_mode": "Automatic"}])["services"][0]
    assert item["before"] == {"status": "Stopped", "start_mode": "Manual"}
    assert item["after"] == {"status": "Running", "start_mode": "Automatic"}
    assert guest.counters()["writes"] == 2  # Set-Service and Start-Service
    item = guest.set([{"name": "vmicvmsession", "state": "started", "start_mode": "Automatic"}])["services"][0]
    assert item["changed"] is False and guest.counters()["writes"] == 2


def test_check_mode_writes_nothing(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    result = guest.set(
        [
            {"name": "vmicvss", "state": "stopped", "start_mode": "Disabled"},
            {"name": "vmicvmsession", "state": "started"},
            {"name": "vmicshutdown", "state": "restarted"},
            {"name": "vmicheartbeat", "state": "started"},
        ],
        check_mode=True,
    )
    vss, session, shutdown, heartbeat = result["services"]
    assert vss["after"] == {"status": "Stopped", "start_mode": "Disabled"} and vss["changed"] is True
    assert session["after"]["status"] == "Running" and session["changed"] is True
    assert shutdown["changed"] is True
    assert heartbeat["changed"] is False
    assert guest.counters()["writes"] == 0 and guest_lab.counters()["writes"] == 0
    services = guest_lab.state()["vms"]["web01"]["guest"]["services"]
    assert services["vmicvss"] == {"status": "Running", "start_mode": "Manual"}
    assert services["vmicvmsession"]["status"] == "Stopped"
    assert host_ic(guest_lab, "web01", "vss") == ("Ok", None)


def test_missing_service_writes_nothing(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    result = guest.set(
        [
            {"name": "vmicvss", "state": "stopped"},
            {"name": "vmicnope", "state": "started"},
            {"name": "vmicnope", "start_mode": "Manual"},
        ]
    )
    # Listed once per item that names it, as the library does.
    assert result["missing"] == ["vmicnope", "vmicnope"] and result["services"] == [] and result["not_a_guest"] is False
    assert guest.counters()["writes"] == 0
    assert guest_lab.state()["vms"]["web01"]["guest"]["services"]["vmicvss"]["status"] == "Running"


def test_disabled_service_cannot_start(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    guest.set([{"name": "vmicvss", "state": "stopped", "start_mode": "Disabled"}])
    writes = guest.counters()["writes"]
    result = guest.set(
        [{"name": "vmicvss", "state": "started"}, {"name": "vmickvpexchange", "state": "stopped"}]
    )  # the failed item does not stop the next one
    failed, other = result["services"]
    assert failed["error"]["type"] == "Microsoft.PowerShell.Commands.ServiceCommandException"
    assert failed["error"]["message"] == (
        "Service 'Hyper-V Volume Shadow Copy Requestor (vmicvss)' cannot be started due to the following "
        "error: Cannot start service vmicvss on computer '.'."
    )
    assert failed["after"] == failed["before"] == {"status": "Stopped", "start_mode": "Disabled"}
    assert failed["changed"] is False
    assert (other["after"]["status"], other["error"]) == ("Stopped", None)
    assert guest.counters()["writes"] == writes + 1
    # Predicted in check mode too; a new start mode in the same item makes the start possible.
    dry = guest.set([{"name": "vmicvss", "state": "started"}], check_mode=True)["services"][0]
    assert dry["error"]["type"] == "Microsoft.PowerShell.Commands.ServiceCommandException"
    item = guest.set([{"name": "vmicvss", "state": "started", "start_mode": "Manual"}])["services"][0]
    assert item["error"] is None and item["after"] == {"status": "Running", "start_mode": "Manual"}
    # A Disabled service that is running keeps running; Restart-Service stops it and cannot start it.
    guest.set([{"name": "vmictimesync", "start_mode": "Disabled"}])
    item = guest.set([{"name": "vmictimesync", "state": "restarted"}])["services"][0]
    assert item["after"]["status"] == "Stopped" and item["error"] is not None and item["changed"] is True


def test_heartbeat_follows_vmicheartbeat(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    assert guest_lab.state()["vms"]["web01"]["heartbeat"] == "OkApplicationsHealthy"
    assert host_ic(guest_lab, "web01", "heartbeat") == ("Ok", "Ok")
    guest.set([{"name": "vmicheartbeat", "state": "stopped"}])
    vm = guest_lab.info(["web01"])["vms"][0]
    assert vm["heartbeat"] == "LostCommunication"
    assert host_ic(guest_lab, "web01", "heartbeat") == ("LostCommunication", None)
    guest.set([{"name": "vmicheartbeat", "state": "started"}])
    assert guest_lab.info(["web01"])["vms"][0]["heartbeat"] == "OkApplicationsHealthy"


def test_a_service_that_never_ran_is_no_contact(make_lab: Any) -> None:
    lab = make_lab(
        {
            "vms": [
                {
                    "name": "w",
                    "guest": "windows",
                    "guest_services": {
                        "vmicvss": {"status": "Stopped", "start_mode": "Disabled"},
                        "vmicheartbeat": {"status": "Stopped"},
                    },
                }
            ]
        }
    )
    assert host_ic(lab, "w", "vss") == ("NoContact", None)
    assert lab.state()["vms"]["w"]["heartbeat"] == "NoContact"
    assert lab.state()["vms"]["w"]["guest"]["services"]["vmicvss"] == {"status": "Stopped", "start_mode": "Disabled"}
    guest = lab.guest("w")
    guest.set([{"name": "vmicvss", "state": "started", "start_mode": "Manual"}])
    assert host_ic(lab, "w", "vss") == ("Ok", None)
    guest.set([{"name": "vmicvss", "state": "stopped"}])
    assert host_ic(lab, "w", "vss") == ("LostCommunication", None)


def test_disabled_ic_keeps_the_host_rules(guest_lab: Any) -> None:
    gsi = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
    guest_lab.guest("web01").set([{"name": "vmicguestinterface", "state": "stopped"}])
    assert host_ic(guest_lab, "web01", "guest_service_interface") == ("Ok", None)  # disabled: "False OK"
    guest_lab.set(["web01"], [{"guid": gsi, "enabled": True}])
    assert host_ic(guest_lab, "web01", "guest_service_interface") == ("LostCommunication", None)
    assert guest_lab.state()["vms"]["web01"]["guest"]["offered"] == [
        "guest_service_interface",
        "heartbeat",
        "key_value_pair_exchange",
        "shutdown",
        "time_synchronization",
        "vss",
    ]


def test_operations_stay_on_their_own_endpoint(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    req = request("vm_integration_service_info", {"vm_names": None})
    out = run(guest.client(), "PowerShell", bootstrap_args(), stdin_for(req))
    assert out.rc == 1 and out.stdout == b""
    assert "unknown operation 'vm_integration_service_info' on the Windows guest web01" in out.stderr_text
    req = request("guest_service_info", {"names": ["vmicvss"]})
    out = run(guest_lab.client(), "PowerShell", bootstrap_args(), stdin_for(req))
    assert out.rc == 1 and "unknown operation 'guest_service_info' on the Hyper-V host hv01" in out.stderr_text
    out = run(guest.client(), "ipconfig", [], None)  # not the bootstrap: loud, as on the host
    assert out.rc == 1 and "command not recognised" in out.stderr_text
    assert guest.counters()["rejected"] == 2 and guest.counters()["commands"] == 2
    assert guest_lab.state()["host"]["counters"]["rejected"] == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"names": "vmicvss"}, "params.names must be a list of strings"),
        ({"names": [], "extra": 1}, "unknown ['extra']"),
        ({"services": [{"name": "vmicvss", "state": "paused", "start_mode": None}]}, "params.services must be"),
        ({"services": [{"name": "vmicvss", "state": None, "start_mode": "manual"}]}, "params.services must be"),
        ({"services": [{"name": "vmicvss", "state": None}]}, "params.services must be"),
    ],
)
def test_malformed_params_are_rejected(guest_lab: Any, params: dict[str, Any], message: str) -> None:
    operation = "guest_service_info" if "names" in params else "guest_service_set"
    out = run(guest_lab.guest("web01").client(), "PowerShell", bootstrap_args(), stdin_for(request(operation, params)))
    assert out.rc == 1 and message in out.stderr_text


def test_endpoint_of_a_vm_that_is_not_running_is_unreachable(guest_lab: Any) -> None:
    guest = guest_lab.guest("off01")
    with pytest.raises(requests.exceptions.ConnectionError):
        guest.protocol().open_shell()
    with pytest.raises(requests.exceptions.ConnectionError):
        labclient.call(guest.protocol(), request("guest_service_info", {"names": ["vmicvss"]}))
    endpoint = guest_lab.state()["endpoints"]["off01"]
    assert endpoint["refused_connections"] == 2
    assert endpoint["counters"]["commands"] == 0 and endpoint["counters"]["requests"] == 0
    assert guest_lab.state()["vms"]["off01"]["guest"]["reachable"] is False


def test_same_credentials_as_the_host(guest_lab: Any) -> None:
    guest = guest_lab.guest("web01")
    wrong = labclient.connect(guest.url, "lab-admin", "wrong")
    with pytest.raises(Exception, match="credentials were rejected"):
        wrong.open_shell()
    guest.info(["vmicvss"])  # the host's user and password
    assert guest.counters()["requests"] == 1 + 6


def test_state_per_vm(guest_lab: Any) -> None:
    vms = guest_lab.state()["vms"]
    web = vms["web01"]
    assert web["guest"]["kind"] == "windows" and web["guest_kind"] == "windows"
    assert set(web["guest"]["services"]) == set(SERVICES)
    assert web["inventory_name"] == "web01"
    assert vms["db01"]["guest"] == {"kind": "linux"}  # no Linux guest double in this lab
    assert vms["bare"]["guest"] == {"kind": "none"} and vms["bare"]["inventory_name"] is None
    # The contract's fields are all still there.
    assert set(web) >= {"state", "integration_services", "heartbeat", "name", "id"}
