"""Running ansible the way the tests do: this checkout's collection, the tests' ansible.cfg, and every task
result read back from the result_log callback (tests/integration/callback_plugins)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing as t
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ANSIBLE_CFG = REPO / "tests" / "integration" / "ansible.cfg"


def collections_path() -> str:
    """An ansible_collections tree whose hyperv/integration is this checkout."""
    root = REPO / ".cache" / "collections"
    link = root / "ansible_collections" / "hyperv" / "integration"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO, target_is_directory=True)
    return str(root)


def ansible_env(log: Path | None) -> dict[str, str]:
    """The environment of a test's ansible run: this checkout's collection, the tests' ansible.cfg, and
    the result_log callback writing every task result to ``log`` (one JSON line each; None: no log)."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ANSIBLE_CFG),
        ANSIBLE_COLLECTIONS_PATH=collections_path(),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH="%s:%s" % (BIN, env.get("PATH", "")),
    )
    if log is None:
        env.pop("RESULT_LOG", None)
    else:
        env["RESULT_LOG"] = str(log)
    return env


def read_results(log: Path) -> list[dict]:
    """The result_log callback's records: one JSON object per "\n"-ended line. str.splitlines() would
    also split inside strings at U+0085, U+2028 and the like, which the callback writes unescaped."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").split("\n") if line.strip()]


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

    def failure_messages(self) -> list[str]:
        """The msg of every failed task result, and of every failed item of a failed loop."""
        msgs = []
        for r in self.results:
            if r["status"] == "failed":
                msgs.append(str(r["result"].get("msg", "")))
                for item in r["result"].get("results") or []:
                    if item.get("failed"):
                        msgs.append(str(item.get("msg", "")))
        return msgs


def inventory_text(inventory: dict) -> str:
    return yaml.safe_dump(inventory, allow_unicode=True)


def ansible_playbook(
    tmp: Path,
    inventory: Path,
    playbook: Path,
    *,
    name: str = "play",
    check: bool = False,
    diff: bool = False,
    extra_vars: dict | None = None,
    extra_inventory: dict | None = None,
    dump: Callable[[dict], str] = inventory_text,
    timeout: int = 900,
    env_extra: dict | None = None,
) -> PlaybookRun:
    """ansible-playbook -i INVENTORY [-i EXTRA] PLAYBOOK, its results logged to tmp/NAME.results.jsonl.
    ``extra_inventory`` is written by ``dump`` to tmp/NAME.inventory.yml."""
    log = tmp / ("%s.results.jsonl" % name)
    if log.exists():
        log.unlink()
    env = ansible_env(log)
    env.update(env_extra or {})
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory)]
    if extra_inventory:
        extra = tmp / ("%s.inventory.yml" % name)
        extra.write_text(dump(extra_inventory), encoding="utf-8")
        cmd += ["-i", str(extra)]
    cmd.append(str(playbook))
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, read_results(log))


def plain_values(value: t.Any) -> t.Any:
    """``ansible-inventory --list`` output with ansible's untrusted-string markers ({"__ansible_unsafe": s})
    replaced by the strings themselves (values an inventory plugin set)."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_values(v) for v in value]
    return value
