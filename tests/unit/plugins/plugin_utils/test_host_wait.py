from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.plugin_utils import _host_wait

GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
VSS = "5CED1297-4598-4915-A5FC-AD21BB4D02A4"
HEARTBEAT = "84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47"


def ic(guid: str, status: str | None, enabled: bool = True, name: str = "localized") -> dict[str, t.Any]:
    return {
        "id": "Microsoft:AAAA\\%s" % guid,
        "guid": guid,
        "name": name,
        "enabled": enabled,
        "primary_status": status,
        "secondary_status": None,
    }


def vm(name: str, *ics: dict[str, t.Any], state: str = "Running", requested: str | None = None) -> dict[str, t.Any]:
    """One VM of an info answer: name as the host spells it, requested_name as it was polled for."""
    return {"name": name, "requested_name": requested or name, "state": state, "integration_services": list(ics)}


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_waits_only_for_services_asked_enabled() -> None:
    assert _host_wait.waited_keys({"vss": True, "heartbeat": False, "guest_service_interface": True}) == [
        "vss",
        "guest_service_interface",
    ]


def test_split_by_state_keeps_running_vms() -> None:
    running, others = _host_wait.split_by_state(
        [
            {"name": "a", "requested_name": "A", "state": "Running"},
            {"name": "b", "requested_name": "b", "state": "Off"},
            {"name": "c", "requested_name": "c", "state": "Paused"},
        ]
    )
    assert running == ["A"]  # polled again by the name the task gave
    assert others == [
        {"vm": "b", "requested_name": "b", "state": "Off"},
        {"vm": "c", "requested_name": "c", "state": "Paused"},
    ]


def test_not_answering_counts_enabled_waited_services_on_running_vms() -> None:
    answer = {
        "vms": [
            vm(
                "web01",
                ic(GSI, "NoContact", name="Gastdienstschnittstelle"),
                ic(VSS, "Ok"),
                ic(HEARTBEAT, "NoContact"),  # not asked for: ignored
            ),
            vm("web02", ic(GSI, "Ok", enabled=False)),  # switched off meanwhile: nothing to answer
            vm("off01", ic(GSI, None), state="Off"),
        ],
        "missing": ["gone01"],
        "ambiguous": {},
    }
    pending, stopped, gone = _host_wait.not_answering(answer, ["guest_service_interface", "vss"])
    assert pending == [
        {
            "vm": "web01",
            "requested_name": "web01",
            "service": "guest_service_interface",
            "name": "Gastdienstschnittstelle",
            "status": "NoContact",
        }
    ]
    assert stopped == [{"vm": "off01", "requested_name": "off01", "state": "Off"}]
    assert gone == ["gone01"]


def test_per_vm_services_follow_the_requested_name_not_the_host_spelling() -> None:
    # The task named WEB01 and db01; the host spells them web01 and DB01. Each VM waits for its own.
    answer = {
        "vms": [
            vm("web01", ic(GSI, "NoContact"), ic(VSS, "NoContact"), requested="WEB01"),
            vm("DB01", ic(GSI, "NoContact"), ic(VSS, "NoContact"), requested="db01"),
        ]
    }
    keys = {"WEB01": ["guest_service_interface"], "db01": ["vss"]}
    pending, _stopped, _gone = _host_wait.not_answering(answer, keys)
    assert [(item["vm"], item["requested_name"], item["service"]) for item in pending] == [
        ("web01", "WEB01", "guest_service_interface"),
        ("DB01", "db01", "vss"),
    ]


def test_returns_after_one_read_when_everything_answers() -> None:
    fake = FakeTime()
    calls: list[list[str]] = []

    def poll(names: list[str]) -> dict[str, t.Any]:
        calls.append(names)
        return {"vms": [vm("web01", ic(GSI, "Ok")), vm("web02", ic(GSI, "Ok"))]}

    report = _host_wait.wait_for_guests(
        poll, ["web01", "web02"], ["guest_service_interface"], 120, 2, fake.clock, fake.sleep
    )
    assert report["answered"] is True and report["polls"] == 1
    assert calls == [["web01", "web02"]]  # one read for every VM at once
    assert fake.sleeps == []


def test_polls_until_the_guest_answers() -> None:
    fake = FakeTime()
    statuses = iter(["NoContact", None, "NoContact", "Ok"])

    def poll(names: list[str]) -> dict[str, t.Any]:
        return {"vms": [vm("web01", ic(GSI, next(statuses)))]}

    report = _host_wait.wait_for_guests(poll, ["web01"], ["guest_service_interface"], 120, 2, fake.clock, fake.sleep)
    assert report["answered"] is True
    assert report["polls"] == 4
    assert fake.sleeps == [2, 2, 2]
    assert report["elapsed"] == 6.0
    assert report["not_answering"] == []


def test_times_out_with_the_last_read_at_the_deadline() -> None:
    fake = FakeTime()

    def poll(names: list[str]) -> dict[str, t.Any]:
        return {"vms": [vm("bare", ic(GSI, "NoContact")), vm("web01", ic(GSI, "Ok"))]}

    report = _host_wait.wait_for_guests(
        poll, ["bare", "web01"], ["guest_service_interface"], 5, 2, fake.clock, fake.sleep
    )
    assert report["answered"] is False
    assert fake.sleeps == [2, 2, 1]  # never sleeps past the deadline
    assert report["polls"] == 4 and report["elapsed"] == 5.0
    assert [(item["vm"], item["status"]) for item in report["not_answering"]] == [("bare", "NoContact")]


def test_zero_timeout_reads_once() -> None:
    fake = FakeTime()
    report = _host_wait.wait_for_guests(
        lambda names: {"vms": [vm("bare", ic(GSI, "NoContact"))]},
        ["bare"],
        ["guest_service_interface"],
        0,
        2,
        fake.clock,
        fake.sleep,
    )
    assert (report["answered"], report["polls"], fake.sleeps) == (False, 1, [])


def test_a_vm_that_stops_running_is_no_longer_waited_for() -> None:
    fake = FakeTime()
    reads = iter(
        [
            {"vms": [vm("a", ic(VSS, "NoContact")), vm("b", ic(VSS, "NoContact"))]},
            {"vms": [vm("a", ic(VSS, None), state="Off"), vm("b", ic(VSS, "Ok"))]},
        ]
    )
    asked: list[list[str]] = []

    def poll(names: list[str]) -> dict[str, t.Any]:
        asked.append(names)
        return next(reads)

    report = _host_wait.wait_for_guests(poll, ["a", "b"], ["vss"], 60, 2, fake.clock, fake.sleep)
    assert report["answered"] is True
    assert report["not_running"] == [{"vm": "a", "requested_name": "a", "state": "Off"}]
    assert asked == [["a", "b"], ["a", "b"]]


def test_timeout_message_is_a_table_naming_vm_ic_and_status() -> None:
    report = {
        "polls": 3,
        "not_answering": [
            {
                "vm": "web01",
                "service": "guest_service_interface",
                "name": "Gastdienstschnittstelle",
                "status": "NoContact",
            },
            {"vm": "Prüf'VM", "service": "vss", "name": "VSS", "status": None},
        ],
    }
    message = _host_wait.timeout_message("hv01", report, 5, ["VM 'web01' guest_service_interface enabled"])
    lines = message.splitlines()
    assert lines[0] == "Hyper-V host hv01: 2 integration service(s) did not report status Ok within 5 s (3 read(s)):"
    assert lines[1].split() == ["VM", "IC", "host", "name", "status"]
    assert lines[2].split() == ["web01", "guest_service_interface", "Gastdienstschnittstelle", "NoContact"]
    assert lines[3].split() == ["Prüf'VM", "vss", "VSS", "(none)"]
    # Columns line up: each status starts where the header's does.
    assert lines[2].index("NoContact") == lines[1].index("status") == lines[3].index("(none)")
    assert any(line.startswith("NoContact: ") for line in lines)
    assert lines[-1] == "The changes were made and stay made: VM 'web01' guest_service_interface enabled."


def test_timeout_message_without_changes_says_so() -> None:
    report = {"polls": 1, "not_answering": [{"vm": "a", "service": "vss", "name": "VSS", "status": "NoContact"}]}
    assert _host_wait.timeout_message("hv01", report, 0, []).endswith(
        "Nothing was changed (the services were already as requested)."
    )
