"""The hyperv inventory plugin end to end: ansible-inventory and ansible-playbook with a hyperv.yml file read
by ansible's own auto plugin, two lab hosts asked in one refresh (one PowerShell command each), an
unreachable third one, the Linux guest's addresses from the real hv_kvp_daemon, and the integration_services
role run on guests whose hyperv_host and hyperv_vm_name nobody wrote."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from support.playbook import BIN, ansible_env, ansible_playbook, plain_values

ODD = "Prüf'VM $(whoami) 漢字"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hyperv_host(lab) -> dict:
    """The lab host's entry for hyperv_hosts, from the connection variables of the lab's own inventory."""
    inventory = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))
    variables = inventory["all"]["children"]["hyperv_hosts"]["hosts"][lab.host]
    entry = {
        "name": lab.host,
        "connection": variables["ansible_connection"],
        "host": variables["ansible_host"],
        "port": variables["ansible_port"],
        "user": variables["ansible_user"],
        "password": variables["ansible_password"],
    }
    if entry["connection"] == "psrp":  # psrp's own option names
        return dict(
            entry,
            auth=variables["ansible_psrp_auth"],
            protocol=variables["ansible_psrp_protocol"],
            cert_validation="ignore",
            message_encryption=variables["ansible_psrp_message_encryption"],
        )
    return dict(
        entry,
        transport=variables["ansible_winrm_transport"],
        scheme=variables["ansible_winrm_scheme"],
        server_cert_validation="ignore",
    )


def _guest_connections(*labs) -> dict:
    """A static inventory of what a user keeps: each guest's connection variables, nothing about Hyper-V."""
    hosts: dict[str, dict] = {}
    for lab in labs:
        inventory = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))
        for group in ("windows_guests", "linux_guests"):
            members = inventory["all"]["children"]["guests"]["children"][group].get("hosts") or {}
            for name, variables in members.items():
                hosts[name] = {k: v for k, v in variables.items() if k.startswith("ansible_") and k != "ansible_host"}
                hosts[name]["ansible_host"] = variables["ansible_host"]
    return {"all": {"children": {"guests": {"hosts": hosts}}}}


def _ansible_inventory(source: Path) -> subprocess.CompletedProcess[str]:
    """ansible-inventory -i SOURCE --list, with this checkout's collection (the tests' ansible.cfg)."""
    return subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list"],
        capture_output=True,
        text=True,
        env=ansible_env(None),
        timeout=300,
        check=False,
    )


def _commands(lab) -> int:
    return int(lab.state()["host"]["counters"]["commands"])


@pytest.mark.needs_root
def test_ansible_inventory_lists_both_hosts_guests_and_the_role_runs_on_them(tmp_path: Path, start_lab) -> None:
    one = start_lab(
        {
            "host": {"name": "hv01"},
            "vms": [{"name": "lin01", "guest": "linux"}, {"name": "web01", "guest": "windows"}, {"name": ODD}],
        },
        "one",
    )
    # hv02 over PowerShell Remoting: the plugin's own pypsrp session, then the role's host tasks over psrp.
    two = start_lab(
        {
            "host": {"name": "hv02", "language": "de-DE", "connection": "psrp"},
            "vms": [{"name": "db01", "guest": "windows"}],
        },
        "two",
    )
    gone = {"name": "hv03", "host": "127.0.0.1", "port": _free_port(), "user": "x", "password": "y", "scheme": "http"}
    source = tmp_path / "lab.hyperv.yml"
    # hv02 by another name of the same loopback address: ansible keeps a task's connection across the items of
    # a delegated loop while the address stays the same (TaskExecutor compares remote_addr only, not the port),
    # so two lab hosts both at 127.0.0.1 would both be reached at the first one's port. Real hosts differ.
    config = {
        "plugin": "hyperv.integration.hyperv",
        "hyperv_hosts": [_hyperv_host(one), dict(_hyperv_host(two), host="localhost"), gone],
    }
    source.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")

    before = (_commands(one), _commands(two))
    proc = _ansible_inventory(source)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (_commands(one) - before[0], _commands(two) - before[1]) == (1, 1)  # one PowerShell process per host
    assert "Hyper-V host hv03 could not be read" in proc.stderr, proc.stderr
    listed = json.loads(proc.stdout)
    hostvars = plain_values(listed["_meta"]["hostvars"])
    assert sorted(listed["hyperv_guests"]["hosts"]) == sorted(["lin01", "web01", ODD, "db01"])
    assert sorted(listed["hyperv_hosts"]["hosts"]) == ["hv01", "hv02", "hv03"]
    assert hostvars[ODD]["hyperv_vm_name"] == ODD and hostvars[ODD]["hyperv_host"] == "hv01"
    assert hostvars["db01"]["hyperv_host"] == "hv02"
    assert hostvars["hv02"]["ansible_connection"] == "psrp" and hostvars["hv01"]["ansible_connection"] == "winrm"
    # The Linux guest's addresses are the real daemon's answer (its getifaddrs walk), not the lab's.
    lin = hostvars["lin01"]
    assert lin["hyperv_ip_addresses"] and "192.0.2.20" not in lin["hyperv_ip_addresses"], lin
    assert lin["ansible_host"] in lin["hyperv_ip_addresses"]
    assert lin["hyperv_kvp_intrinsic"]["FullyQualifiedDomainName"], lin
    assert lin["hyperv_integration_services"]["key_value_pair_exchange"]["primary_status"] == "Ok"

    # The role, on guests that only the hyperv.yml source tells about Hyper-V; the static source keeps the
    # guests' connection variables (the lab's guests are reached on 127.0.0.1, not at their KVP address).
    static = tmp_path / "guests.yml"
    static.write_text(yaml.safe_dump(_guest_connections(one, two), allow_unicode=True), encoding="utf-8")
    playbook = tmp_path / "role.yml"
    role = {"name": "role", "ansible.builtin.include_role": {"name": "hyperv.integration.integration_services"}}
    play = {
        "name": "integration services on the guests the inventory plugin lists",
        "hosts": "hyperv_guests:&guests",
        "gather_facts": False,
        "vars": {"hyperv_integration_services": {"guest_service_interface": True}},
        "tasks": [role],
    }
    playbook.write_text(yaml.safe_dump([play], allow_unicode=True, sort_keys=False), encoding="utf-8")
    # A directory of two sources, read in name order: the connection file last, so that its ansible_host
    # (the lab's 127.0.0.1 and port) wins over the guest's KVP address.
    inventories = tmp_path / "inventories"
    inventories.mkdir()
    (inventories / "1-lab.hyperv.yml").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (inventories / "2-guests.yml").write_text(static.read_text(encoding="utf-8"), encoding="utf-8")
    run = ansible_playbook(tmp_path, inventories, playbook, name="role")
    assert run.rc == 0, run.stdout[-6000:] + run.stderr[-3000:]
    for lab, vm in ((one, "lin01"), (one, "web01"), (two, "db01")):
        assert lab.state()["vms"][vm]["integration_services"]["guest_service_interface"]["enabled"] is True, vm


def test_a_host_that_does_not_answer_is_a_warning_within_its_connection_timeout(tmp_path: Path) -> None:
    # Here, not in the unit tier: it waits its timeout (1 s) and the reply's 10 s more, as ansible's winrm does.
    import threading
    import time

    server = socket.socket()  # a port that accepts connections and never answers: a hung WinRM service
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list = []
    threading.Thread(target=lambda: accepted.extend(server.accept() for attempt in range(4)), daemon=True).start()
    hung = {
        "name": "hv09",
        "host": "127.0.0.1",
        "port": int(server.getsockname()[1]),
        "user": "x",
        "password": "y",
        "scheme": "http",
        "transport": "basic",
        "connection_timeout": 1,
    }
    source = tmp_path / "hung.hyperv.yml"
    source.write_text(yaml.safe_dump({"plugin": "hyperv.integration.hyperv", "hyperv_hosts": [hung]}), encoding="utf-8")
    start = time.monotonic()
    try:
        proc = _ansible_inventory(source)
    finally:
        server.close()
    assert proc.returncode == 0 and time.monotonic() - start < 40, proc.stderr
    assert "Hyper-V host hv09 could not be read" in proc.stderr, proc.stderr
    listed = plain_values(json.loads(proc.stdout))
    assert listed["_meta"]["hostvars"]["hv09"]["ansible_winrm_connection_timeout"] == 1
