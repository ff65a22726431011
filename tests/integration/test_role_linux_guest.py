"""The linux_guest role on a lab Linux guest: daemon packages, daemons of offered services, time source."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import guest_info, run_playbook

pytestmark = pytest.mark.needs_root

LAB = {"host": {"name": "hv01", "language": "fr-FR"}, "vms": [{"name": "lin01", "state": "Running", "guest": "linux"}]}
DROPIN = "/etc/chrony/conf.d/hyperv-ptp.conf"
REFCLOCK = "refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0 stratum 2"
MARKER = "# commented out by hyperv.integration.linux_guest"
PACKAGES_TASK = "hyperv.integration.linux_guest : Install the Hyper-V daemon packages"


def role(time_source: str | None = None, **extra) -> list[dict]:
    task: dict = {"name": "role", "ansible.builtin.include_role": {"name": "hyperv.integration.linux_guest"}}
    variables = dict(extra)
    if time_source is not None:
        variables["hyperv_linux_time_source"] = time_source
    if variables:
        task["vars"] = variables
    return [task]


def _sh(name: str, script: str) -> dict:
    return {
        "name": name,
        "ansible.builtin.shell": script,
        "changed_when": False,
        "failed_when": False,
        "check_mode": False,
    }


def guest_state(tmp_path: Path, lab, name: str) -> dict[str, str]:
    """What a user of the guest would look at, read over ssh by a separate play."""
    checks = {
        "chrony_pkg": "dpkg-query -W -f '${Status}' chrony 2>/dev/null || echo absent",
        "dropin": "cat %s 2>/dev/null || echo ABSENT" % DROPIN,
        "chrony_active": "systemctl is-active chrony.service || true",
        "chrony_enabled": "systemctl is-enabled chrony.service 2>/dev/null || true",
        "sources": "chronyc -n sources 2>&1 || true",
        "makestep": "grep -n makestep /etc/chrony/chrony.conf 2>/dev/null || true",
        "kvp": "systemctl is-active hv-kvp-daemon.service; systemctl is-enabled hv-kvp-daemon.service",
        "vss": "systemctl is-active hv-vss-daemon.service; systemctl is-enabled hv-vss-daemon.service",
        "fcopy": "systemctl is-active hv-fcopy-daemon.service; systemctl is-enabled hv-fcopy-daemon.service",
        "ptp": "readlink /dev/ptp_hyperv || echo none",
    }
    run = run_playbook(
        tmp_path, lab, [_sh(key, script) for key, script in checks.items()], hosts="linux_guests", name=name
    )
    assert run.rc == 0, run.stdout
    return {key: run.result(key)["result"]["stdout"].strip() for key in checks}


def test_role_installs_starts_daemons_and_configures_ptp_idempotently(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    before = guest_state(tmp_path, lab, "before")
    assert before["chrony_pkg"] != "install ok installed" and before["dropin"] == "ABSENT"
    assert before["ptp"] == "ptp0"  # the host offers Time Synchronization (Hyper-V's default)
    assert before["kvp"].splitlines() == ["active", "disabled"]  # started by udev, not enabled (Debian)

    info = guest_info(tmp_path, lab, "linux_guests")
    assert [result["daemon_packages"] for result in info.values()] == [["hyperv-daemons"]]

    # Check mode on the fresh guest: reports changes, makes none.
    check = run_playbook(tmp_path, lab, role(), hosts="linux_guests", check=True, diff=True, name="check")
    assert check.rc == 0, check.stdout
    assert check.recap("lin01")["changed"] >= 2, check.stdout  # chrony to install, units to enable
    assert guest_state(tmp_path, lab, "after-check") == before

    first = run_playbook(tmp_path, lab, role(), hosts="linux_guests", diff=True, name="first")
    assert first.rc == 0, first.stdout
    assert "RUNNING HANDLER [hyperv.integration.linux_guest : Restart chrony]" in first.stdout
    assert REFCLOCK in first.stdout  # --diff shows the drop-in
    # Debian's chrony.conf reads conf.d already (confdir): the role leaves that line alone.
    assert (
        first.result("hyperv.integration.linux_guest : Make chrony read the drop-in directory")["status"] == "skipped"
    )
    packages = first.result(PACKAGES_TASK)
    assert packages["status"] == "ok" and packages["result"]["changed"] is False  # in the image already
    after = guest_state(tmp_path, lab, "after")
    assert after["chrony_pkg"] == "install ok installed"  # the role installed it (absent before)
    dropin = after["dropin"].splitlines()
    assert REFCLOCK in dropin and "makestep 1.0 -1" in dropin
    assert after["chrony_active"] == "active" and after["chrony_enabled"] == "enabled"
    assert "PHC0" in after["sources"]  # chronyd reads the Hyper-V PTP clock
    assert MARKER in after["makestep"] and "makestep 1 3" in after["makestep"]  # the drop-in's makestep wins
    # Daemons of the offered services run and are enabled; Guest Service Interface is not offered (default).
    assert after["kvp"].splitlines() == ["active", "enabled"]
    assert after["vss"].splitlines() == ["active", "enabled"]
    assert after["fcopy"].splitlines() == ["inactive", "disabled"]
    daemons = lab.state()["vms"]["lin01"]["integration_services"]
    assert daemons["key_value_pair_exchange"]["primary_status"] == "Ok"

    again = run_playbook(tmp_path, lab, role(), hosts="linux_guests", name="again")
    assert again.rc == 0, again.stdout
    assert again.recap("lin01")["changed"] == 0, again.stdout
    assert "RUNNING HANDLER" not in again.stdout

    recheck = run_playbook(tmp_path, lab, role(), hosts="linux_guests", check=True, diff=True, name="recheck")
    assert recheck.rc == 0 and recheck.recap("lin01")["changed"] == 0, recheck.stdout

    ntp = run_playbook(tmp_path, lab, role("ntp"), hosts="linux_guests", name="ntp")
    assert ntp.rc == 0, ntp.stdout
    assert ntp.recap("lin01")["changed"] >= 1
    assert "RUNNING HANDLER [hyperv.integration.linux_guest : Restart chrony]" in ntp.stdout
    on_ntp = guest_state(tmp_path, lab, "on-ntp")
    assert on_ntp["dropin"] == "ABSENT" and on_ntp["chrony_active"] == "active"
    assert "PHC0" not in on_ntp["sources"]  # restarted without the refclock
    assert MARKER not in on_ntp["makestep"] and "makestep 1 3" in on_ntp["makestep"]  # put back as it was
    ntp_again = run_playbook(tmp_path, lab, role("ntp"), hosts="linux_guests", name="ntp-again")
    assert ntp_again.rc == 0 and ntp_again.recap("lin01")["changed"] == 0, ntp_again.stdout


def test_ptp_without_time_synchronization_fails_and_changes_nothing(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {
            "host": {"name": "hv01", "language": "en-US"},
            "vms": [
                {
                    "name": "lin01",
                    "state": "Running",
                    "guest": "linux",
                    "integration_services": {"time_synchronization": False},
                }
            ],
        }
    )
    run = run_playbook(tmp_path, lab, role(), hosts="linux_guests", name="ptp")
    assert run.rc != 0
    assert "no /dev/ptp_hyperv" in run.stdout and "does not offer Time Synchronization" in run.stdout
    assert run.recap("lin01")["changed"] == 0
    state = guest_state(tmp_path, lab, "state")
    assert state["ptp"] == "none" and state["chrony_pkg"] != "install ok installed"

    none = run_playbook(tmp_path, lab, role("none", linux_guest_daemon_packages=[]), hosts="linux_guests", name="none")
    assert none.rc == 0, none.stdout
    assert none.result(PACKAGES_TASK)["status"] == "skipped"  # an empty list installs nothing
    assert none.recap("lin01")["changed"] == 1  # the KVP and VSS units enabled
    assert guest_state(tmp_path, lab, "after-none")["chrony_pkg"] != "install ok installed"  # none installs nothing


def test_ptp_with_chronys_configuration_elsewhere_fails_before_writing_a_drop_in(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    tasks = role("ptp", linux_guest_chrony_config="/etc/chrony/elsewhere.conf")
    run = run_playbook(tmp_path, lab, tasks, hosts="linux_guests", name="elsewhere")
    assert run.rc != 0
    assert "chrony's configuration /etc/chrony/elsewhere.conf was not found" in run.stdout
    assert guest_state(tmp_path, lab, "state")["dropin"] == "ABSENT"
