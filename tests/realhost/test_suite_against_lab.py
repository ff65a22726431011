"""The real-host suite works: run it, as a maintainer would, against the lab's inventory of a Hyper-V host.

The suite only sees an inventory file and the modules' answers; this test alone reads the lab's state, to show
that the suite put every VM and the hv-socket registry back as it found them and touched nothing it was not given.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from realhost import ENV, GUESTS_VAR, VMS_VAR
from support.lab_process import REPO, Lab

SCRATCH = ["rh-scratch-01", "Prüf'VM 02"]
LABFILE = {
    "host": {"name": "hv01", "language": "de-DE"},
    "vms": [
        # Two scratch VMs whose services start out differently (and one Off), a Windows and a Linux guest, and a
        # VM nobody lists: the suite may change only the first two.
        {
            "name": SCRATCH[0],
            "state": "Running",
            "guest": "none",
            "integration_services": {"guest_service_interface": True},
        },
        {"name": SCRATCH[1], "state": "Off", "guest": "none", "integration_services": {"vss": False}},
        {"name": "win01", "state": "Running", "guest": "windows"},
        {"name": "lin01", "state": "Running", "guest": "linux"},
        {"name": "bystander", "state": "Running", "guest": "none"},
    ],
}
SUITE = [
    "test_host_info_lists_every_scratch_vm_with_six_services",
    "test_guests_report_being_guests_and_what_is_offered",
    "test_set_name_and_services_check_apply_rerun_diff_and_readme",
    "test_set_vms_form_a_different_wish_per_vm",
    "test_a_missing_vm_fails_naming_it_and_changes_nothing",
    "test_hvsocket_register_check_rerun_remove",
    "test_kvp_host_items_check_set_read_rerun_remove",
    "test_file_copy_into_a_running_scratch_vm",
    "test_inventory_plugin_lists_every_scratch_vm",
]


def _run_suite(tmp: Path, inventory: Path, name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """pytest tests/realhost (without this file) with HYPERV_INTEGRATION_REAL_INVENTORY=inventory: outcome by test."""
    report = tmp / ("%s.xml" % name)
    env = dict(os.environ, **{ENV: str(inventory)})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(Path(__file__).resolve().parent),
            "--ignore",
            str(Path(__file__).resolve()),
            "-p",
            "no:cacheprovider",
            "-n",
            "0",  # one at a time, as the real-host suite runs against a real host
            "-q",
            "-rA",
            "--basetemp",
            str(tmp / ("%s-tmp" % name)),
            "--junitxml",
            str(report),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name", "")] = kinds[0] if kinds else "passed"
    return proc, outcomes


def _services(state: dict[str, Any]) -> dict[str, dict[str, bool]]:
    return {
        vm: {key: ic["enabled"] for key, ic in data["integration_services"].items()}
        for vm, data in state["vms"].items()
    }


def _host_items(state: dict[str, Any]) -> dict[str, Any]:
    return {vm: data.get("kvp_host_items") for vm, data in state["vms"].items()}


@pytest.mark.needs_root  # the lab's Linux guest lin01
@pytest.mark.skipif(bool(os.environ.get(ENV)), reason="%s is set: the suite runs against that inventory" % ENV)
# winrm and psrp: the suite's inventory-plugin case needs one of the plugin's own connections.
@pytest.mark.parametrize("connection", ["winrm", "psrp"])
def test_real_host_suite_passes_against_the_lab_and_restores_it(
    tmp_path: Path, start_lab: Callable[..., Lab], connection: str
) -> None:
    lab = start_lab(LABFILE, connection=connection)
    inventory = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))

    # Without scratch VMs the suite refuses, before it runs anything against the host.
    plain = tmp_path / "no-scratch-inventory.yml"
    plain.write_text(yaml.safe_dump(inventory, allow_unicode=True), encoding="utf-8")
    commands = lab.state()["counters"]["commands"]
    refused, outcomes = _run_suite(tmp_path, plain, "refused")
    assert refused.returncode != 0
    assert outcomes == {name: "error" for name in SUITE}, refused.stdout[-5000:]
    assert "Refusing to run: no host of group hyperv_hosts" in refused.stdout, refused.stdout[-5000:]
    assert VMS_VAR in refused.stdout
    assert lab.state()["counters"]["commands"] == commands

    host = inventory["all"]["children"]["hyperv_hosts"]["hosts"][lab.host]
    host[VMS_VAR] = [SCRATCH[0].upper(), SCRATCH[1]]  # Hyper-V names match ignoring case
    host[GUESTS_VAR] = ["win01", "lin01"]
    # The first scratch VM has Guest Service Interface on but no guest that answers it: the copy case must
    # fail with the module's message and send nothing.
    host["hyperv_integration_test_copy_dir"] = "C:\\Windows\\Temp"
    real = tmp_path / "realhost-inventory.yml"
    real.write_text(yaml.safe_dump(inventory, allow_unicode=True), encoding="utf-8")

    before = lab.state()
    proc, outcomes = _run_suite(tmp_path, real, "suite")
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    assert outcomes == {name: "passed" for name in SUITE}, proc.stdout[-8000:]

    after = lab.state()
    assert _services(after) == _services(before), "the suite left integration services changed"
    assert after["hvsocket_services"] == before["hvsocket_services"], "the suite left hv-socket registrations"
    assert _host_items(after) == _host_items(before), "the suite left key-value items"
    assert after["host"]["files"] == {} and after["host"]["counters"]["put_files"] == 0, after["host"]
    assert after["counters"]["writes"] > before["counters"]["writes"], "the suite changed nothing at all"
