"""The integration_services role: host and guest together, one host-side call per host-side task."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import guest_info, run_playbook
from support.labspec import CONNECTIONS
from support.playbook import PlaybookRun

GSI = "guest_service_interface"
ROLE = [{"name": "role", "ansible.builtin.include_role": {"name": "hyperv.integration.integration_services"}}]


def ic(state: dict, vm: str, key: str) -> dict:
    return state["vms"][vm]["integration_services"][key]


def for_guests(**variables) -> dict:
    """An inventory giving every guest of the lab's inventory these variables (group_vars of guests)."""
    return {"guests": {"vars": variables}}


def lin01_services(tmp_path: Path, lab) -> dict[str, dict]:
    """What guest_integration_service_info reports in the Linux guest lin01, by service key."""
    return {s["key"]: s for s in guest_info(tmp_path, lab, "linux_guests")["lin01"]["integration_services"]}


def run_role(tmp_path: Path, lab, inventory: dict, name: str, **options) -> PlaybookRun:
    """The role on every guest of the lab's inventory, with ``inventory`` added (group_vars, host_vars)."""
    return run_playbook(tmp_path, lab, ROLE, hosts="guests", extra_inventory=inventory, name=name, **options)


@pytest.mark.parametrize("connection", CONNECTIONS)
def test_twenty_guests_one_host_command_per_host_side_task(tmp_path: Path, start_lab, connection: str) -> None:
    names = ["web%02d" % i for i in range(1, 21)]
    lab = start_lab(
        {"host": {"name": "hv01", "language": "fr-FR"}, "vms": [{"name": n, "guest": "windows"} for n in names]},
        connection=connection,
    )
    # group_vars for every guest, host_vars for one of them (the usual precedence).
    inventory = {
        "guests": {"vars": {"hyperv_integration_services": {GSI: True, "vss": True}}},
        "all": {"hosts": {"web07": {"hyperv_integration_services": {GSI: False, "vss": True}}}},
    }
    before = lab.state()["host"]["counters"]["commands"]
    check = run_role(tmp_path, lab, inventory, "check", check=True)
    assert check.rc == 0, check.stdout
    assert lab.state()["counters"]["writes"] == 0

    start = lab.state()["host"]["counters"]["commands"]
    assert start - before == 2  # check mode: the set call and the verify call, no polling
    run = run_role(tmp_path, lab, inventory, "first")
    assert run.rc == 0, run.stdout
    state = lab.state()
    # Two host-side tasks (set, then wait/verify, which answered at its first read): two commands in all.
    assert state["host"]["counters"]["commands"] - start == 2
    assert all(ic(state, n, GSI)["enabled"] is (n != "web07") for n in names)
    assert all(ic(state, n, GSI)["primary_status"] == "Ok" for n in names if n != "web07")
    assert all(ic(state, n, "vss")["primary_status"] == "Ok" for n in names)

    again = run_role(tmp_path, lab, inventory, "again")
    assert again.rc == 0, again.stdout
    assert all(again.recap(n)["changed"] == 0 for n in names), again.stdout


def test_only_the_guest_that_does_not_answer_fails_with_a_table(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "language": "de-DE"},
            "vms": [
                {"name": "web01", "guest": "windows"},
                {"name": "web02", "guest": "windows", "guest_answer_delay": 600},
            ],
        }
    )
    inventory = for_guests(hyperv_integration_services={GSI: True}, integration_services_wait_timeout=2)
    run = run_role(tmp_path, lab, inventory, "late")
    assert run.rc != 0
    assert run.recap("web01")["failed"] == 0 and run.recap("web02")["failed"] == 1, run.stdout
    failed = [r for r in run.results if r["status"] == "failed" and r["host"] == "web02"]
    message = failed[-1]["result"]["msg"]
    assert message.startswith("web02 (VM web02): Hyper-V host hv01")
    assert "web02" in message and GSI in message and "NoContact" in message
    assert "Gastdienstschnittstelle" in message  # the host's own name for it, in the table
    state = lab.state()
    assert ic(state, "web02", GSI)["enabled"] is True  # the change stays made, and the message says so
    assert ic(state, "web01", GSI)["primary_status"] == "Ok"


def test_a_vm_the_host_does_not_have_fails_the_guests_of_that_host_only(tmp_path: Path, start_lab) -> None:
    lab = start_lab({"host": {"name": "hv01"}, "vms": [{"name": "web01", "guest": "windows"}]})
    inventory = {
        "guests": {"vars": {"hyperv_integration_services": {GSI: True}}},
        # A guest of another Hyper-V host (not reachable: it must not be needed) and a host outside the role.
        "all": {"hosts": {"web01": {"hyperv_vm_name": "web-01-typo"}, "spare": {"ansible_connection": "local"}}},
    }
    tasks = [dict(ROLE[0], when="hyperv_host is defined")]
    run = run_playbook(tmp_path, lab, tasks, hosts="guests:spare", extra_inventory=inventory, name="typo")
    assert run.recap("web01")["failed"] == 1 and run.recap("spare")["failed"] == 0, run.stdout
    message = [r for r in run.results if r["status"] == "failed"][-1]["result"]["msg"]
    assert "web-01-typo" in message and "Nothing was changed" in message
    assert lab.state()["counters"]["writes"] == 0


def test_a_vm_the_host_cannot_read_fails_that_guest_and_another_spelling_finds_its_vm(
    tmp_path: Path, start_lab
) -> None:
    # web01's inventory spells its VM WEB01 (the host: web01): its part is found by requested_name.
    # web02 cannot be read once (deleted or inaccessible while the play runs): that guest fails with
    # the host's message, and nothing is changed on it; a rerun converges.
    lab = start_lab(
        {
            "host": {"name": "hv01"},
            "vms": [{"name": "web01", "guest": "windows"}, {"name": "web02", "guest": "windows"}],
            "faults": [{"type": "vm_read_error", "vm": "web02", "times": 1}],
        }
    )
    inventory = {
        "guests": {"vars": {"hyperv_integration_services": {GSI: True}}},
        "all": {"hosts": {"web01": {"hyperv_vm_name": "WEB01"}}},
    }
    run = run_role(tmp_path, lab, inventory, "unreadable")
    assert run.recap("web01")["failed"] == 0 and run.recap("web02")["failed"] == 1, run.stdout
    message = [r for r in run.results if r["status"] == "failed" and r["host"] == "web02"][-1]["result"]["msg"]
    assert message.startswith("web02 (VM web02): Hyper-V host hv01") and "could not be read" in message
    state = lab.state()
    assert ic(state, "web01", GSI)["enabled"] is True and ic(state, "web02", GSI)["enabled"] is False
    again = run_role(tmp_path, lab, inventory, "again")
    assert again.rc == 0, again.stdout
    assert ic(lab.state(), "web02", GSI)["enabled"] is True
    third = run_role(tmp_path, lab, inventory, "third")
    assert third.rc == 0 and all(third.recap(g)["changed"] == 0 for g in ("web01", "web02")), third.stdout


def test_bad_input_names_the_guest_and_changes_nothing(tmp_path: Path, start_lab) -> None:
    lab = start_lab({"host": {"name": "hv01"}, "vms": [{"name": "web01", "guest": "windows"}]})
    inventory = for_guests(hyperv_integration_services={GSI: "yes please"})
    run = run_role(tmp_path, lab, inventory, "bad")
    assert run.rc != 0
    assert "web01: hyperv_integration_services must map integration services to true or false" in run.stdout
    assert "Nothing was changed" in run.stdout
    assert lab.state()["counters"]["writes"] == 0


@pytest.mark.needs_root
def test_localized_host_with_a_windows_and_a_linux_guest(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "language": "de-DE"},
            "vms": [{"name": "win01", "guest": "windows"}, {"name": "lin01", "guest": "linux"}],
        }
    )
    # Host time samples off for every guest: the Windows guest (a domain controller, say) takes it,
    # the Linux guest has no W32Time and is left alone.
    inventory = for_guests(
        hyperv_integration_services={"Gastdienstschnittstelle": True, "vss": True},
        integration_services_windows_host_time_samples=False,
    )
    run = run_role(tmp_path, lab, inventory, "first", diff=True)
    assert run.rc == 0, run.stdout
    state = lab.state()
    assert state["vms"]["win01"]["guest"]["time_provider"]["enabled"] == 0
    for vm in ("win01", "lin01"):
        assert ic(state, vm, GSI)["enabled"] is True and ic(state, vm, GSI)["primary_status"] == "Ok", state["vms"][vm]
    assert lin01_services(tmp_path, lab)[GSI]["daemon"]["active"] is True
    again = run_role(tmp_path, lab, inventory, "again")
    assert again.rc == 0, again.stdout
    assert again.recap("win01")["changed"] == 0 and again.recap("lin01")["changed"] == 0, again.stdout


@pytest.mark.needs_root
def test_turning_off_a_kernel_service_of_a_linux_guest_check_mode_then_real(tmp_path: Path, start_lab) -> None:
    lab = start_lab({"host": {"name": "hv01"}, "vms": [{"name": "lin01", "guest": "linux"}]})
    wish = {"time_synchronization": False, "vss": False}
    inventory = for_guests(hyperv_integration_services=wish, integration_services_stop_disabled=True)
    check = run_role(tmp_path, lab, inventory, "check", check=True)
    assert check.rc == 0, check.stdout
    assert lab.state()["counters"]["writes"] == 0
    first = run_role(tmp_path, lab, inventory, "first")
    assert first.rc == 0, first.stdout
    state = lab.state()
    assert (
        ic(state, "lin01", "time_synchronization")["enabled"] is False and ic(state, "lin01", "vss")["enabled"] is False
    )
    vss = lin01_services(tmp_path, lab)["vss"]
    assert vss["offered"] is False and vss["daemon"]["active"] is False
    again = run_role(tmp_path, lab, inventory, "again")
    assert again.recap("lin01")["changed"] == 0, again.stdout
