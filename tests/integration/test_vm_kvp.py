"""vm_kvp and vm_kvp_info end to end: the host library's call, the lab's Windows guest, and the real
hv_kvp_daemon in the lab's Linux guest, which writes the host's items to its pool 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import run_playbook
from support.labspec import CONNECTIONS

ITEMS = {"AppConfigUrl": "file:///etc/app.json", "Quoted": 'it\'s "quoted" $(id) `uname`', "Grüße": "ünïcödé ✓ 漢字"}
LAB = {"host": {"name": "hv01"}, "vms": [{"name": "lin01", "guest": "linux"}, {"name": "web01", "guest": "windows"}]}


def _set(items: object, state: str = "present", name: str = "set") -> dict:
    return {"name": name, "hyperv.integration.vm_kvp": {"name": ["lin01", "web01"], "items": items, "state": state}}


GUEST_INFO = {"name": "ginfo", "hyperv.integration.guest_kvp_info": {}}


@pytest.mark.needs_root
@pytest.mark.parametrize("connection", CONNECTIONS)
def test_host_items_reach_both_guests_and_guest_items_reach_the_host(
    tmp_path: Path, start_lab, connection: str
) -> None:
    lab = start_lab(LAB, connection=connection)
    before = lab.state()["host"]["counters"]["commands"]
    check = run_playbook(tmp_path, lab, [_set(ITEMS)], hosts="hyperv_hosts", check=True, name="check")
    assert check.rc == 0 and check.result("set")["result"]["changed"] is True, check.stdout
    assert lab.state()["counters"]["writes"] == 0

    first = run_playbook(tmp_path, lab, [_set(ITEMS)], hosts="hyperv_hosts", name="first")
    assert first.rc == 0, first.stdout
    assert lab.state()["host"]["counters"]["commands"] - before == 2  # one command per task: check, then set

    # The Linux guest reads them from the pool file the real hv_kvp_daemon wrote; the Windows guest
    # from its External key.
    guests = run_playbook(tmp_path, lab, [GUEST_INFO], hosts="linux_guests:windows_guests", name="guests")
    assert guests.rc == 0, guests.stdout
    for guest in ("lin01", "web01"):
        from_host = guests.result("ginfo", host=guest)["result"]["from_host"]
        assert {k: from_host[k] for k in ITEMS} == ITEMS, (guest, from_host)

    again = run_playbook(tmp_path, lab, [_set(ITEMS)], hosts="hyperv_hosts", name="again")
    assert again.rc == 0 and again.recap("hv01")["changed"] == 0, again.stdout

    gone = run_playbook(tmp_path, lab, [_set(["Quoted"], "absent")], hosts="hyperv_hosts", name="gone")
    assert gone.rc == 0, gone.stdout
    lin = run_playbook(tmp_path, lab, [GUEST_INFO], hosts="linux_guests", name="lin")
    left = lin.result("ginfo")["result"]["from_host"]
    assert "Quoted" not in left and left["AppConfigUrl"] == ITEMS["AppConfigUrl"] and left["Grüße"] == ITEMS["Grüße"]

    # The other way: the Linux guest publishes, the host reads it through the daemon, with the guest's
    # intrinsic items (its FQDN, its addresses).
    publish = {"name": "pub", "hyperv.integration.guest_kvp": {"items": {"AppRole": "web"}}}
    assert run_playbook(tmp_path, lab, [publish], hosts="linux_guests", name="pub").rc == 0
    info = run_playbook(
        tmp_path, lab, [{"name": "info", "hyperv.integration.vm_kvp_info": {"name": "lin01"}}], hosts="hyperv_hosts"
    )
    assert info.rc == 0, info.stdout
    vm = info.result("info")["result"]["vms"][0]
    assert vm["guest_items"]["AppRole"] == "web"
    assert vm["intrinsic_items"]["FullyQualifiedDomainName"]
    # The daemon's own answer (its getifaddrs walk), not the lab's: at least one address, each listed by it.
    assert vm["ip_addresses"], vm["intrinsic_items"]
    listed = vm["intrinsic_items"]["NetworkAddressIPv4"] + ";" + vm["intrinsic_items"]["NetworkAddressIPv6"]
    assert all(address in listed.split(";") for address in vm["ip_addresses"])


@pytest.mark.needs_root
def test_host_items_the_vm_already_has_reach_a_guest_that_starts(tmp_path: Path, start_lab) -> None:
    # Host items live in the VM's settings; a guest whose KVP channel comes up gets them without any
    # vm_kvp call (the Linux one in the pool 0 the real daemon writes).
    items = {"FromSettings": "ünïcödé ✓", "Second": "2"}
    lab = start_lab(
        {
            "host": {"name": "hv01"},
            "vms": [
                {"name": "lin01", "guest": "linux", "kvp_host_items": items},
                {"name": "web01", "guest": "windows", "kvp_host_items": items},
            ],
        }
    )
    guests = run_playbook(tmp_path, lab, [GUEST_INFO], hosts="linux_guests:windows_guests", name="guests")
    assert guests.rc == 0, guests.stdout
    for guest in ("lin01", "web01"):
        from_host = guests.result("ginfo", host=guest)["result"]["from_host"]
        assert {k: from_host.get(k) for k in items} == items, (guest, from_host)
