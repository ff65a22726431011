"""Helpers of the reliability suite: playbooks of several plays, values ansible must not template."""

from __future__ import annotations

from pathlib import Path

import yaml
from support.lab_process import Lab
from support.playbook import PlaybookRun, ansible_playbook


class Unsafe(str):
    """A string written to the playbook as ``!unsafe``: ansible passes it on exactly, never templated.

    Playbook text is templated by ansible itself ({{ ... }} would be evaluated before any module sees
    it); ``!unsafe`` is how a user hands over an arbitrary string, so the suite sends every hostile
    string that way and checks what the lab received.
    """


class _Dumper(yaml.SafeDumper):
    pass


def _unsafe(dumper: yaml.SafeDumper, value: Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(value), style='"')


_Dumper.add_representer(Unsafe, _unsafe)


def dump(data: object) -> str:
    # allow_unicode=False: PyYAML escapes every non-ASCII character then. With allow_unicode=True it
    # writes U+0085 (NEL) raw, and reading it back folds it into a space.
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=False, sort_keys=False, width=10_000)


def escaped_lab(directory: Path, labfile: dict) -> Lab:
    """A lab (not started yet: ``with escaped_lab(...) as lab``) whose LABFILE is written by ``dump``, so
    that every VM name reaches the lab exactly."""
    return Lab(directory, labfile, dump)


def unsafe(value: object) -> object:
    """Every string inside ``value`` (lists, dicts: values and keys) tagged !unsafe."""
    if isinstance(value, str):
        # Ansible 2.19 reads `!unsafe ""` as null; an empty string holds no template anyway.
        return Unsafe(value) if value else value
    if isinstance(value, list):
        return [unsafe(v) for v in value]
    if isinstance(value, dict):
        return {unsafe(k): unsafe(v) for k, v in value.items()}
    return value


def play(hosts: str, tasks: list[dict], **extra) -> dict:
    return dict({"name": "reliability", "hosts": hosts, "gather_facts": False, "tasks": tasks}, **extra)


def run_plays(
    tmp: Path,
    lab: Lab,
    plays: list[dict],
    *,
    check: bool = False,
    name: str = "plays",
    extra_inventory: dict | None = None,
    timeout: int = 600,
    env_extra: dict | None = None,
) -> PlaybookRun:
    """ansible-playbook with several plays (tests/integration/harness.run_playbook runs one), every
    file written by ``dump``."""
    playbook = tmp / ("%s.yml" % name)
    playbook.write_text(dump(plays), encoding="utf-8")
    return ansible_playbook(
        tmp,
        lab.inventory,
        playbook,
        name=name,
        check=check,
        extra_inventory=extra_inventory,
        dump=dump,
        timeout=timeout,
        env_extra=env_extra,
    )


def host_view(state: dict) -> dict:
    """What a Hyper-V host holds that a module may change: every VM's IC enabled flags, the hv-socket
    registry. Statuses and counters are left out (they move with time and reads)."""
    return {
        "vms": {
            name: {key: ic["enabled"] for key, ic in vm["integration_services"].items()}
            for name, vm in state["vms"].items()
        },
        "hvsocket": state["hvsocket_registry"],
    }


def windows_guest_view(state: dict) -> dict:
    """Every Windows guest's services and time provider, by VM name."""
    return {
        name: {"services": vm["guest"].get("services"), "time_provider": vm["guest"].get("time_provider")}
        for name, vm in state["vms"].items()
        if vm.get("guest_kind") == "windows"
    }
