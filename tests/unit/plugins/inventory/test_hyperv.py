"""The hyperv inventory plugin for real (InventoryModule.parse with ansible's InventoryData and DataLoader)
against in-process labs over WinRM (pywinrm to the lab's listener): one PowerShell command per Hyper-V host
per refresh, hosts in parallel, variables, groups, Constructable options, filters, an unreachable host, the
cache. The Linux guest's addresses from the real hv_kvp_daemon: tests/integration/test_inventory_hyperv.py."""

from __future__ import annotations

import contextlib
import secrets
import socket
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from hvlab import labfile
from hvlab.server import Lab
from support.labspec import lab_spec, vm_spec

from ansible_collections.hyperv.integration.plugins.inventory import hyperv

ODD = "Prüf'VM $(whoami) 漢字"


NAME = "hyperv.integration.hyperv"
# What ansible's plugin loader does when it loads the plugin by name: its option definitions (from its
# DOCUMENTATION and the constructed and inventory_cache fragments) go to the config manager under that name.
inventory_loader._load_config_defs(NAME, hyperv, hyperv.__file__)


def new_plugin() -> hyperv.InventoryModule:
    """The plugin as the loader hands it out (the names it sets, by which options are looked up)."""
    plugin = hyperv.InventoryModule()
    plugin._load_name = NAME
    plugin._redirected_names = [NAME]
    return plugin


@pytest.fixture
def labs() -> t.Iterator[t.Callable[..., Lab]]:
    started: list[Lab] = []

    def start(spec: dict[str, t.Any]) -> Lab:
        lab = Lab(labfile.parse(spec), "lab-admin", secrets.token_urlsafe(12), linux_guest=None)
        lab.start()
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.stop()


def entry(lab: Lab, **extra: t.Any) -> dict[str, t.Any]:
    endpoint = lab.endpoints[lab.host.name]
    return {
        "name": lab.host.name,
        "host": "127.0.0.1",
        "port": endpoint.port,
        "user": endpoint.username,
        "password": endpoint.password,
        "transport": "basic",
        "scheme": "http",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse(tmp_path: Path, config: dict[str, t.Any], name: str = "lab.hyperv.yml") -> tuple[InventoryData, t.Any]:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"plugin": "hyperv.integration.hyperv", **config}, allow_unicode=True))
    plugin = new_plugin()
    inventory = InventoryData()
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, DataLoader(), str(path), cache=True)
    with contextlib.suppress(AttributeError):  # as ansible's InventoryManager after a parse: no cache configured
        plugin.update_cache_if_changed()
    return inventory, plugin


def hostvars(inventory: InventoryData, name: str) -> dict[str, t.Any]:
    return inventory.get_host(name).get_vars()


def members(inventory: InventoryData, group: str) -> list[str]:
    return sorted(host.name for host in inventory.groups[group].get_hosts())


def commands(lab: Lab) -> int:
    return int(lab.endpoints[lab.host.name].counters.snapshot()["commands"])


def test_two_hosts_one_command_each_and_an_unreachable_third_is_a_warning(
    tmp_path: Path, labs: t.Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    one = labs(lab_spec(vm_spec("web01", "windows"), vm_spec(ODD), vm_spec("off01", "windows", "Off"), host="hv01"))
    two = labs(lab_spec(vm_spec("db01", "windows"), host="hv02", language="de-DE"))
    gone = {"name": "hv03", "host": "127.0.0.1", "port": free_port(), "user": "x", "password": "y", "scheme": "http"}
    inventory, _plugin = parse(tmp_path, {"hyperv_hosts": [entry(one), entry(two), gone]})

    assert commands(one) == 1 and commands(two) == 1
    assert members(inventory, "hyperv_guests") == sorted(["web01", ODD, "off01", "db01"])
    assert members(inventory, "hyperv_hosts") == ["hv01", "hv02", "hv03"]
    assert members(inventory, "hyperv_host_hv01") == sorted(["web01", ODD, "off01"])
    assert members(inventory, "hyperv_state_off") == ["off01"]
    assert "Hyper-V host hv03 could not be read" in capsys.readouterr().err

    web = hostvars(inventory, "web01")
    assert web["hyperv_host"] == "hv01" and web["hyperv_vm_name"] == "web01" and web["hyperv_vm_state"] == "Running"
    assert web["hyperv_vm_id"] == next(vm.id for vm in one.host.vms if vm.name == "web01")
    assert web["hyperv_heartbeat"] == "OkApplicationsHealthy"
    assert web["hyperv_integration_services"]["guest_service_interface"] == {"enabled": False, "primary_status": "Ok"}
    assert web["hyperv_ip_addresses"] == ["192.0.2.10", "2001:db8::10"] and web["ansible_host"] == "192.0.2.10"
    assert web["hyperv_kvp_intrinsic"]["FullyQualifiedDomainName"] == "win-guest.lab.test"
    # The German host's names do not matter: ICs by GUID.
    assert hostvars(inventory, "db01")["hyperv_integration_services"]["heartbeat"]["enabled"] is True
    odd = hostvars(inventory, ODD)
    assert odd["hyperv_vm_name"] == ODD and odd["hyperv_kvp_intrinsic"] is None and "ansible_host" not in odd
    # The Hyper-V hosts come with the connection variables given.
    hv01 = hostvars(inventory, "hv01")
    assert hv01["ansible_connection"] == "winrm" and hv01["ansible_port"] == entry(one)["port"]
    assert hv01["ansible_winrm_transport"] == "basic" and hv01["ansible_winrm_scheme"] == "http"


def test_a_psrp_entry_reads_its_host_over_powershell_remoting_and_says_so_in_its_variables(
    tmp_path: Path, labs: t.Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = labs(lab_spec(vm_spec("web01", "windows"), vm_spec(ODD), host="hv01", language="de-DE"))
    psrp = {k: v for k, v in entry(lab).items() if k not in ("transport", "scheme")}
    psrp.update(connection="psrp", auth="basic", protocol="http", cert_validation="ignore", message_encryption="never")
    gone = dict(psrp, name="hv09", port=free_port())  # nothing listens there
    inventory, _plugin = parse(tmp_path, {"hyperv_hosts": [psrp, gone]})
    assert commands(lab) == 1
    assert "Hyper-V host hv09 could not be read: PSRP http://127.0.0.1:" in capsys.readouterr().err
    assert lab.endpoints["hv01"].recent[-1]["transport"] == "psrp"
    assert members(inventory, "hyperv_guests") == sorted(["web01", ODD])
    assert hostvars(inventory, ODD)["hyperv_vm_name"] == ODD
    hv01 = hostvars(inventory, "hv01")
    assert hv01["ansible_connection"] == "psrp" and hv01["ansible_psrp_auth"] == "basic"
    assert hv01["ansible_psrp_protocol"] == "http" and hv01["ansible_psrp_message_encryption"] == "never"
    assert not any(key.startswith("ansible_winrm_") for key in hv01)


def test_a_vm_whose_kvp_component_cannot_be_read_keeps_its_services_and_is_named_in_a_warning(
    tmp_path: Path, labs: t.Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    lab = labs(
        lab_spec(
            vm_spec("web01", "windows"),
            vm_spec("web02", "windows"),
            faults=[{"type": "kvp_read_error", "vm": "web01"}],
        )
    )
    inventory, _plugin = parse(tmp_path, {"hyperv_hosts": [entry(lab)], "filters": {"states": ["Running"]}})
    assert members(inventory, "hyperv_guests") == ["web01", "web02"]  # the state was read: the filter keeps it
    web01 = hostvars(inventory, "web01")
    assert web01["hyperv_vm_state"] == "Running" and web01["hyperv_heartbeat"] == "OkApplicationsHealthy"
    assert web01["hyperv_integration_services"]["key_value_pair_exchange"]["enabled"] is True
    assert web01["hyperv_kvp_intrinsic"] is None and "ansible_host" not in web01
    assert hostvars(inventory, "web02")["ansible_host"] == "192.0.2.10"
    err = capsys.readouterr().err
    assert (
        "Hyper-V host hv01, VM 'web01': its Key-Value Pair Exchange items could not be read" in err
        and "Generic failure" in err
    )
    assert "web02" not in err


def test_an_unreachable_host_fails_the_inventory_when_strict(tmp_path: Path) -> None:
    gone = {"name": "hv03", "host": "127.0.0.1", "port": free_port(), "user": "x", "password": "y", "scheme": "http"}
    with pytest.raises(AnsibleParserError, match="Hyper-V host hv03 could not be read"):
        parse(tmp_path, {"hyperv_hosts": [gone], "strict": True})


def test_hostname_ip_preference_filters_and_constructed_options(
    tmp_path: Path, labs: t.Callable[..., Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = labs(
        lab_spec(
            vm_spec("web01", "windows"),
            vm_spec("web02", "linux"),
            vm_spec("web03"),  # nothing in it answers: no FQDN, no heartbeat
            vm_spec("off01", "windows", "Off"),
        )
    )
    monkeypatch.setenv("HYPERV_TEST_PASSWORD", lab.endpoints["hv01"].password)
    host = entry(lab, password=None, password_env="HYPERV_TEST_PASSWORD")
    config = {
        "hyperv_hosts": [host],
        "hostname": "fqdn",
        "ip_preference": "ipv6",
        "filters": {"states": ["running"], "names": ["WEB*"]},
        "compose": {
            "os_family": "(hyperv_kvp_intrinsic or {}).get('OSName', 'none').split(' ')[0]",
            "named": "inventory_hostname",
        },
        "groups": {"healthy": "hyperv_heartbeat == 'OkApplicationsHealthy'"},
        "keyed_groups": [{"key": "hyperv_vm_state", "prefix": "state"}],
    }
    inventory, _plugin = parse(tmp_path, config)
    # off01 filtered out; web03 reports no FQDN, so its VM name names it.
    assert members(inventory, "hyperv_guests") == ["linux-guest.lab.test", "web03", "win-guest.lab.test"]
    win = hostvars(inventory, "win-guest.lab.test")
    assert win["ansible_host"] == "2001:db8::10" and win["os_family"] == "Windows" and win["hyperv_vm_name"] == "web01"
    assert win["named"] == "win-guest.lab.test"  # compose sees the host's own variables (inventory_hostname)
    assert members(inventory, "healthy") == ["linux-guest.lab.test", "win-guest.lab.test"]
    assert members(inventory, "state_Running") == ["linux-guest.lab.test", "web03", "win-guest.lab.test"]


def test_the_cache_answers_a_second_parse_without_asking_the_host(tmp_path: Path, labs: t.Callable[..., Lab]) -> None:
    lab = labs(lab_spec(vm_spec("web01", "windows")))
    cache = {"cache": True, "cache_plugin": "jsonfile", "cache_connection": str(tmp_path / "cache")}
    parse(tmp_path, {"hyperv_hosts": [entry(lab)], **cache})
    inventory, _plugin = parse(tmp_path, {"hyperv_hosts": [entry(lab)], **cache})
    assert commands(lab) == 1 and members(inventory, "hyperv_guests") == ["web01"]


def test_a_file_that_is_not_named_hyperv_yml_is_not_this_plugins(tmp_path: Path) -> None:
    path = tmp_path / "lab.yml"
    path.write_text("plugin: hyperv.integration.hyperv\n")
    assert not new_plugin().verify_file(str(path))


def test_two_entries_of_one_name_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AnsibleParserError, match="needs a name of its own"):
        parse(tmp_path, {"hyperv_hosts": [{"name": "hv01", "user": "a"}, {"name": "hv01", "user": "b"}]})


def test_a_vault_encrypted_password_in_the_file_is_used(
    tmp_path: Path, labs: t.Callable[..., Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ansible.parsing.vault import VaultLib, VaultSecret, VaultSecretsContext

    lab = labs(lab_spec(vm_spec("web01", "windows")))
    secret = [("default", VaultSecret(b"vault-pass"))]
    encrypted = VaultLib(secret).encrypt(lab.endpoints["hv01"].password).decode()
    host = {k: v for k, v in entry(lab).items() if k != "password"}
    text = yaml.safe_dump({"plugin": NAME, "hyperv_hosts": [host]})
    indented = "\n".join("      " + line for line in encrypted.splitlines())
    text = text.replace("- host:", "- password: !vault |\n%s\n  host:" % indented, 1)
    path = tmp_path / "vault.hyperv.yml"
    path.write_text(text)
    # What ansible's CLI sets up from --vault-password-file, for this test only.
    monkeypatch.setattr(VaultSecretsContext, "_current", VaultSecretsContext(secret))
    loader = DataLoader()
    loader.set_vault_secrets(secret)
    inventory = InventoryData()
    new_plugin().parse(inventory, loader, str(path), cache=False)
    assert members(inventory, "hyperv_guests") == ["web01"] and commands(lab) == 1


def test_what_a_host_reports_is_never_templated_and_a_vm_named_like_a_host_keeps_apart(
    tmp_path: Path, labs: t.Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    from ansible.template import Templar, trust_as_template

    lab = labs(lab_spec(vm_spec("{{ 7 * 6 }}"), vm_spec("hv01", "windows")))
    inventory, _plugin = parse(tmp_path, {"hyperv_hosts": [entry(lab)]})
    variables = hostvars(inventory, "{{ 7 * 6 }}")
    # A playbook's own template (trusted) that uses the variable gets the name back, not 42.
    assert (
        Templar(DataLoader(), variables=variables).template(trust_as_template("{{ hyperv_vm_name }}")) == "{{ 7 * 6 }}"
    )
    # The VM called hv01 is not merged into the Hyper-V host hv01: it is listed by its id, with a warning.
    vm_id = next(vm.id for vm in lab.host.vms if vm.name == "hv01")
    assert hostvars(inventory, vm_id)["hyperv_vm_name"] == "hv01"
    assert "ansible_winrm_transport" not in hostvars(inventory, vm_id)
    assert hostvars(inventory, "hv01")["ansible_host"] == "127.0.0.1"
    assert "has the inventory name of a host of the Hyper-V hosts" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"port": "abc"}, "hyperv_hosts[0] (hv01): port must be a TCP port number"),
        ({"usr": "x"}, "unknown key(s) ['usr']"),
        ({"scheme": "ftp"}, "scheme must be one of http, https"),
        ({"user": ""}, "user is required"),
        ({"connection": "ssh"}, "connection must be one of winrm, psrp"),
        ({"auth": "basic"}, "(hv01): auth is not an option of connection winrm; its own are transport, scheme"),
        (
            {"connection": "psrp", "transport": "basic"},
            "scheme, transport are not an option of connection psrp; its own are auth, protocol",
        ),
    ],
)
def test_a_bad_entry_is_refused_naming_it(tmp_path: Path, bad: dict[str, t.Any], says: str) -> None:
    good = {"name": "hv01", "host": "127.0.0.1", "user": "a", "password": "b", "scheme": "http"}
    with pytest.raises(AnsibleParserError) as raised:
        parse(tmp_path, {"hyperv_hosts": [dict(good, **bad)]})
    assert says in str(raised.value)


def test_the_cache_keeps_answers_not_failures(tmp_path: Path, labs: t.Callable[..., Lab]) -> None:
    lab = labs(lab_spec(vm_spec("web01", "windows")))
    port = free_port()
    gone = {"name": "hv02", "host": "127.0.0.1", "port": port, "user": "x", "password": "y", "scheme": "http"}
    cache = {"cache": True, "cache_plugin": "jsonfile", "cache_connection": str(tmp_path / "cache")}
    parse(tmp_path, {"hyperv_hosts": [entry(lab), gone], **cache})
    # hv02 is back (another lab on that port would be; here: it is asked again, and still fails).
    inventory, _plugin = parse(tmp_path, {"hyperv_hosts": [entry(lab), gone], **cache})
    assert commands(lab) == 1 and members(inventory, "hyperv_guests") == ["web01"]
    refreshed, _plugin = parse(tmp_path, {"hyperv_hosts": [entry(lab)], **cache})  # cache=True, from the file
    assert commands(lab) == 1 and members(refreshed, "hyperv_guests") == ["web01"]
