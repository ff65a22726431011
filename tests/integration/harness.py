"""Helpers for integration tests: start a lab, run real ansible-playbook against it, read results.

The lab wrapper and the ansible runner are tests/support's (lab_process.py, playbook.py), shared with the
reliability and real-host suites and the benchmark; this module adds a playbook of one play and the
guest info read the integration tests share."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:  # tests/support
    sys.path.insert(0, str(REPO / "tests"))
from support.lab_process import Lab  # noqa: E402
from support.playbook import PlaybookRun, ansible_playbook  # noqa: E402


def run_playbook(
    tmp: Path, lab: Lab | None, tasks: list[dict], *, hosts: str = "hyperv_hosts", name: str = "play", **options
) -> PlaybookRun:
    """One play of ``tasks`` on ``hosts``; ``options`` as for run_playbook_file."""
    playbook = tmp / ("%s.yml" % name)
    play = [{"name": "integration test", "hosts": hosts, "gather_facts": False, "tasks": tasks}]
    playbook.write_text(yaml.safe_dump(play, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return run_playbook_file(tmp, lab, playbook, name=name, **options)


def run_playbook_file(tmp: Path, lab: Lab | None, playbook: Path, *, name: str = "play", **options) -> PlaybookRun:
    """ansible-playbook on an existing playbook file (e.g. one of examples/) with the lab's inventory, or
    this machine itself when ``lab`` is None; ``options``: check, diff, extra_vars, extra_inventory."""
    if lab is None:
        inventory = tmp / ("%s.local-inventory.yml" % name)
        local = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}
        inventory.write_text(yaml.safe_dump({"all": {"hosts": local}}))
    else:
        inventory = lab.inventory
    return ansible_playbook(tmp, inventory, playbook, name=name, **options)


def guest_info(tmp: Path, lab: Lab, hosts: str, name: str = "info") -> dict[str, dict]:
    """guest_integration_service_info on ``hosts``: its result by guest; fails the test if a run fails."""
    run = run_playbook(
        tmp, lab, [{"name": "info", "hyperv.integration.guest_integration_service_info": {}}], hosts=hosts, name=name
    )
    assert run.rc == 0, run.stdout
    return {r["host"]: r["result"] for r in run.results if r["task"] == "info"}
