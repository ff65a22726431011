"""Real-host mode: read the maintainer's inventory, run the suite's playbooks against it, read the modules' answers.

Nothing here knows the lab: everything the tests assert comes from what the collection's own modules return.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.playbook import BIN, PlaybookRun, ansible_env, ansible_playbook
from support.public_names import IC_KEYS  # fixed on purpose: a drift in the catalog shows

ENV = "HYPERV_INTEGRATION_REAL_INVENTORY"
HOSTS_GROUP = "hyperv_hosts"
VMS_VAR = "hyperv_integration_test_vms"
GUESTS_VAR = "hyperv_integration_test_guests"
HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "playbooks"
DOC = "docs/dev/real-host-testing.md"
SKIP_REASON = (
    "real-host mode: set %s=/path/to/inventory.yml (a real Hyper-V host in group %s, its scratch VMs in the "
    "host variable %s) to run these tests against it; see %s" % (ENV, HOSTS_GROUP, VMS_VAR, DOC)
)

GSI = "guest_service_interface"

Enabled = dict[str, bool]  # IC key -> enabled, for one VM


class Refused(Exception):
    """The inventory does not say what the tests may touch: run nothing."""


@dataclass(frozen=True)
class Guest:
    name: str  # inventory name
    host: str  # hyperv_host: the Hyper-V host's inventory name
    vm: str  # hyperv_vm_name: the VM's name on that host


@dataclass
class Target:
    """What the inventory allows the tests to touch. ``inventory`` is what the harness reads to run a playbook."""

    inventory: Path
    hosts: list[str]
    vms: dict[str, list[str]]  # host -> scratch VMs, as the inventory names them
    guests: dict[str, list[Guest]] = field(default_factory=dict)  # host -> its test guests

    def all_guests(self) -> list[Guest]:
        return [guest for host in self.hosts for guest in self.guests.get(host, [])]


def _group_hosts(groups: dict[str, Any], name: str, seen: set[str] | None = None) -> list[str]:
    """Every host of a group of ``ansible-inventory --list`` output, children included, in order."""
    seen = set() if seen is None else seen
    if name in seen or name not in groups:
        return []
    seen.add(name)
    hosts = list(groups[name].get("hosts") or [])
    for child in groups[name].get("children") or []:
        hosts += [h for h in _group_hosts(groups, child, seen) if h not in hosts]
    return hosts


def read_inventory(inventory: Path, tmp: Path) -> dict[str, Any]:
    """The inventory as ansible sees it (any format or inventory plugin), with ``ansible-inventory --list``."""
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        env=ansible_env(tmp / "inventory.results.jsonl"),
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise Refused("ansible-inventory could not read %s (%d): %s" % (inventory, proc.returncode, proc.stderr))
    return json.loads(proc.stdout)


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise Refused("%s must be a list of names, got %r" % (what, value))
    folded = [v.casefold() for v in value]
    doubles = sorted({v for v in value if folded.count(v.casefold()) > 1})
    if doubles:
        raise Refused("%s names %s more than once (Hyper-V names match ignoring case)" % (what, doubles))
    return list(value)


def load_target(inventory: Path, tmp: Path) -> Target:
    """Which hosts, scratch VMs and guests the tests may use; Refused when the inventory names no scratch VM."""
    if not inventory.is_file():
        raise Refused("%s=%s: no such file" % (ENV, inventory))
    listed = read_inventory(inventory, tmp)
    hostvars: dict[str, dict[str, Any]] = (listed.get("_meta") or {}).get("hostvars") or {}
    groups = {k: v for k, v in listed.items() if k != "_meta"}
    every_host = set(hostvars) | {h for g in groups.values() for h in g.get("hosts") or []}
    hyperv_hosts = _group_hosts(groups, HOSTS_GROUP)
    if not hyperv_hosts:
        raise Refused("%s has no host in group %s" % (inventory, HOSTS_GROUP))
    target = Target(inventory=inventory, hosts=[], vms={})
    for host in hyperv_hosts:
        variables = hostvars.get(host) or {}
        vms = _names(variables.get(VMS_VAR), "%s of host %s" % (VMS_VAR, host))
        if not vms:
            continue  # a host without scratch VMs is never touched
        target.hosts.append(host)
        target.vms[host] = vms
        guests = []
        for name in _names(variables.get(GUESTS_VAR), "%s of host %s" % (GUESTS_VAR, host)):
            if name not in every_host:
                raise Refused("%s of host %s names %r, which is not in the inventory" % (GUESTS_VAR, host, name))
            guest_vars = hostvars.get(name) or {}
            if guest_vars.get("hyperv_host") != host or not guest_vars.get("hyperv_vm_name"):
                raise Refused(
                    "guest %r (in %s of host %s) needs host variables hyperv_host: %s and hyperv_vm_name "
                    "(its VM's name on that host); it has hyperv_host %r, hyperv_vm_name %r"
                    % (name, GUESTS_VAR, host, host, guest_vars.get("hyperv_host"), guest_vars.get("hyperv_vm_name"))
                )
            guests.append(Guest(name, host, str(guest_vars["hyperv_vm_name"])))
        target.guests[host] = guests
    if not target.hosts:
        raise Refused(
            "no host of group %s in %s names scratch VMs. List the VMs the tests may change in "
            "the host variable %s (e.g. %s: [scratch01, scratch02]); the tests never touch any other VM. See %s."
            % (HOSTS_GROUP, inventory, VMS_VAR, VMS_VAR, DOC)
        )
    return target


def play(tmp: Path, target: Target, playbook: str, name: str, extra_vars: dict[str, Any] | None = None) -> PlaybookRun:
    """ansible-playbook tests/realhost/playbooks/PLAYBOOK on the target's hosts (extra var realhost_hosts)."""
    variables = {"realhost_hosts": target.hosts, **(extra_vars or {})}
    return ansible_playbook(tmp, target.inventory, PLAYBOOKS / playbook, extra_vars=variables, name=name)


def task_ok(run: PlaybookRun, task: str, host: str) -> dict[str, Any]:
    """The result of ``task`` on ``host``, which must have succeeded."""
    found = run.result(task, host)
    assert found["status"] == "ok", "task %r on %s: %s\n%s" % (
        task,
        host,
        found["status"],
        json.dumps(found["result"], indent=1, ensure_ascii=False)[-3000:],
    )
    return found["result"]


def enabled_of(vm: dict[str, Any]) -> Enabled:
    """One VM of vm_integration_service_info: IC key -> enabled (only the services the collection knows)."""
    return {ic["key"]: ic["enabled"] for ic in vm["integration_services"] if ic["key"] is not None}


def scratch_state(run: PlaybookRun, task: str, target: Target, host: str) -> dict[str, Enabled]:
    """A vm_integration_service_info task over the scratch VMs: inventory VM name -> enabled map.

    The module answers in the order the names were given (its RETURN doc), so answers pair with names by position.
    """
    result = task_ok(run, task, host)
    names = target.vms[host]
    answered = result["vms"]
    assert len(answered) == len(names), "%s: asked %s, got %s" % (task, names, [vm["name"] for vm in answered])
    for name, vm in zip(names, answered, strict=True):
        assert vm["name"].casefold() == name.casefold(), "%s: asked %r, got %r" % (task, name, vm["name"])
    return {name: enabled_of(vm) for name, vm in zip(names, answered, strict=True)}


def word(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


@dataclass
class Baseline:
    """What the host reported before any test changed anything (read with vm_integration_service_info)."""

    run: PlaybookRun
    every_vm: dict[str, list[str]]  # host -> the names of all its VMs
    scratch: dict[str, dict[str, Enabled]]  # host -> scratch VM (inventory name) -> IC key -> enabled

    def describe(self) -> str:
        return json.dumps(self.scratch, indent=1, ensure_ascii=False)


class ScratchVMs:
    """Handed to a test that changes scratch VMs; its teardown puts back the baseline unless told nothing changed."""

    def __init__(self, target: Target, baseline: Baseline) -> None:
        self.target = target
        self.baseline = baseline
        self.untouched = False

    def verified_unchanged(self) -> None:
        """The test has read every scratch VM back and found it as at the start: no restore run is needed."""
        self.untouched = True

    def restore_vars(self) -> dict[str, Any]:
        return {
            "realhost_restore": {
                host: [
                    {"name": vm, "services": {key: word(on) for key, on in wanted.items() if key in IC_KEYS}}
                    for vm, wanted in self.baseline.scratch[host].items()
                ]
                for host in self.target.hosts
            }
        }


@dataclass
class HvSocketService:
    """The hv-socket test's registration: a random GUID and ElementName."""

    service_id: str
    name: str
    removed: bool = False  # the test saw it gone: nothing for the finalizer to do

    def extra_vars(self) -> dict[str, str]:
        return {"realhost_service_id": self.service_id, "realhost_service_name": self.name}


@dataclass
class KvpItems:
    """The KVP test's host items: random keys, values that test the item XML (markup characters, quotes, a
    line break, non-ASCII text)."""

    items: dict[str, str]
    removed: bool = False  # the test saw them gone: nothing for the finalizer to do

    def extra_vars(self) -> dict[str, Any]:
        return {"realhost_kvp_items": self.items}


def environment_inventory() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value).expanduser().resolve() if value else None
