"""Helpers for integration tests: start a lab, run real ansible-playbook against it, read results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LAB = REPO / "tests" / "lab" / "lab"
BIN = Path(sys.executable).parent
for _path in (LAB.parent, REPO / "tests"):  # the lab's reader of its state; tests/support
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
from hvlab import cli as lab_cli  # noqa: E402  (the lab's own reader of its control endpoint)


def collections_path() -> str:
    """An ansible_collections tree whose hyperv/integration is this checkout."""
    root = REPO / ".cache" / "collections"
    link = root / "ansible_collections" / "hyperv" / "integration"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO, target_is_directory=True)
    return str(root)


class Lab:
    def __init__(self, directory: Path, labfile: dict) -> None:
        self.dir = directory
        self.labfile = directory / "lab.yml"
        self.labfile.write_text(yaml.safe_dump(labfile, allow_unicode=True, sort_keys=False), encoding="utf-8")
        self.inventory = directory / "inventory.yml"
        self.host = labfile["host"]["name"]

    def _lab(self, *args: str) -> str:
        proc = subprocess.run(
            [str(LAB), *args, "--dir", str(self.dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError("lab %s failed (%d): %s %s" % (args[0], proc.returncode, proc.stdout, proc.stderr))
        return proc.stdout

    def up(self) -> Lab:
        self._lab("up", str(self.labfile))
        return self

    def state(self) -> dict:
        """What `lab state` prints, read over the control endpoint without a process per read."""
        return lab_cli.read_state(self.dir)

    def down(self) -> None:
        self._lab("down")


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    results: list[dict] = field(default_factory=list)

    def recap(self, host: str) -> dict[str, int]:
        match = re.search(r"^%s\s+:\s+(.*)$" % re.escape(host), self.stdout, re.MULTILINE)
        assert match, "no PLAY RECAP line for %s in:\n%s" % (host, self.stdout[-3000:])
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}

    def result(self, task: str, host: str | None = None) -> dict:
        found = [r for r in self.results if r["task"] == task and (host is None or r["host"] == host)]
        assert found, "no result for task %r; tasks seen: %s" % (task, sorted({r["task"] for r in self.results}))
        return found[-1]


def run_playbook(
    tmp: Path,
    lab: Lab | None,
    tasks: list[dict],
    *,
    hosts: str = "hyperv_hosts",
    check: bool = False,
    diff: bool = False,
    extra_vars: dict | None = None,
    name: str = "play",
    extra_inventory: dict | None = None,
) -> PlaybookRun:
    playbook = tmp / ("%s.yml" % name)
    play = [{"name": "integration test", "hosts": hosts, "gather_facts": False, "tasks": tasks}]
    playbook.write_text(yaml.safe_dump(play, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return run_playbook_file(
        tmp,
        lab,
        playbook,
        check=check,
        diff=diff,
        extra_vars=extra_vars,
        name=name,
        extra_inventory=extra_inventory,
    )


def ansible_env(log: Path) -> dict[str, str]:
    """The environment of a test's ansible-playbook: this checkout's collection, the tests' ansible.cfg,
    and the result_log callback writing every task result to ``log`` (one JSON line each)."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(HERE / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=collections_path(),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        RESULT_LOG=str(log),
        PATH="%s:%s" % (BIN, env.get("PATH", "")),
    )
    return env


def lab_starter(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    """Body of the start_lab fixtures: start(labfile_dict, name) -> running Lab; all taken down after."""
    started: list[Lab] = []

    def start(labfile: dict, name: str = "lab") -> Lab:
        directory = tmp_path / name
        directory.mkdir()
        lab = Lab(directory, labfile).up()
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.down()


def run_playbook_file(
    tmp: Path,
    lab: Lab | None,
    playbook: Path,
    *,
    check: bool = False,
    diff: bool = False,
    extra_vars: dict | None = None,
    name: str = "play",
    extra_inventory: dict | None = None,
) -> PlaybookRun:
    """ansible-playbook on an existing playbook file (e.g. one of examples/) with the lab's inventory."""
    log = tmp / ("%s.results.jsonl" % name)
    if log.exists():
        log.unlink()
    env = ansible_env(log)
    if lab is None:  # this machine itself
        local = tmp / ("%s.local-inventory.yml" % name)
        local.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "hosts": {
                            "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                        }
                    }
                }
            )
        )
        inventory = local
    else:
        inventory = lab.inventory
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if extra_inventory:
        extra = tmp / ("%s.inventory.yml" % name)
        extra.write_text(yaml.safe_dump(extra_inventory, allow_unicode=True), encoding="utf-8")
        cmd[3:3] = ["-i", str(extra)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=900, check=False, stdin=subprocess.DEVNULL
    )
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, read_results(log))


def read_results(log: Path) -> list[dict]:
    """The result_log callback's records: one JSON object per "\n"-ended line. str.splitlines() would
    also split inside strings at U+0085, U+2028 and the like, which the callback writes unescaped."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").split("\n") if line.strip()]


def guest_info(tmp: Path, lab: Lab, hosts: str, name: str = "info") -> dict[str, dict]:
    """guest_integration_service_info on ``hosts``: its result by guest; fails the test if a run fails."""
    run = run_playbook(
        tmp, lab, [{"name": "info", "hyperv.integration.guest_integration_service_info": {}}], hosts=hosts, name=name
    )
    assert run.rc == 0, run.stdout
    return {r["host"]: r["result"] for r in run.results if r["task"] == "info"}
