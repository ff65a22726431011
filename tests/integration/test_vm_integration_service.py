"""vm_integration_service end to end: real ansible-playbook over winrm against the lab's Hyper-V host."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from harness import Lab, run_playbook
from support.labspec import CONNECTIONS

GSI = "guest_service_interface"
HOSTILE_NAMES = [
    "Prüf'VM",
    "ウェブ 01",
    "a$(Remove-Item C:\\ -Recurse)",
    "back`tick",
    "semi;colon",
    "{brace}",
    "with space",
    'double"quote',
    "comma,name",
    "[wild]*?",
]


def labfile(
    names: list[str], language: str = "en-US", faults: list | None = None, connection: str = "winrm", **vm_extra
) -> dict:
    return {
        "host": {"name": "hv01", "language": language, "connection": connection},
        "vms": [dict({"name": n, "state": "Running", "guest": "windows"}, **vm_extra) for n in names],
        "faults": faults or [],
    }


def set_task(names, services, name: str = "set") -> dict:
    return {
        "name": name,
        "hyperv.integration.vm_integration_service": {"name": names, "services": services},
        "register": "out",
        "ignore_errors": True,
    }


def enabled(state: dict, vm: str, key: str) -> bool:
    return state["vms"][vm]["integration_services"][key]["enabled"]


@pytest.mark.parametrize(
    ("language", "count", "connection"),
    [("en-US", 1, "winrm"), ("zh-TW", 50, "winrm")] + [("de-DE", 100, c) for c in CONNECTIONS],
)
def test_one_task_one_command_any_number_of_vms(
    tmp_path: Path, start_lab, language: str, count: int, connection: str
) -> None:
    names = ["vm%03d" % i for i in range(count)]
    lab: Lab = start_lab(labfile(names, language, connection=connection))
    start = lab.state()
    before = start["counters"]
    assert not any(enabled(start, n, GSI) for n in names)

    # Check mode first: reports the change, writes nothing.
    check = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled"})], check=True, name="check")
    assert check.rc == 0, check.stdout
    assert check.recap("hv01")["changed"] == 1
    after_check = lab.state()
    assert after_check["counters"]["writes"] == before["writes"]
    assert after_check["counters"]["commands"] == before["commands"] + 1
    assert not any(enabled(after_check, n, GSI) for n in names)

    run = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled"})], name="apply")
    assert run.rc == 0, run.stdout
    assert run.recap("hv01")["changed"] == 1
    state = lab.state()
    assert state["counters"]["commands"] == after_check["counters"]["commands"] + 1
    assert state["counters"]["writes"] == before["writes"] + count
    assert all(enabled(state, n, GSI) for n in names)
    vms = run.result("set")["result"]["vms"]
    assert [vm["name"] for vm in vms] == names
    assert all(vm["integration_services"][GSI]["changed"] for vm in vms)

    again = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled"})], name="again")
    assert again.rc == 0, again.stdout
    assert again.recap("hv01")["changed"] == 0
    assert lab.state()["counters"]["writes"] == state["counters"]["writes"]


@pytest.mark.parametrize("language", ["de-DE", "zh-TW", "fr-FR"])
def test_localized_host_driven_with_english_keys(tmp_path: Path, start_lab, language: str) -> None:
    lab = start_lab(labfile(["web01", "web02"], language))
    services = {GSI: "enabled", "time_synchronization": "disabled", "Heartbeat": True}
    run = run_playbook(tmp_path, lab, [set_task(["web01", "web02"], services)])
    assert run.rc == 0, run.stdout
    state = lab.state()
    for vm in ("web01", "web02"):
        assert enabled(state, vm, GSI)
        assert not enabled(state, vm, "time_synchronization")
        assert enabled(state, vm, "heartbeat")
    reported = run.result("set")["result"]["vms"][0]["integration_services"]
    # The host reports its own (localized) name; we address it by key all the same.
    assert reported[GSI]["name"] != "Guest Service Interface"
    assert reported["heartbeat"]["changed"] is False


def test_localized_input_names(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["db01"], "zh-TW"))
    run = run_playbook(
        tmp_path, lab, [set_task("db01", {"客體服務介面": "enabled", "Zeitsynchronisierung": "disabled"})]
    )
    assert run.rc == 0, run.stdout
    state = lab.state()
    assert enabled(state, "db01", GSI)
    assert not enabled(state, "db01", "time_synchronization")


def test_hostile_vm_names_travel_as_data(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(HOSTILE_NAMES))
    run = run_playbook(tmp_path, lab, [set_task(HOSTILE_NAMES, {GSI: "enabled"})])
    assert run.rc == 0, run.stdout
    state = lab.state()
    assert sorted(state["vms"]) == sorted(HOSTILE_NAMES)
    assert all(enabled(state, n, GSI) for n in HOSTILE_NAMES)
    assert [vm["name"] for vm in run.result("set")["result"]["vms"]] == HOSTILE_NAMES
    # One string with a comma is one VM, not two.
    single = run_playbook(tmp_path, lab, [set_task("comma,name", {GSI: "disabled"})], name="single")
    assert single.rc == 0, single.stdout
    assert not enabled(lab.state(), "comma,name", GSI)
    assert enabled(lab.state(), "Prüf'VM", GSI)


def test_check_mode_with_diff_shows_before_and_after(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01"]))
    writes = lab.state()["counters"]["writes"]
    run = run_playbook(tmp_path, lab, [set_task("web01", {GSI: "enabled", "vss": "disabled"})], check=True, diff=True)
    assert run.rc == 0, run.stdout
    result = run.result("set")["result"]
    assert result["changed"] is True
    assert result["diff"]["before"] == {"web01": {GSI: "disabled", "vss": "enabled"}}
    assert result["diff"]["after"] == {"web01": {GSI: "enabled", "vss": "disabled"}}
    assert "+" in run.stdout and GSI in run.stdout  # the diff is shown to the user
    assert lab.state()["counters"]["writes"] == writes


def test_unknown_vm_fails_names_it_and_changes_nothing(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01", "web02"]))
    run = run_playbook(tmp_path, lab, [set_task(["web01", "nope'01", "web02"], {GSI: "enabled"})])
    assert run.result("set")["status"] == "failed"
    result = run.result("set")["result"]
    assert "nope'01" in result["msg"] and "hv01" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert result["missing_vms"] == ["nope'01"]
    state = lab.state()
    assert state["counters"]["writes"] == 0
    assert not enabled(state, "web01", GSI)


def test_unknown_service_fails_before_reaching_the_host(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01"]))
    run = run_playbook(tmp_path, lab, [set_task("web01", {GSI: "enabled", "Backup": "enabled"})])
    assert run.result("set")["status"] == "failed"
    msg = run.result("set")["result"]["msg"]
    assert "'Backup'" in msg and "guest_service_interface" in msg and "heartbeat" in msg
    counters = lab.state()["counters"]
    assert (counters["commands"], counters["writes"]) == (0, 0)


def test_write_failure_for_one_vm_reports_what_was_done_and_rerun_converges(tmp_path: Path, start_lab) -> None:
    names = ["web01", "web02", "web03"]
    fault = {"type": "write_error", "vm": "web02", "service": GSI, "times": 1}
    lab = start_lab(labfile(names, faults=[fault]))
    run = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled", "vss": "disabled"})])
    assert run.result("set")["status"] == "failed"
    result = run.result("set")["result"]
    msg = result["msg"]
    assert "'web02' guest_service_interface" in msg
    assert "'web01' guest_service_interface enabled" in msg  # what was done
    assert "Rerun" in msg
    state = lab.state()
    assert enabled(state, "web01", GSI) and enabled(state, "web03", GSI)
    assert not enabled(state, "web02", GSI)
    assert not any(enabled(state, n, "vss") for n in names)  # web02's other change still went through

    rerun = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled", "vss": "disabled"})], name="rerun")
    assert rerun.rc == 0, rerun.stdout
    changed_vms = [vm["name"] for vm in rerun.result("set")["result"]["vms"] if vm["changed"]]
    assert changed_vms == ["web02"]
    assert enabled(lab.state(), "web02", GSI)
    third = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled", "vss": "disabled"})], name="third")
    assert third.recap("hv01")["changed"] == 0


@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("at", ["receive", "send"])
def test_a_dropped_connection_says_so_and_a_rerun_converges(
    tmp_path: Path, start_lab, at: str, connection: str
) -> None:
    names = ["web01", "web02"]
    lab = start_lab(labfile(names, faults=[{"type": "drop_connection", "at": at, "times": 1}], connection=connection))
    run = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled"})])
    assert run.result("set")["status"] == "failed"
    assert "rerun" in run.result("set")["result"]["msg"].lower()
    if at == "send":  # the command never ran; at receive it ran and only the answer was lost
        assert lab.state()["counters"]["writes"] == 0
    rerun = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled"})], name="rerun")
    assert rerun.rc == 0, rerun.stdout
    assert rerun.recap("hv01")["changed"] == (1 if at == "send" else 0)
    assert all(enabled(lab.state(), n, GSI) for n in names)
    third = run_playbook(tmp_path, lab, [set_task(names, {GSI: "enabled"})], name="third")
    assert third.recap("hv01")["changed"] == 0


def test_slow_host_still_answers(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01"], faults=[{"type": "delay", "seconds": 1.5}]))
    started = time.monotonic()
    run = run_playbook(tmp_path, lab, [set_task("web01", {GSI: "enabled"})])
    assert run.rc == 0, run.stdout
    assert time.monotonic() - started >= 1.5
    assert enabled(lab.state(), "web01", GSI)


def test_access_denied_is_explained_and_nothing_changes(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01"], faults=[{"type": "access_denied"}]))
    run = run_playbook(tmp_path, lab, [set_task("web01", {GSI: "enabled"})])
    assert run.result("set")["status"] == "failed"
    msg = run.result("set")["result"]["msg"]
    assert "hv01" in msg and "Hyper-V Administrators" in msg and "Nothing was changed" in msg
    assert lab.state()["counters"]["writes"] == 0


def test_vm_lacking_a_service_fails_names_both_and_changes_nothing(tmp_path: Path, start_lab) -> None:
    lab_def = labfile(["web01"])
    lab_def["vms"].append(
        {"name": "legacy01", "state": "Running", "guest": "windows", "integration_services": {GSI: "absent"}}
    )
    lab = start_lab(lab_def)
    run = run_playbook(tmp_path, lab, [set_task(["web01", "legacy01"], {GSI: "enabled", "vss": "disabled"})])
    assert run.result("set")["status"] == "failed"
    result = run.result("set")["result"]
    assert "'legacy01' has no guest_service_interface" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert result["missing_services"] == [{"vm": "legacy01", "service": GSI}]
    assert "missing_vms" not in result
    assert lab.state()["counters"]["writes"] == 0


def test_names_differing_only_in_case_are_one_vm_or_ambiguous(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01", "Twin", "TWIN"]))
    once = run_playbook(tmp_path, lab, [set_task(["web01", "WEB01"], {GSI: "enabled"})], name="once")
    assert once.rc == 0, once.stdout
    assert [vm["name"] for vm in once.result("set")["result"]["vms"]] == ["web01"]  # one VM, written once
    assert lab.state()["counters"]["writes"] == 1
    twin = run_playbook(tmp_path, lab, [set_task("twin", {GSI: "enabled"})], name="twin")
    assert twin.result("set")["status"] == "failed"
    assert "'twin' names 2 VMs on Hyper-V host hv01" in twin.result("set")["result"]["msg"]
    assert lab.state()["counters"]["writes"] == 1


def test_play_over_guests_delegating_to_their_host(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01", "web02"]))
    guests = {
        "all": {
            "children": {
                "my_guests": {
                    "hosts": {
                        "g1": {"hyperv_host": "hv01", "hyperv_vm_name": "web01"},
                        "g2": {"hyperv_host": "hv01", "hyperv_vm_name": "web02"},
                        "g3": {"hyperv_host": "hv01", "hyperv_vm_name": "gone"},
                    },
                    "vars": {"ansible_connection": "local"},
                }
            }
        }
    }
    task = {
        "name": "set",
        "hyperv.integration.vm_integration_service": {
            "vm": "{{ hyperv_vm_name }}",  # the alias
            "services": {GSI: "enabled"},
        },
        "delegate_to": "{{ hyperv_host }}",
        "ignore_errors": True,
    }
    run = run_playbook(tmp_path, lab, [task], hosts="my_guests", extra_inventory=guests)
    assert run.result("set", "g1")["status"] == "ok" and run.result("set", "g2")["status"] == "ok"
    failed = run.result("set", "g3")
    assert failed["status"] == "failed"
    assert "no VM named 'gone' on Hyper-V host hv01" in failed["result"]["msg"]  # the host, not the guest
    state = lab.state()
    assert enabled(state, "web01", GSI) and enabled(state, "web02", GSI)
    assert state["counters"]["commands"] == 3  # one per delegated task run


def test_no_diff_unless_asked_and_empty_list_is_a_no_op(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01"]))
    run = run_playbook(tmp_path, lab, [set_task(["web01"], {GSI: "enabled"})])
    assert run.rc == 0, run.stdout
    assert "diff" not in run.result("set")["result"]
    empty = run_playbook(tmp_path, lab, [set_task([], {GSI: "enabled"})], name="empty")
    assert empty.rc == 0, empty.stdout
    assert empty.result("set")["result"]["vms"] == [] and empty.recap("hv01")["changed"] == 0
    assert lab.state()["counters"]["commands"] == 1  # the empty task did not call the host


def test_a_host_without_a_powershell_shell_is_refused_plainly(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01"]))
    task = dict(set_task("web01", {GSI: "enabled"}), delegate_to="localhost")
    run = run_playbook(tmp_path, lab, [task])
    result = run.result("set")
    assert result["status"] == "failed"
    assert result["result"]["msg"].startswith("Hyper-V host localhost: this module runs PowerShell")
    assert "ansible_shell_type=powershell" in result["result"]["msg"]
    assert "may have applied" not in result["result"]["msg"]
    assert lab.state()["counters"]["commands"] == 0


def test_module_defaults_through_the_action_group(tmp_path: Path, start_lab) -> None:
    lab = start_lab(labfile(["web01", "web02"]))
    block = {
        "module_defaults": {"group/hyperv.integration.hyperv": {"name": ["web02"]}},
        "block": [
            {"name": "set", "hyperv.integration.vm_integration_service": {"services": {GSI: "enabled"}}},
            {"name": "info", "hyperv.integration.vm_integration_service_info": {}},
        ],
    }
    run = run_playbook(tmp_path, lab, [block])
    assert run.rc == 0, run.stdout
    assert [vm["name"] for vm in run.result("info")["result"]["vms"]] == ["web02"]
    state = lab.state()
    assert enabled(state, "web02", GSI) and not enabled(state, "web01", GSI)


def wait_task(names, services, timeout: int, name: str = "set") -> dict:
    task = set_task(names, services, name)
    task["hyperv.integration.vm_integration_service"].update(wait=True, wait_timeout=timeout)
    return task


def primary(state: dict, vm: str, key: str) -> str | None:
    return state["vms"][vm]["integration_services"][key]["primary_status"]


def test_wait_returns_once_the_guests_answer(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "guest_answer_delay": 3},
            "vms": [
                {"name": "web01", "guest": "windows"},
                {"name": "web02", "guest": "windows"},
                {"name": "off01", "guest": "windows", "state": "Off"},
            ],
        }
    )
    names = ["web01", "web02", "off01"]
    before = lab.state()["counters"]
    started = time.monotonic()
    run = run_playbook(tmp_path, lab, [wait_task(names, {GSI: "enabled", "vss": "enabled"}, 60)])
    took = time.monotonic() - started
    assert run.rc == 0, run.stdout
    result = run.result("set")["result"]
    assert result["changed"] is True
    wait = result["wait"]
    assert wait["answered"] is True and wait["skipped"] is None
    assert wait["vms"] == ["web01", "web02"] and wait["services"] == [GSI, "vss"]
    # no guest to answer: not waited for
    assert wait["not_running"] == [{"vm": "off01", "requested_name": "off01", "state": "Off"}]
    assert wait["polls"] >= 2 and wait["elapsed"] >= 2.5 and took >= 3
    state = lab.state()
    assert all(primary(state, vm, GSI) == "Ok" for vm in ("web01", "web02"))
    # One host-side PowerShell command for the change, then one per read, whatever the number of VMs.
    assert state["counters"]["commands"] == before["commands"] + 1 + wait["polls"]
    assert state["counters"]["writes"] == before["writes"] + 3

    # Nothing to change and everything answers already: the set call's own statuses end the wait.
    again = run_playbook(tmp_path, lab, [wait_task(names, {GSI: "enabled"}, 60)], name="again")
    assert again.rc == 0, again.stdout
    assert again.recap("hv01")["changed"] == 0
    assert again.result("set")["result"]["wait"]["polls"] == 0
    assert again.result("set")["result"]["wait"]["answered"] is True
    assert lab.state()["counters"]["commands"] == state["counters"]["commands"] + 1


def test_wait_timeout_fails_with_a_table_and_keeps_the_changes(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "language": "de-DE"},
            "vms": [
                {"name": "web01", "guest": "windows", "guest_answer_delay": 600},
                {"name": "Prüf'VM", "guest": "none"},
                {"name": "ok01", "guest": "windows"},
            ],
        }
    )
    names = ["web01", "Prüf'VM", "ok01"]
    before = lab.state()["counters"]
    run = run_playbook(tmp_path, lab, [wait_task(names, {GSI: "enabled", "vss": "enabled"}, 3)])
    assert run.result("set")["status"] == "failed"
    result = run.result("set")["result"]
    assert result["changed"] is True
    lines = result["msg"].splitlines()
    assert lines[0] == (
        "Hyper-V host hv01: 3 integration service(s) did not report status Ok within 3 s (%d read(s)):"
        % result["wait"]["polls"]
    )
    assert lines[1].split() == ["VM", "IC", "host", "name", "status"]
    rows = [line.split() for line in lines[2:5]]
    assert rows == [
        ["web01", GSI, "Gastdienstschnittstelle", "NoContact"],  # its guest has not answered yet
        ["Prüf'VM", GSI, "Gastdienstschnittstelle", "NoContact"],  # nothing inside ever answers
        ["Prüf'VM", "vss", "VSS", "NoContact"],  # enabled all along, never answered either
    ]  # web01's VSS was enabled and answering all along; ok01's guest answered at once
    assert "Guest Service Interface" not in result["msg"]  # the host's own (German) name is shown
    assert lines[-1] == (
        "The changes were made and stay made: VM 'web01' guest_service_interface enabled; "
        "VM \"Prüf'VM\" guest_service_interface enabled; VM 'ok01' guest_service_interface enabled."
    )
    assert [(i["vm"], i["service"], i["status"]) for i in result["wait"]["not_answering"]] == [
        ("web01", GSI, "NoContact"),
        ("Prüf'VM", GSI, "NoContact"),
        ("Prüf'VM", "vss", "NoContact"),
    ]
    state = lab.state()
    assert all(enabled(state, vm, GSI) for vm in names)  # the writes happened and stay
    assert state["counters"]["writes"] == before["writes"] + 3
    assert result["wait"]["polls"] >= 2
    assert state["counters"]["commands"] == before["commands"] + 1 + result["wait"]["polls"]


def test_check_mode_neither_writes_nor_waits(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {"host": {"name": "hv01", "guest_answer_delay": 600}, "vms": [{"name": "web01", "guest": "windows"}]}
    )
    before = lab.state()["counters"]
    started = time.monotonic()
    run = run_playbook(tmp_path, lab, [wait_task(["web01"], {GSI: "enabled"}, 60)], check=True)
    assert run.rc == 0, run.stdout
    assert time.monotonic() - started < 30
    result = run.result("set")["result"]
    assert result["changed"] is True
    assert result["wait"]["skipped"] == "check mode: nothing was changed, so no guest was waited for"
    assert result["wait"]["polls"] == 0
    state = lab.state()
    assert state["counters"]["writes"] == before["writes"]
    assert state["counters"]["commands"] == before["commands"] + 1  # the comparison only
    assert not enabled(state, "web01", GSI)


def test_vms_gives_each_vm_its_own_services_in_one_command_and_waits_per_vm(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "language": "de-DE", "guest_answer_delay": 2},
            "vms": [{"name": "web01", "guest": "windows"}, {"name": "dc01", "guest": "windows"}],
        }
    )
    vms = [
        {"name": "WEB01", "services": {"Gastdienstschnittstelle": "enabled"}},
        {"name": "dc01", "services": {"time_synchronization": "disabled"}},
    ]
    task = {"name": "set", "hyperv.integration.vm_integration_service": {"vms": vms, "wait": True, "wait_timeout": 60}}
    before = lab.state()["counters"]["commands"]
    run = run_playbook(tmp_path, lab, [task])
    assert run.rc == 0, run.stdout
    result = run.result("set")["result"]
    state = lab.state()
    assert state["vms"]["web01"]["integration_services"][GSI]["enabled"] is True
    assert state["vms"]["dc01"]["integration_services"][GSI]["enabled"] is False  # not asked of dc01
    assert state["vms"]["dc01"]["integration_services"]["time_synchronization"]["enabled"] is False
    assert state["vms"]["web01"]["integration_services"]["time_synchronization"]["enabled"] is True
    assert result["wait"]["vms"] == ["web01"]  # dc01 asked nothing enabled: nothing to wait for
    assert state["counters"]["commands"] == before + 1 + result["wait"]["polls"]
    again = run_playbook(tmp_path, lab, [task], name="again")
    assert again.recap("hv01")["changed"] == 0

    both = {"name": "both", "hyperv.integration.vm_integration_service": {"vms": vms, "name": "web01"}}
    refused = run_playbook(tmp_path, lab, [dict(both, ignore_errors=True)], name="both")
    assert refused.result("both")["status"] == "failed"
    assert "either vms, or name and services" in refused.result("both")["result"]["msg"]
