"""guest_answer_delay: after an IC is enabled, the guest answers it only that many seconds later."""

from __future__ import annotations

from typing import Any

GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
HEARTBEAT = "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47"
VSS = "5CED1297-4598-4915-A5FC-AD21BB4D02A4"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def statuses(lab: Any, vm: str) -> dict[str, str | None]:
    (entry,) = lab.info([vm])["vms"]
    return {ic["id"].rsplit("\\", 1)[1]: ic["primary_status"] for ic in entry["integration_services"]}


def heartbeat(lab: Any, vm: str) -> str | None:
    return lab.info([vm])["vms"][0]["heartbeat"]


def delayed_lab(make_lab: Any) -> tuple[Any, FakeClock]:
    lab = make_lab(
        {
            "host": {"name": "hv01", "guest_answer_delay": 5},
            "vms": [
                {"name": "web01", "guest": "windows", "integration_services": {"heartbeat": False}},
                {"name": "bare", "guest": "none", "integration_services": {"heartbeat": False}},
                {"name": "quick", "guest": "windows", "guest_answer_delay": 0},
            ],
        }
    )
    clock = FakeClock()
    lab.lab.host.clock = clock
    return lab, clock


def test_newly_enabled_ic_is_no_contact_until_the_guest_answers(make_lab: Any) -> None:
    lab, clock = delayed_lab(make_lab)
    assert statuses(lab, "web01")[GSI] == "Ok"  # disabled: "False OK"
    answer = lab.set(["web01"], [{"guid": GSI, "enabled": True}, {"guid": HEARTBEAT, "enabled": True}])
    assert answer["ok"] and answer["result"]["vms"][0]["integration_services"][0]["changed"]

    now = statuses(lab, "web01")
    assert (now[GSI], now[HEARTBEAT], now[VSS]) == ("NoContact", "NoContact", "Ok")  # VSS was on all along
    assert heartbeat(lab, "web01") == "NoContact"
    ic_state = lab.state()["vms"]["web01"]["integration_services"]
    assert ic_state["guest_service_interface"]["primary_status"] == "NoContact"
    assert ic_state["guest_service_interface"]["answers_in"] == 5.0
    assert lab.state()["vms"]["web01"]["guest_answer_delay"] == 5.0

    clock.now += 4.9
    assert statuses(lab, "web01")[GSI] == "NoContact"
    clock.now += 0.2
    now = statuses(lab, "web01")
    assert (now[GSI], now[HEARTBEAT]) == ("Ok", "Ok")
    assert heartbeat(lab, "web01") == "OkApplicationsHealthy"
    assert lab.state()["vms"]["web01"]["integration_services"]["guest_service_interface"]["answers_in"] == 0.0


def test_after_the_delay_the_ordinary_rules_apply(make_lab: Any) -> None:
    lab, clock = delayed_lab(make_lab)
    lab.set(["bare"], [{"guid": GSI, "enabled": True}])
    clock.now += 60
    assert statuses(lab, "bare")[GSI] == "NoContact"  # no guest: never answers


def test_check_mode_and_disabling_start_no_wait(make_lab: Any) -> None:
    lab, clock = delayed_lab(make_lab)
    lab.set(["web01"], [{"guid": GSI, "enabled": True}], check_mode=True)
    assert statuses(lab, "web01")[GSI] == "Ok"  # still disabled: nothing happened
    lab.set(["web01"], [{"guid": VSS, "enabled": False}])
    assert statuses(lab, "web01")[VSS] == "Ok"  # disabled ICs show Ok at once
    lab.set(["web01"], [{"guid": VSS, "enabled": True}])
    assert statuses(lab, "web01")[VSS] == "NoContact"  # re-enabled: the guest reconnects
    clock.now += 5
    assert statuses(lab, "web01")[VSS] == "Ok"


def test_a_vm_with_delay_zero_answers_at_once(make_lab: Any) -> None:
    lab, _clock = delayed_lab(make_lab)
    lab.set(["quick"], [{"guid": GSI, "enabled": True}])
    assert statuses(lab, "quick")[GSI] == "Ok"
