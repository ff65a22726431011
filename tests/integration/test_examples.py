"""Every playbook in examples/ runs, as it is, against a lab that fits it; a second run changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from harness import REPO, guest_info, run_playbook, run_playbook_file
from support.labspec import lab_spec, vm_spec
from support.public_names import IC_KEYS

EXAMPLES = REPO / "examples"
ALL_KEYS = IC_KEYS


def ic(state: dict, vm: str, key: str) -> dict:
    return state["vms"][vm]["integration_services"][key]


def run_twice(tmp_path: Path, lab, example: str, hosts: list[str], **kwargs) -> None:
    """Run the example; it must succeed. Run it again; it must report changed=0 on every host."""
    playbook = EXAMPLES / example
    first = run_playbook_file(tmp_path, lab, playbook, name="first", **kwargs)
    assert first.rc == 0, first.stdout + first.stderr
    again = run_playbook_file(tmp_path, lab, playbook, name="again", **kwargs)
    assert again.rc == 0, again.stdout + again.stderr
    for host in hosts:
        assert again.recap(host)["changed"] == 0, again.stdout
    return first


def test_every_example_has_a_test() -> None:
    tested = {"enable_guest_service_interface.yml", "onboard_linux_guest.yml", "hvsocket_application.yml"}
    tested.add("domain_controller_time.yml")
    tested |= {"kvp_config_handoff.yml", "kvp_guest_addresses.yml", "seed_file_to_guests.yml"}
    assert {p.name for p in EXAMPLES.glob("*.yml")} == tested


def test_enable_guest_service_interface_on_every_vm(tmp_path: Path, start_lab) -> None:
    # A German host (localized IC names), VMs in every state, a VM name that is no valid hostname.
    vms = [
        vm_spec("web01", "windows"),
        vm_spec("db01", "none", "Off"),
        vm_spec("Prüf'VM $(whoami)", "none", "Saved"),
        vm_spec("app01", integration_services={"guest_service_interface": True}),
    ]
    lab = start_lab(lab_spec(*vms, language="de-DE"))
    before = lab.state()
    assert [ic(before, vm["name"], "guest_service_interface")["enabled"] for vm in vms] == [False, False, False, True]

    first = run_twice(tmp_path, lab, "enable_guest_service_interface.yml", ["hv01"])
    assert first.recap("hv01")["changed"] == 1
    after = lab.state()
    assert all(ic(after, vm["name"], "guest_service_interface")["enabled"] for vm in vms)
    assert ic(after, "web01", "guest_service_interface")["name"] == "Gastdienstschnittstelle"
    # Nothing else was touched.
    for vm in vms:
        for key in ALL_KEYS[:-1]:
            assert ic(after, vm["name"], key)["enabled"] == ic(before, vm["name"], key)["enabled"]


@pytest.mark.needs_root
def test_onboard_linux_guest(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "language": "fr-FR"},
            "vms": [{"name": "lin01", "state": "Running", "guest": "linux", "integration_services": {"vss": False}}],
        }
    )
    run_twice(tmp_path, lab, "onboard_linux_guest.yml", ["lin01"])
    state = lab.state()
    for key in ALL_KEYS:
        assert ic(state, "lin01", key)["enabled"] is True, key
        assert ic(state, "lin01", key)["primary_status"] == "Ok", (key, ic(state, "lin01", key))
    info = guest_info(tmp_path, lab, "linux_guests")["lin01"]
    services = {item["key"]: item for item in info["integration_services"]}
    for key in ("key_value_pair_exchange", "vss", "guest_service_interface"):
        assert services[key]["offered"] is True
        assert services[key]["daemon"]["active"] is True, (key, services[key]["daemon"])


@pytest.mark.needs_root
def test_hvsocket_service_for_an_application_on_vsock_port_n(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "language": "en-US"},
            "vms": [
                {"name": "lin01", "state": "Running", "guest": "linux"},
                {"name": "win01", "state": "Running", "guest": "windows"},
            ],
        }
    )
    before = lab.state()["hvsocket_services"]
    guid = "00002711-facb-11e6-bd58-64006a7986d3"  # port 10001 = 0x2711
    assert not any(g.strip("{}").lower() == guid for g in before)
    first = run_twice(
        tmp_path,
        lab,
        "hvsocket_application.yml",
        ["lin01", "win01"],
        extra_vars={"app_vsock_port": 10001, "app_name": "Metrics agent"},
    )
    registry = lab.state()["hvsocket_services"]
    assert {g.strip("{}").lower(): n for g, n in registry.items()}[guid] == "Metrics agent"
    assert len(registry) == len(before) + 1
    shown = first.result(
        "Show the service GUID the application uses on Windows (hvsocket_service_ids, set by the role)"
    )
    assert guid in shown["result"]["msg"].lower(), shown
    linux = guest_info(tmp_path, lab, "linux_guests")["lin01"]
    assert linux["modules"]["hv_sock"] is True and linux["modules_at_boot"] == {"hv_sock": True}


def test_domain_controller_time_settings(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "language": "de-DE"},
            "vms": [
                {"name": "dc01", "state": "Running", "guest": "windows"},
                {
                    "name": "dc02",
                    "state": "Running",
                    "guest": "windows",
                    "integration_services": {"time_synchronization": False},
                },
                {"name": "web01", "state": "Running", "guest": "windows"},
            ],
        }
    )
    inventory = {"domain_controllers": {"hosts": {"dc01": {}, "dc02": {}}}}
    before = lab.state()
    assert before["vms"]["dc01"]["guest"]["time_provider"]["enabled"] == 1
    run_twice(tmp_path, lab, "domain_controller_time.yml", ["dc01", "dc02"], extra_inventory=inventory)
    state = lab.state()
    for dc in ("dc01", "dc02"):
        assert ic(state, dc, "time_synchronization")["enabled"] is True
        assert ic(state, dc, "time_synchronization")["primary_status"] == "Ok"
        assert state["vms"][dc]["guest"]["time_provider"]["enabled"] == 0
        assert state["vms"][dc]["guest"]["time_provider"]["w32time"]["host_samples_in_use"] is False
    info = guest_info(tmp_path, lab, "windows_guests")
    assert info["dc01"]["time_provider"] == {"vmic_time_provider_enabled": False}
    assert info["web01"]["time_provider"] == {"vmic_time_provider_enabled": True}  # not a domain controller
    assert state["vms"]["web01"]["guest"]["time_provider"] == before["vms"]["web01"]["guest"]["time_provider"]
    assert state["endpoints"]["web01"]["counters"]["writes"] == 0


@pytest.mark.needs_root
def test_kvp_config_handoff_and_guest_addresses(tmp_path: Path, start_lab) -> None:
    lab = start_lab(lab_spec(vm_spec("lin01", "linux"), vm_spec("web01", "windows")))
    url = "http://10.0.0.5/app.json?a=1&b='2'"
    first = run_twice(tmp_path, lab, "kvp_config_handoff.yml", ["lin01", "web01"], extra_vars={"app_config_url": url})
    assert first.recap("lin01")["failed"] == 0 and first.recap("web01")["failed"] == 0, first.stdout
    for guest in ("lin01", "web01"):
        assert first.result("Read what the host sent", host=guest)["result"]["from_host"]["AppConfigUrl"] == url
    addresses = run_twice(tmp_path, lab, "kvp_guest_addresses.yml", ["hv01"])
    shown = [r for r in addresses.results if r["task"] == "Show each running guest's FQDN and addresses"]
    messages = [item["msg"] for r in shown for item in r["result"].get("results", []) if "msg" in item]
    assert any(m.startswith("lin01: ") and m.split()[1] != "-" for m in messages), messages


@pytest.mark.needs_root
def test_seed_file_to_guests(tmp_path: Path, start_lab) -> None:
    # Guest Service Interface off on both (the default), a Linux guest with the real hv_fcopy_daemon and a
    # Windows guest double.
    lab = start_lab(lab_spec(vm_spec("lin01", "linux"), vm_spec("web01", "windows")))
    run_twice(tmp_path, lab, "seed_file_to_guests.yml", ["lin01", "web01"])
    seed = (EXAMPLES / "files" / "seed.conf").read_bytes()
    state = lab.state()
    assert state["vms"]["web01"]["guest"]["files"]["C:\\ProgramData\\Seed\\seed.conf"] == len(seed)
    assert state["host"]["files"] == {} and state["host"]["counters"]["put_files"] == 2  # first run only
    stat = {"name": "stat", "ansible.builtin.stat": {"path": "/etc/seed.conf", "checksum_algorithm": "sha256"}}
    run = run_playbook(tmp_path, lab, [stat], hosts="linux_guests", name="stat")
    assert run.result("stat")["result"]["stat"]["checksum"] == hashlib.sha256(seed).hexdigest()
