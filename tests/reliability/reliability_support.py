"""Helpers of the reliability suite: playbooks of several plays, values ansible must not template."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from harness import BIN, Lab, PlaybookRun, ansible_env, read_results


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


class EscapedLab(Lab):
    """harness.Lab, with the LABFILE written by ``dump`` so that every VM name reaches the lab exactly."""

    def __init__(self, directory: Path, labfile: dict) -> None:
        super().__init__(directory, labfile)
        self.labfile.write_text(dump(labfile), encoding="utf-8")


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
    """ansible-playbook with several plays (tests/integration/harness.run_playbook runs one)."""
    playbook = tmp / ("%s.yml" % name)
    playbook.write_text(dump(plays), encoding="utf-8")
    log = tmp / ("%s.results.jsonl" % name)
    if log.exists():
        log.unlink()
    env = ansible_env(log)
    env.update(env_extra or {})
    cmd = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory)]
    if extra_inventory:
        extra = tmp / ("%s.inventory.yml" % name)
        extra.write_text(dump(extra_inventory), encoding="utf-8")
        cmd += ["-i", str(extra)]
    cmd.append(str(playbook))
    if check:
        cmd.append("--check")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, read_results(log))


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
