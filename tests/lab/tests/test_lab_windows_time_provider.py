"""Windows guest double: W32Time's Hyper-V time provider (VMICTimeProvider, docs/dev/hyperv-facts.md section 2)
through guest_service_info / guest_service_set (protocol doc section 7)."""

from __future__ import annotations

from typing import Any

import pytest
from labclient import bootstrap_args, request, run, stdin_for

LAB = {
    "host": {"name": "hv01", "language": "en-US"},
    "vms": [{"name": "dc01", "state": "Running", "guest": "windows"}],
}


@pytest.fixture
def lab(make_lab: Any) -> Any:
    return make_lab(LAB)


def provider(lab: Any) -> Any:
    """The running lab's model of dc01's time provider (tests may change it)."""
    return next(vm.guest for vm in lab.lab.host.vms if vm.name == "dc01").time_provider


def set_time(lab: Any, value: int, services: list | None = None, check_mode: bool = False) -> dict[str, Any]:
    return lab.guest("dc01").call(
        "guest_service_set", {"services": services or [], "time_provider_enabled": value}, check_mode
    )


def lab_value(lab: Any) -> dict[str, Any]:
    return lab.state()["vms"]["dc01"]["guest"]["time_provider"]


def test_default_is_a_real_guest_and_info_reports_it(lab: Any) -> None:
    assert lab_value(lab) == {
        "present": True,
        "enabled": 1,
        "kind": "DWord",
        "w32time": {"status": "Running", "restarts": 0, "host_samples_in_use": True},
    }
    info = lab.guest("dc01").info(["vmictimesync"])
    assert info["time_provider"] == {
        "key": "HKLM\\SYSTEM\\CurrentControlSet\\Services\\W32Time\\TimeProviders\\VMICTimeProvider",
        "present": True,
        "enabled": 1,
        "kind": "DWord",
    }


def test_set_to_zero_writes_restarts_w32time_and_converges(lab: Any) -> None:
    response = set_time(lab, 0)
    assert response["ok"], response
    time = response["result"]["time_provider"]
    assert time["before"] == {"enabled": 1, "kind": "DWord"} and time["after"] == {"enabled": 0, "kind": "DWord"}
    assert time["changed"] is True and time["error"] is None
    assert time["w32time"] == {"status": "Running", "restarted": True, "error": None}
    state = lab_value(lab)
    assert state["enabled"] == 0 and state["w32time"] == {
        "status": "Running",
        "restarts": 1,
        "host_samples_in_use": False,
    }
    assert lab.guest("dc01").counters()["writes"] == 2  # the value, then Restart-Service W32Time
    again = set_time(lab, 0)["result"]["time_provider"]
    assert again["changed"] is False and again["w32time"]["restarted"] is False
    assert lab.guest("dc01").counters()["writes"] == 2
    back = set_time(lab, 1)["result"]["time_provider"]
    assert back["after"]["enabled"] == 1 and lab_value(lab)["w32time"]["host_samples_in_use"] is True


def test_check_mode_predicts_and_writes_nothing(lab: Any) -> None:
    time = set_time(lab, 0, check_mode=True)["result"]["time_provider"]
    assert time["changed"] is True and time["after"] == {"enabled": 0, "kind": "DWord"}
    assert time["w32time"]["restarted"] is True  # would be
    assert lab_value(lab)["enabled"] == 1 and lab_value(lab)["w32time"]["restarts"] == 0
    assert lab.guest("dc01").counters()["writes"] == 0


def test_missing_key_writes_nothing_not_even_the_services(lab: Any) -> None:
    provider(lab).present = False
    result = set_time(lab, 0, services=[{"name": "vmicvss", "state": "stopped", "start_mode": None}])["result"]
    assert result["time_provider"]["present"] is False and result["services"] == []
    assert lab.guest("dc01").counters()["writes"] == 0
    assert lab.state()["vms"]["dc01"]["guest"]["services"]["vmicvss"]["status"] == "Running"


def test_access_denied_before_any_write_only_when_a_write_is_needed(lab: Any) -> None:
    provider(lab).writable = False
    response = set_time(lab, 0, services=[{"name": "vmicvss", "state": "stopped", "start_mode": None}])
    assert response["ok"] is False
    assert response["error"]["type"] == "System.Security.SecurityException"
    assert "Requested registry access is not allowed" in response["error"]["message"]
    assert lab.guest("dc01").counters()["writes"] == 0
    assert lab.state()["vms"]["dc01"]["guest"]["services"]["vmicvss"]["status"] == "Running"
    assert set_time(lab, 1)["result"]["time_provider"]["changed"] is False  # nothing to write: no error


def test_a_value_of_another_kind_is_rewritten_as_a_dword(lab: Any) -> None:
    provider(lab).enabled, provider(lab).kind = "1", "String"
    time = set_time(lab, 1)["result"]["time_provider"]
    assert time["before"] == {"enabled": "1", "kind": "String"} and time["after"] == {"enabled": 1, "kind": "DWord"}
    assert time["changed"] is True


def test_stopped_w32time_is_left_stopped(lab: Any) -> None:
    provider(lab).w32time_status = "Stopped"
    time = set_time(lab, 0)["result"]["time_provider"]
    assert time["changed"] is True and time["w32time"] == {"status": "Stopped", "restarted": False, "error": None}
    assert lab_value(lab)["w32time"]["status"] == "Stopped"


def test_failed_restart_keeps_the_value_and_says_so(lab: Any) -> None:
    provider(lab).restart_fails = True
    time = set_time(lab, 0)["result"]["time_provider"]
    assert time["changed"] is True and time["after"]["enabled"] == 0
    assert time["w32time"]["restarted"] is False and "W32Time" in time["w32time"]["error"]["message"]


def test_without_the_option_the_answer_has_no_time_provider(lab: Any) -> None:
    result = lab.guest("dc01").set([{"name": "vmicvss", "state": "stopped"}])
    assert result["time_provider"] is None and lab_value(lab)["enabled"] == 1


@pytest.mark.parametrize("value", [True, False, 2, "0", -1])
def test_anything_but_0_1_or_null_fails_loudly(lab: Any, value: Any) -> None:
    params = {"services": [], "time_provider_enabled": value}
    out = run(
        lab.guest("dc01").client(), "PowerShell", bootstrap_args(), stdin_for(request("guest_service_set", params))
    )
    assert out.rc == 1 and "time_provider_enabled must be 0, 1 or null" in out.stderr_text
    assert lab.guest("dc01").counters()["writes"] == 0


def test_an_unknown_param_still_fails_loudly(lab: Any) -> None:
    params = {"services": [], "host_time_samples": False}
    out = run(
        lab.guest("dc01").client(), "PowerShell", bootstrap_args(), stdin_for(request("guest_service_set", params))
    )
    assert out.rc == 1 and "unknown ['host_time_samples']" in out.stderr_text
