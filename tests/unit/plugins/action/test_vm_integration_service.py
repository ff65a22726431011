from __future__ import annotations

import pytest

from ansible_collections.hyperv.integration.plugins.action.vm_integration_service import (
    ActionModule,
    summarise,
    write_failure_message,
)
from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.plugin_utils import _host_wait
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed

GSI_GUID = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
VSS_GUID = "5CED1297-4598-4915-A5FC-AD21BB4D02A4"


def _item(guid: str, before: bool, after: bool, error: str | None = None) -> dict:
    return {
        "guid": guid,
        "name": "localized",
        "before": before,
        "after": after,
        "changed": before != after,
        "error": None if error is None else {"type": "X", "message": error},
    }


def _answer() -> dict:
    return {
        "vms": [
            {"name": "web01", "id": "i1", "state": "Running", "integration_services": [_item(GSI_GUID, False, True)]},
            {
                "name": "Prüf'VM",
                "id": "i2",
                "state": "Off",
                "integration_services": [
                    _item(GSI_GUID, False, False, "Zugriff verweigert"),
                    _item(VSS_GUID, True, True),
                ],
            },
        ]
    }


def test_summarise_keys_services_and_builds_the_diff() -> None:
    vms, diff = summarise(_answer())
    assert [vm["name"] for vm in vms] == ["web01", "Prüf'VM"]
    assert vms[0]["changed"] is True and vms[1]["changed"] is False
    assert vms[0]["integration_services"]["guest_service_interface"] == {
        "name": "localized",
        "enabled_before": False,
        "enabled": True,
        "changed": True,
        "primary_status": None,
    }
    assert vms[1]["integration_services"]["guest_service_interface"]["error"] == "Zugriff verweigert"
    assert diff["before"] == {
        "web01": {"guest_service_interface": "disabled"},
        "Prüf'VM": {"guest_service_interface": "disabled", "vss": "enabled"},
    }
    assert diff["after"]["web01"] == {"guest_service_interface": "enabled"}


def test_failure_message_says_what_failed_and_what_was_done() -> None:
    vms, _diff = summarise(_answer())
    message = write_failure_message("hv01", vms)
    assert message is not None
    assert "1 change(s) failed" in message
    assert 'VM "Prüf\'VM" guest_service_interface: Zugriff verweigert' in message
    assert "Done: VM 'web01' guest_service_interface enabled" in message
    assert "Rerun" in message


def test_no_failure_no_message() -> None:
    answer = {"vms": [{"name": "a", "integration_services": [_item(GSI_GUID, True, True)]}]}
    assert write_failure_message("hv01", summarise(answer)[0]) is None


class _Task:
    def __init__(self, check_mode: bool) -> None:
        self.check_mode = check_mode
        self.diff = False


class _Recorder:
    """An ActionModule whose host calls are answered from a script (no connection)."""

    def __init__(self, check_mode: bool, set_answer: dict, info_answers: list[dict]) -> None:
        action = ActionModule.__new__(ActionModule)
        action._task = _Task(check_mode)
        action.host = "hv01"
        action.call_host = self.call_host  # type: ignore[method-assign]
        self.action = action
        self.set_answer = set_answer
        self.info_answers = list(info_answers)
        self.calls: list[tuple[str, dict]] = []

    def call_host(self, operation: str, params: dict, writes: bool) -> dict:
        self.calls.append((operation, params))
        if operation == "vm_integration_service_set":
            return self.set_answer
        return self.info_answers.pop(0)

    def run(self, **args: object) -> dict:
        full = {"name": ["web01", "off01"], "services": {"guest_service_interface": "enabled"}}
        full.update({"wait": True, "wait_timeout": 10})
        full.update(args)
        return self.action.run_host({}, full)


def _set_answer(changed: bool = True) -> dict:
    return {
        "vms": [
            {
                "name": "web01",
                "requested_name": "web01",
                "id": "i1",
                "state": "Running",
                "integration_services": [_item(GSI_GUID, not changed, True)],
            },
            {
                "name": "off01",
                "requested_name": "off01",
                "id": "i2",
                "state": "Off",
                "integration_services": [_item(GSI_GUID, not changed, True)],
            },
        ]
    }


def _info(status: str | None) -> dict:
    ic = {"id": "Microsoft:I1\\" + GSI_GUID, "guid": GSI_GUID, "name": "Guest Service Interface", "enabled": True}
    ic["primary_status"] = status
    return {
        "vms": [{"name": "web01", "requested_name": "web01", "state": "Running", "integration_services": [ic]}],
        "missing": [],
        "ambiguous": {},
    }


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(_host_wait.time, "sleep", slept.append)
    return slept


def test_wait_reads_only_running_vms_once_per_poll(no_sleep: list[float]) -> None:
    recorder = _Recorder(False, _set_answer(), [_info("NoContact"), _info("Ok")])
    result = recorder.run()
    assert "failed" not in result and result["changed"] is True
    assert [op for op, _params in recorder.calls] == [
        "vm_integration_service_set",
        "vm_integration_service_info",
        "vm_integration_service_info",
    ]
    assert recorder.calls[1][1] == {"vm_names": ["web01"]}  # Off VMs have no guest to answer
    wait = result["wait"]
    assert (wait["answered"], wait["polls"], wait["skipped"]) == (True, 2, None)
    assert wait["not_running"] == [{"vm": "off01", "requested_name": "off01", "state": "Off"}]
    assert wait["services"] == ["guest_service_interface"] and wait["vms"] == ["web01"]
    assert no_sleep == [_host_wait.POLL_INTERVAL]


def test_wait_timeout_fails_with_the_table_and_what_was_changed(no_sleep: list[float]) -> None:
    recorder = _Recorder(False, _set_answer(), [_info("NoContact")] * 10)
    result = recorder.run(wait_timeout=0)
    assert result["failed"] is True and result["changed"] is True
    assert "web01  guest_service_interface  Guest Service Interface  NoContact" in result["msg"]
    assert "The changes were made and stay made: VM 'web01' guest_service_interface enabled" in result["msg"]
    assert result["wait"]["not_answering"][0]["status"] == "NoContact"


def test_check_mode_does_not_wait(no_sleep: list[float]) -> None:
    recorder = _Recorder(True, _set_answer(), [])
    result = recorder.run()
    assert [op for op, _params in recorder.calls] == ["vm_integration_service_set"]
    assert result["wait"]["skipped"].startswith("check mode")
    assert result["wait"]["polls"] == 0


def test_nothing_asked_enabled_or_nothing_running_reads_nothing(no_sleep: list[float]) -> None:
    recorder = _Recorder(False, _set_answer(), [])
    result = recorder.run(services={"guest_service_interface": "disabled"})
    assert result["wait"]["skipped"] == "no service is asked to be enabled"
    off_only = {"vms": [_set_answer()["vms"][1]]}
    recorder = _Recorder(False, off_only, [])
    result = recorder.run(name=["off01"])
    assert result["wait"]["skipped"] == "no VM named is Running"
    assert result["wait"]["not_running"] == [{"vm": "off01", "requested_name": "off01", "state": "Off"}]
    assert [op for op, _params in recorder.calls] == ["vm_integration_service_set"]


def test_no_wait_after_a_failed_write(no_sleep: list[float]) -> None:
    answer = {
        "vms": [
            {
                "name": "web01",
                "requested_name": "web01",
                "state": "Running",
                "integration_services": [_item(GSI_GUID, False, False, "denied")],
            }
        ]
    }
    recorder = _Recorder(False, answer, [])
    result = recorder.run(name="web01")
    assert result["failed"] is True and "change(s) failed" in result["msg"]
    assert result["wait"]["skipped"] == "some changes failed"
    assert len(recorder.calls) == 1


def test_a_lost_poll_says_the_changes_stay_made(no_sleep: list[float]) -> None:
    recorder = _Recorder(False, _set_answer(), [])

    def broken(operation: str, params: dict, writes: bool) -> dict:
        if operation == "vm_integration_service_set":
            return recorder.set_answer
        raise CallFailed("Hyper-V host hv01: the connection failed during the call: reset.")

    recorder.action.call_host = broken  # type: ignore[method-assign]
    result = recorder.run()
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"].startswith("While waiting for the guests to answer: Hyper-V host hv01: the connection")
    assert (
        "stay made: VM 'web01' guest_service_interface enabled; VM 'off01' guest_service_interface enabled"
        in (result["msg"])
    )


def test_negative_wait_timeout_is_refused() -> None:
    recorder = _Recorder(False, _set_answer(), [])
    with pytest.raises(ArgumentError, match="wait_timeout must be 0 or more seconds, got -1"):
        recorder.run(wait_timeout=-1)
    assert recorder.calls == []


def test_an_unchanged_vm_whose_services_answer_needs_no_further_read() -> None:
    from ansible_collections.hyperv.integration.plugins.plugin_utils import _host_wait

    item = dict(_item(GSI_GUID, True, True), primary_status="Ok")
    answer = {"vms": [{"name": "web01", "requested_name": "web01", "state": "Running", "integration_services": [item]}]}
    vms, _diff = summarise(answer)
    assert _host_wait.pending_in(vms, ["web01"], ["guest_service_interface"]) is False
    vms[0]["integration_services"]["guest_service_interface"]["primary_status"] = "NoContact"
    assert _host_wait.pending_in(vms, ["web01"], {"web01": ["guest_service_interface"]}) is True
    assert _host_wait.pending_in(vms, ["web01"], {"web01": []}) is False


def test_each_vm_waits_for_its_own_services_by_the_name_the_task_gave(no_sleep: list[float]) -> None:
    # The task names WEB01; the host spells it web01. The wait pairs by requested_name, not by position.
    set_answer = {
        "vms": [
            {
                "name": "web01",
                "requested_name": "WEB01",
                "id": "i1",
                "state": "Running",
                "integration_services": [_item(GSI_GUID, False, True)],
            }
        ]
    }
    info = _info("NoContact")
    info["vms"][0]["requested_name"] = "WEB01"
    recorder = _Recorder(False, set_answer, [info] * 10)
    result = recorder.run(
        name=None,
        services=None,
        vms=[{"name": "WEB01", "services": {"guest_service_interface": "enabled"}}],
        wait_timeout=0,
    )
    assert recorder.calls[1] == ("vm_integration_service_info", {"vm_names": ["WEB01"]})
    assert result["vms"][0]["requested_name"] == "WEB01" and result["vms"][0]["name"] == "web01"
    assert result["wait"]["vms"] == ["web01"]  # as the host spells it, like every vm of the result
    assert [(i["vm"], i["requested_name"], i["service"]) for i in result["wait"]["not_answering"]] == [
        ("web01", "WEB01", "guest_service_interface")
    ]
