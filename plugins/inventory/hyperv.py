# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: hyperv
short_description: The VMs of Hyper-V hosts as inventory hosts, read from the hosts themselves
version_added: 0.1.0
description:
  - Lists every VM of one or more Hyper-V hosts as an inventory host, with the variables the collection's roles
    need (C(hyperv_host), C(hyperv_vm_name)) and what the host knows of it - its state, heartbeat, integration
    services and the addresses its guest reports through Key-Value Pair Exchange. No hand-written guest list.
  - Each Hyper-V host is asked once per refresh, in one PowerShell process, over a WinRM or PowerShell Remoting
    (PSRP) session the plugin opens itself (an inventory plugin has no task connection); the hosts are asked in
    parallel.
  - A host that cannot be reached, or that answers an error, is a warning naming it and the other hosts are
    still listed; with O(strict=true) it fails the inventory (as do errors in O(compose), O(groups) and
    O(keyed_groups)).
  - What the hosts and guests report (VM names, Key-Value Pair Exchange items) is data, never templated.
  - With the cache on, answers are kept and failures are not; a host that could not be read, or one added to the
    file since, is asked at the next refresh.
  - The configuration file's name ends in C(hyperv.yml) or C(hyperv.yaml).
author:
  - hyperv.integration contributors (@hyperv-integration)
requirements:
  - pywinrm for C(winrm), pypsrp for C(psrp) (the controller's C(requirements.txt) of this collection)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: This plugin's name.
    required: true
    choices: [hyperv.integration.hyperv]
    type: str
  hyperv_hosts:
    description:
      - The Hyper-V hosts to read, each added to the group C(hyperv_hosts) with the connection variables given
        here, so that host tasks can reach it (delegated to C(hyperv_host), as the collection's roles do).
      - Each entry is checked (unknown keys, port, choices) and a wrong one fails the source naming it. Text values
        may be templates (C("{{ lookup('env', 'HYPERV_USER') }}")), rendered as the file is read.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Its inventory name (the value of C(hyperv_host) on its VMs).
        type: str
        required: true
      connection:
        description:
          - How to reach it - a WinRM session (pywinrm) or a PowerShell Remoting session (pypsrp), opened by the
            plugin itself; the same connection goes into the host's variables for host tasks.
          - Each connection takes its own option names, as ansible.builtin.winrm and ansible.builtin.psrp name them
            (O(hyperv_hosts[].transport), O(hyperv_hosts[].scheme), O(hyperv_hosts[].server_cert_validation),
            O(hyperv_hosts[].ca_trust_path) for C(winrm); O(hyperv_hosts[].auth), O(hyperv_hosts[].protocol),
            O(hyperv_hosts[].cert_validation), O(hyperv_hosts[].ca_cert) for C(psrp)); an option of the other
            connection is an error.
        type: str
        choices: [winrm, psrp]
        default: winrm
      host:
        description: Its address; O(hyperv_hosts[].name) when omitted.
        type: str
      port:
        description: The WinRM port; 5986 for C(https), 5985 for C(http) when omitted (the scheme or protocol).
        type: int
      user:
        description: The account (a member of Hyper-V Administrators, or an administrator).
        type: str
        required: true
      password:
        description:
          - Its password. A vault-encrypted value (C(!vault)) works; so does O(hyperv_hosts[].password_env).
        type: str
      password_env:
        description:
          - The name of an environment variable that holds the password, when O(hyperv_hosts[].password) is not
            given.
          - A password read this way is not put into the inventory, where C(ansible-inventory --host) would show
            it. Give the host's C(ansible_password) for host tasks as for any other host, for example from a lookup
            in C(group_vars/hyperv_hosts.yml).
        type: str
      transport:
        description:
          - As C(ansible_winrm_transport) of ansible.builtin.winrm. Certificate authentication is not offered - it
            needs a client certificate and key, which the plugin has no options for.
        type: str
        choices: [basic, ntlm, kerberos, credssp, plaintext, ssl]
        default: ntlm
      scheme:
        description: As C(ansible_winrm_scheme).
        type: str
        choices: [http, https]
        default: https
      server_cert_validation:
        description: As C(ansible_winrm_server_cert_validation).
        type: str
        choices: [validate, ignore]
        default: validate
      ca_trust_path:
        description: As C(ansible_winrm_ca_trust_path), the CA certificates (file or directory) to validate with.
        type: path
      auth:
        description:
          - As C(ansible_psrp_auth) of ansible.builtin.psrp (C(psrp) only). Certificate authentication is not offered,
            as for O(hyperv_hosts[].transport).
        type: str
        choices: [basic, negotiate, kerberos, ntlm, credssp]
        default: negotiate
      protocol:
        description: As C(ansible_psrp_protocol) (C(psrp) only).
        type: str
        choices: [http, https]
        default: https
      cert_validation:
        description: As C(ansible_psrp_cert_validation) (C(psrp) only).
        type: str
        choices: [validate, ignore]
        default: validate
      ca_cert:
        description: As C(ansible_psrp_ca_cert), the CA certificates (file or directory) to validate with (C(psrp)).
        type: path
      message_encryption:
        description:
          - As C(ansible_psrp_message_encryption) (C(psrp) only) - C(auto) encrypts the messages over C(http) with
            an auth that can (negotiate, kerberos, ntlm, credssp); C(basic) over C(http) needs C(never).
        type: str
        choices: [auto, always, never]
        default: auto
      connection_timeout:
        description:
          - As C(ansible_winrm_connection_timeout) or C(ansible_psrp_connection_timeout) - seconds a WS-Management
            operation may take; a reply is waited for 10 s more. A host that does not answer in that time is a
            warning, like one that cannot be reached.
          - The default is each connection plugin's own, 20 for C(winrm) and 30 for C(psrp).
        type: int
  hostname:
    description:
      - What names each VM's inventory host - its VM name, its VM id, or the guest's fully qualified domain name
        (reported through Key-Value Pair Exchange; a VM whose guest reports none is named by its VM name).
      - Two VMs of one name (on two hosts) get their VM id as the second one's name, with a warning.
    type: str
    choices: [name, id, fqdn]
    default: name
  ip_preference:
    description:
      - Which address becomes C(ansible_host) - the first one the guest reports of this family, else the first of
        the other; loopback, link-local, unspecified and multicast addresses are never used. O(compose) may set
        C(ansible_host) instead.
    type: str
    choices: [ipv4, ipv6]
    default: ipv4
  filters:
    description: Which VMs become inventory hosts.
    type: dict
    default: {}
    suboptions:
      states:
        description: VM states to keep (as Hyper-V names them, ignoring case, e.g. C(Running)); all when omitted.
        type: list
        elements: str
      names:
        description: VM name patterns to keep (shell-style, ignoring case, e.g. C(web*)); all when omitted.
        type: list
        elements: str
"""

EXAMPLES = r"""
# hyperv.yml: the guests of two Hyper-V hosts, their password from the environment
plugin: hyperv.integration.hyperv
hyperv_hosts:
  - name: hv01
    host: hv01.example.test
    user: EXAMPLE\ansible
    password_env: HYPERV_PASSWORD
  - name: hv02
    host: hv02.example.test
    user: EXAMPLE\ansible
    password: !vault |
      $ANSIBLE_VAULT;1.1;AES256
      6138...

---
# Over PowerShell Remoting (pypsrp), Kerberos over HTTPS with the site's CA; host tasks use psrp too
plugin: hyperv.integration.hyperv
hyperv_hosts:
  - name: hv03
    host: hv03.example.test
    connection: psrp
    auth: kerberos
    protocol: https
    ca_cert: /etc/pki/site-ca.pem
    user: ansible@EXAMPLE.TEST
    password_env: HYPERV_PASSWORD

---
# Only running VMs, a group per guest OS family, the FQDN as the inventory name
plugin: hyperv.integration.hyperv
hyperv_hosts:
  - {name: hv01, user: ansible, password_env: HYPERV_PASSWORD}
hostname: fqdn
filters:
  states: [Running]
keyed_groups:
  - key: hyperv_kvp_intrinsic.OSName | default('unknown') | regex_replace(' .*', '')
    prefix: os
groups:
  no_heartbeat: hyperv_heartbeat not in ['OkApplicationsHealthy', 'OkApplicationsUnknown']
compose:
  ansible_connection: "'winrm' if (hyperv_kvp_intrinsic.OSPlatformId | default('')) == '2' else 'ssh'"

---
# Cached for an hour: a refresh asks every host again
plugin: hyperv.integration.hyperv
hyperv_hosts:
  - {name: hv01, user: ansible, password_env: HYPERV_PASSWORD, scheme: http, transport: kerberos}
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/hyperv-inventory
cache_timeout: 3600
"""

import os
import typing as t
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_key
from ansible_collections.hyperv.integration.plugins.plugin_utils import (
    _inventory_hosts,
    _powershell,
    _psrp_call,
    _winrm_call,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params

OPERATION = "vm_inventory"
MAX_PARALLEL = 8
# Each connection's own option names, as ansible.builtin.winrm and ansible.builtin.psrp name them.
CONNECTION_KEYS = {
    "winrm": ("transport", "scheme", "server_cert_validation", "ca_trust_path"),
    "psrp": ("auth", "protocol", "cert_validation", "ca_cert", "message_encryption"),
}
ENTRY_KEYS = (
    "name", "connection", "host", "port", "user", "password", "password_env", "connection_timeout",
    *CONNECTION_KEYS["winrm"], *CONNECTION_KEYS["psrp"],
)  # fmt: skip
ENTRY_CHOICES = {
    "connection": tuple(CONNECTION_KEYS),
    "transport": ("basic", "ntlm", "kerberos", "credssp", "plaintext", "ssl"),
    "scheme": ("http", "https"),
    "server_cert_validation": ("validate", "ignore"),
    "auth": ("basic", "negotiate", "kerberos", "ntlm", "credssp"),
    "protocol": ("http", "https"),
    "cert_validation": ("validate", "ignore"),
    "message_encryption": ("auto", "always", "never"),
}


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "hyperv.integration.hyperv"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("hyperv.yml", "hyperv.yaml"))

    def parse(self, inventory: t.Any, loader: t.Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        hosts = [
            self._checked_entry(path, index, entry) for index, entry in enumerate(self.get_option("hyperv_hosts") or [])
        ]
        if not hosts:
            raise AnsibleParserError("%s: hyperv_hosts must list at least one Hyper-V host" % path)
        names = [entry["name"] for entry in hosts]
        if len(set(names)) != len(names):
            raise AnsibleParserError("%s: every entry of hyperv_hosts needs a name of its own, got %r" % (path, names))

        # Only answers are cached, never failures: a host that could not be read is asked again at the next
        # refresh, and so is a host added to the file since.
        cache_key = self.get_cache_key(path)
        cached: dict[str, t.Any] = {}
        if self.get_option("cache") and cache:
            try:
                cached = dict(self._cache[cache_key])
            except KeyError:
                cached = {}
        answers = {name: cached[name] for name in names if name in cached}
        missing = [entry for entry in hosts if entry["name"] not in answers]
        if missing:
            answers.update(self._ask_all(missing))
        if self.get_option("cache"):
            self._cache[cache_key] = {name: answer for name, answer in answers.items() if "error" not in answer}
        self._populate(hosts, answers)

    def _checked_entry(self, path: str, index: int, entry: t.Any) -> dict[str, t.Any]:
        """One hyperv_hosts entry, its keys and types checked (ansible does not check suboptions of an
        inventory plugin), its text values templated as ansible's own plugins template theirs."""
        where = "%s: hyperv_hosts[%d]" % (path, index)
        if not isinstance(entry, dict):
            raise AnsibleParserError("%s must be a mapping, got %r" % (where, entry))
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise AnsibleParserError("%s: unknown key(s) %s; the keys are %s" % (where, unknown, ", ".join(ENTRY_KEYS)))
        checked: dict[str, t.Any] = {}
        for key, value in entry.items():
            if isinstance(value, str) and self.templar.is_possibly_template(value):
                value = self.templar.template(value)
            checked[key] = value
        for key in ("name", "user"):
            if not isinstance(checked.get(key), str) or not checked[key].strip():
                raise AnsibleParserError("%s: %s is required (a non-empty string)" % (where, key))
        port = checked.get("port")
        if port is not None and (isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536):
            raise AnsibleParserError("%s (%s): port must be a TCP port number, got %r" % (where, checked["name"], port))
        timeout = checked.get("connection_timeout")
        if timeout is not None and (isinstance(timeout, bool) or not str(timeout).isdigit() or int(timeout) < 1):
            raise AnsibleParserError(
                "%s (%s): connection_timeout must be a number of seconds, got %r" % (where, checked["name"], timeout)
            )
        for key, choices in ENTRY_CHOICES.items():
            if checked.get(key) is not None and checked[key] not in choices:
                raise AnsibleParserError(
                    "%s (%s): %s must be one of %s, got %r"
                    % (where, checked["name"], key, ", ".join(choices), checked[key])
                )
        connection = checked.setdefault("connection", "winrm")
        foreign = sorted(
            key for other, keys in CONNECTION_KEYS.items() if other != connection for key in keys if key in checked
        )
        if foreign:
            raise AnsibleParserError(
                "%s (%s): %s %s not an option of connection %s; its own are %s"
                % (
                    where,
                    checked["name"],
                    ", ".join(foreign),
                    "is" if len(foreign) == 1 else "are",
                    connection,
                    ", ".join(CONNECTION_KEYS[connection]),
                )
            )
        return checked

    # -- asking the hosts ---------------------------------------------------------------------------------
    def _ask_all(self, hosts: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        """Host name -> {"vms": [...]} or {"error": message}: every host asked at once."""
        params = build_params(OPERATION, kvp_guid=by_key("key_value_pair_exchange").host_guid)
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(hosts))) as pool:
            futures = {entry["name"]: pool.submit(self._ask, entry, params) for entry in hosts}
        return {name: future.result() for name, future in futures.items()}

    def _ask(self, entry: dict[str, t.Any], params: dict[str, t.Any]) -> dict[str, t.Any]:
        try:
            target = self._target(entry)
            if isinstance(target, _psrp_call.PsrpTarget):
                result = _psrp_call.call(target, _powershell.HOST_LIBRARY, OPERATION, params)
            else:
                result = _winrm_call.call(target, _powershell.HOST_LIBRARY, OPERATION, params)
        except (_powershell.PowerShellCallError, _powershell.UnsupportedHostError) as exc:
            return {"error": str(exc)}
        except _powershell.HostOperationError as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            return {"error": "the host answered an error: %s" % (error.get("message") or exc)}
        except Exception as exc:  # anything else in this thread: this host only, the others are still listed
            return {"error": "%s: %s" % (type(exc).__name__, exc)}
        return {
            "vms": result.get("vms") or [],
            "list_errors": [e.get("message") for e in result.get("vm_list_errors") or []],
        }

    @staticmethod
    def _password(entry: dict[str, t.Any]) -> str | None:
        if entry.get("password") is not None:
            return str(entry["password"])
        if entry.get("password_env"):
            return os.environ.get(str(entry["password_env"]))
        return None

    def _target(self, entry: dict[str, t.Any]) -> _winrm_call.WinRMTarget | _psrp_call.PsrpTarget:
        if entry.get("connection") == "psrp":
            protocol = entry.get("protocol") or "https"
            return _psrp_call.PsrpTarget(
                host=str(entry.get("host") or entry["name"]),
                port=int(entry.get("port") or (5986 if protocol == "https" else 5985)),
                user=str(entry.get("user") or ""),
                password=self._password(entry),
                auth=str(entry.get("auth") or "negotiate"),
                protocol=protocol,
                cert_validation=str(entry.get("cert_validation") or "validate"),
                connection_timeout=int(entry.get("connection_timeout") or 30),
                ca_cert=os.path.expanduser(str(entry["ca_cert"])) if entry.get("ca_cert") else None,
                message_encryption=str(entry.get("message_encryption") or "auto"),
            )
        scheme = entry.get("scheme") or "https"
        return _winrm_call.WinRMTarget(
            host=str(entry.get("host") or entry["name"]),
            port=int(entry.get("port") or (5986 if scheme == "https" else 5985)),
            user=str(entry.get("user") or ""),
            password=self._password(entry),
            transport=str(entry.get("transport") or "ntlm"),
            scheme=scheme,
            server_cert_validation=str(entry.get("server_cert_validation") or "validate"),
            connection_timeout=int(entry.get("connection_timeout") or 20),
            ca_trust_path=os.path.expanduser(str(entry["ca_trust_path"])) if entry.get("ca_trust_path") else None,
        )

    # -- the inventory ------------------------------------------------------------------------------------
    def _add_hyperv_host(self, entry: dict[str, t.Any]) -> None:
        target = self._target(entry)
        name = entry["name"]
        self.inventory.add_group("hyperv_hosts")
        self.inventory.add_host(name, group="hyperv_hosts")
        variables: dict[str, t.Any] = {
            "ansible_host": target.host,
            "ansible_port": target.port,
            "ansible_user": target.user,
        }
        if isinstance(target, _psrp_call.PsrpTarget):
            variables.update(
                ansible_connection="psrp",
                ansible_psrp_auth=target.auth,
                ansible_psrp_protocol=target.protocol,
                ansible_psrp_cert_validation=target.cert_validation,
            )
            if target.ca_cert:
                variables["ansible_psrp_ca_cert"] = target.ca_cert
            if entry.get("message_encryption"):
                variables["ansible_psrp_message_encryption"] = target.message_encryption
            if entry.get("connection_timeout"):
                variables["ansible_psrp_connection_timeout"] = target.connection_timeout
        else:
            variables.update(
                ansible_connection="winrm",
                ansible_winrm_transport=target.transport,
                ansible_winrm_scheme=target.scheme,
                ansible_winrm_server_cert_validation=target.server_cert_validation,
            )
            if target.ca_trust_path:
                variables["ansible_winrm_ca_trust_path"] = target.ca_trust_path
            if entry.get("connection_timeout"):
                variables["ansible_winrm_connection_timeout"] = target.connection_timeout
        if entry.get("password") is not None:  # given in the file; one from password_env stays out of hostvars
            variables["ansible_password"] = target.password
        for key, value in variables.items():
            self.inventory.set_variable(name, key, value)

    def _populate(self, hosts: list[dict[str, t.Any]], answers: dict[str, t.Any]) -> None:
        strict = self.get_option("strict")
        hostname = self.get_option("hostname")
        preference = self.get_option("ip_preference")
        filters = self.get_option("filters") or {}
        self.inventory.add_group("hyperv_guests")
        # A VM named like a Hyper-V host entry would merge into it (and take its connection variables).
        taken: dict[str, str] = {entry["name"]: "the Hyper-V hosts of this file" for entry in hosts}
        for entry in hosts:
            host = entry["name"]
            self._add_hyperv_host(entry)
            answer = answers.get(host) or {"error": "no answer"}
            if "error" in answer:
                message = "Hyper-V host %s could not be read: %s" % (host, answer["error"])
                if strict:
                    raise AnsibleParserError(message)
                self.display.warning(message + ". Its VMs are not listed; the other hosts are.")
                continue
            for problem in answer.get("list_errors") or []:
                self.display.warning("Hyper-V host %s: listing its VMs reported: %s" % (host, problem))
            host_group = self.inventory.add_group(self._sanitize_group_name("hyperv_host_%s" % host))
            for vm in answer["vms"]:
                for problem in _inventory_hosts.read_problems(vm):
                    self.display.warning("Hyper-V host %s, VM %r: %s" % (host, vm.get("name"), problem))
                if not _inventory_hosts.selected(vm, filters.get("states"), filters.get("names")):
                    continue
                name = _inventory_hosts.inventory_name(vm, hostname) or str(vm.get("name"))
                if name in taken:
                    self.display.warning(
                        "VM %r of Hyper-V host %s has the inventory name of a host of %s; it is listed as its id %s"
                        % (vm.get("name"), host, taken[name], vm.get("id"))
                    )
                    name = str(vm.get("id"))
                taken[name] = host
                self._add_vm(name, host, host_group, vm, preference, strict)

    def _add_vm(
        self, name: str, host: str, host_group: str, vm: dict[str, t.Any], preference: str, strict: bool
    ) -> None:
        self.inventory.add_host(name, group="hyperv_guests")
        self.inventory.add_child(host_group, name)
        if vm.get("state"):
            state_group = self.inventory.add_group(
                self._sanitize_group_name("hyperv_state_%s" % str(vm["state"]).lower())
            )
            self.inventory.add_child(state_group, name)
        # What the host and its guest report is data, never a template (a VM named '{{ ... }}'): wrap_var marks
        # it so on every ansible-core the collection supports (2.19 marks plugin variables untrusted itself).
        for key, value in _inventory_hosts.host_variables(host, vm, preference).items():
            self.inventory.set_variable(name, key, wrap_var(value))
        # Constructable: compose first (it may set ansible_host), then groups and keyed_groups, on the host's
        # variables as ansible has them (inventory_hostname and the rest).
        variables = self.inventory.get_host(name).get_vars()
        self._set_composite_vars(self.get_option("compose"), variables, name, strict=strict)
        variables = self.inventory.get_host(name).get_vars()
        self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)
