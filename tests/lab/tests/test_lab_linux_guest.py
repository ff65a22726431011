"""The Linux guest double (hvlab/linux_guest.py) booted for real: a Debian systemd container reached
over ssh with the lab's inventory variables. Needs root; builds the guest image first when it is
missing or out of date (tests/lab/linux_image/build.sh, about a minute once, then cached)."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hvlab import linux_guest
from hvlab.linux_guest import IC_DEVICES, LinuxGuest, guest_hostname
from labclient import build_guest_image, wait_for
from linux_guests import DEFAULT_OFFERS, booted

pytestmark = pytest.mark.needs_root

KVP = IC_DEVICES["key_value_pair_exchange"]
GSI = IC_DEVICES["guest_service_interface"]
STORAGE_AND_NETWORK = {device.class_guid for device in linux_guest.OTHER_DEVICES}


@pytest.fixture(scope="session")
def guest_image() -> None:
    """Build (or find up to date) the image the guests boot, outside the timing of the tests."""
    build_guest_image()


@pytest.fixture(scope="module")
def guest(guest_image: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinuxGuest]:
    yield from booted("Prüf'VM web01", "4073ded1-6f0a-5c3e-9d55-0f3a6e2b9d10", tmp_path_factory.mktemp("lab-a"))


def ssh(guest: LinuxGuest, command: str) -> subprocess.CompletedProcess[str]:
    """Run a shell command in the guest with ssh, exactly as the inventory variables say."""
    iv = guest.inventory_vars()
    assert iv is not None
    argv = [
        "ssh",
        "-p",
        str(iv["ansible_port"]),
        "-i",
        iv["ansible_ssh_private_key_file"],
        *shlex.split(iv["ansible_ssh_common_args"]),
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        f"{iv['ansible_user']}@{iv['ansible_host']}",
        command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def out(guest: LinuxGuest, command: str) -> str:
    result = ssh(guest, command)
    assert result.returncode == 0, f"{command!r}: {result.returncode} {result.stdout} {result.stderr}"
    return result.stdout.strip()


def class_ids(guest: LinuxGuest) -> set[str]:
    text = out(guest, "cat /sys/bus/vmbus/devices/*/class_id")
    assert all(line.startswith("{") and line.endswith("}") and line == line.lower() for line in text.splitlines())
    return {line.strip("{}") for line in text.splitlines()}


def unit_state(guest: LinuxGuest, unit: str) -> str:
    return ssh(guest, f"systemctl is-active {unit}").stdout.strip()


def test_inventory_vars_reach_the_guest_over_ssh(guest: LinuxGuest) -> None:
    iv = guest.inventory_vars()
    assert iv == {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": iv["ansible_port"],
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(guest.lab_dir / "linux-guest-ssh" / "id_ed25519"),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    assert isinstance(iv["ansible_port"], int)
    lines = out(guest, "hostname; id -u; /usr/bin/python3 -c 'print(42)'; systemctl is-system-running").splitlines()
    assert lines[:3] == ["pruf-vm-web01", "0", "42"]
    assert lines[3] in ("running", "degraded")
    # Key only: no password or keyboard-interactive login.
    assert "PasswordAuthentication no" in out(guest, "sshd -T | grep -i '^passwordauthentication'").replace(
        "passwordauthentication", "PasswordAuthentication"
    )


def test_hostname_is_sanitised() -> None:
    assert guest_hostname("Prüf'VM web01", "4073ded1") == "pruf-vm-web01"
    assert guest_hostname("DB_01.example", "4073ded1") == "db-01-example"
    assert guest_hostname("活動訊號", "4073ded1-aaaa") == "vm-4073ded1"
    assert len(guest_hostname("x" * 100, "4073ded1")) == 63


def test_vmbus_tree_shows_what_the_host_offers(guest: LinuxGuest) -> None:
    expected = {IC_DEVICES[key].class_guid for key in DEFAULT_OFFERS} | STORAGE_AND_NETWORK
    assert class_ids(guest) == expected
    script = (
        "for d in /sys/bus/vmbus/devices/*; do "
        'echo "$(basename $d) $(cat $d/class_id) $(cat $d/device_id) $(basename $(readlink $d/driver)) '
        '$(readlink -f $d/driver)"; done'
    )
    for line in out(guest, script).splitlines():
        instance, class_id, device_id, driver, resolved = line.split()
        assert device_id == "{%s}" % instance
        assert resolved == f"/sys/bus/vmbus/drivers/{driver}"
        if class_id.strip("{}") not in STORAGE_AND_NETWORK:
            assert driver == "hv_utils"
    # hv_utils and hv_vmbus are loaded, the usual way to see it; the real /sys/module entries stay.
    assert out(guest, "test -d /sys/module/hv_utils && test -d /sys/module/hv_vmbus && ls /sys/module | wc -l") > "4"
    # The other buses stay real.
    assert "vmbus" in out(guest, "ls /sys/bus").split()
    assert len(out(guest, "ls /sys/bus").split()) > 1
    assert out(guest, "stat -c %F /dev/vmbus/hv_kvp /dev/vmbus/hv_vss").splitlines() == ["character special file"] * 2


def test_offers_change_live(guest: LinuxGuest, offers: Callable[[frozenset[str]], None]) -> None:
    offers(DEFAULT_OFFERS - {"key_value_pair_exchange"} | {"guest_service_interface"})
    ids = class_ids(guest)
    assert KVP.class_guid not in ids
    assert GSI.class_guid in ids
    assert out(guest, "ls /dev/vmbus").split() == ["hv_fcopy", "hv_vss"]
    offers(DEFAULT_OFFERS)
    assert class_ids(guest) == {IC_DEVICES[key].class_guid for key in DEFAULT_OFFERS} | STORAGE_AND_NETWORK
    assert out(guest, "ls /dev/vmbus").split() == ["hv_kvp", "hv_vss"]
    offers(frozenset())
    assert class_ids(guest) == STORAGE_AND_NETWORK
    assert out(guest, "ls /dev/vmbus") == ""
    with pytest.raises(ValueError, match="unknown integration service keys"):
        guest.offers_changed(frozenset({"Heartbeat"}))


def test_daemon_units_are_the_debian_units(guest: LinuxGuest) -> None:
    # hyperv-daemons ships its units disabled: udev starts them when the device appears.
    result = ssh(guest, "systemctl is-enabled hv-kvp-daemon.service")
    assert (result.returncode, result.stdout.strip()) == (1, "disabled")
    out(guest, "test -f /lib/systemd/system/hv-kvp-daemon.service && dpkg -s hyperv-daemons >/dev/null")
    assert "WantedBy=multi-user.target" in out(guest, "systemctl cat hv-kvp-daemon.service")
    out(guest, "systemctl enable hv-kvp-daemon.service")
    assert out(guest, "systemctl is-enabled hv-kvp-daemon.service") == "enabled"
    out(guest, "systemctl disable hv-kvp-daemon.service")
    assert ssh(guest, "systemctl is-enabled hv-kvp-daemon.service").stdout.strip() == "disabled"


def test_kvp_daemon_runs_while_offered(guest: LinuxGuest, offers: Callable[[frozenset[str]], None]) -> None:
    # Offered since boot: the udev stand-in started it, as udev does on a real guest.
    wait_for("hv-kvp-daemon active", lambda: unit_state(guest, KVP.unit) == "active")
    # The stand-in daemon records its state just after systemd marks the unit active: wait for it.
    wait_for("KVP status Ok", lambda: guest.ic_status("key_value_pair_exchange") == ("Ok", None))
    out(guest, f"systemctl restart {KVP.unit}")
    time.sleep(0.5)
    assert unit_state(guest, KVP.unit) == "active"
    assert guest.snapshot()["daemons"][KVP.unit] == "active"

    offers(DEFAULT_OFFERS - {"key_value_pair_exchange"})
    wait_for("hv-kvp-daemon to stop", lambda: unit_state(guest, KVP.unit) != "active")
    assert unit_state(guest, KVP.unit) == "failed"  # the daemon exits non-zero when its device goes
    wait_for(
        "KVP status LostCommunication",
        lambda: guest.ic_status("key_value_pair_exchange") == ("LostCommunication", None),
    )
    assert guest.snapshot()["daemons"][KVP.unit] == "failed"
    ssh(guest, f"systemctl start {KVP.unit}")
    wait_for("hv-kvp-daemon to fail", lambda: unit_state(guest, KVP.unit) == "failed")

    offers(DEFAULT_OFFERS)
    wait_for("hv-kvp-daemon restarted by the udev stand-in", lambda: unit_state(guest, KVP.unit) == "active")
    wait_for("KVP status Ok again", lambda: guest.ic_status("key_value_pair_exchange") == ("Ok", None))
    assert "/var/lib/hyperv/.kvp_pool_0" in out(guest, "ls -d /var/lib/hyperv/.kvp_pool_*")


def test_ic_status_and_heartbeat(guest: LinuxGuest) -> None:
    assert guest.ic_status("heartbeat") == ("Ok", "Ok")
    assert guest.ic_status("shutdown") == ("Ok", None)
    assert guest.ic_status("time_synchronization") == ("Ok", None)
    wait_for("hv-vss-daemon active", lambda: guest.ic_status("vss") == ("Ok", None))
    assert guest.heartbeat() == "OkApplicationsHealthy"
    snap = guest.snapshot()
    assert snap["container"] == "running"
    assert snap["offered"] == sorted(DEFAULT_OFFERS)
    assert set(snap["daemons"]) == {"hv-kvp-daemon.service", "hv-vss-daemon.service", "hv-fcopy-daemon.service"}


def test_hv_sock_loads_with_modprobe(guest: LinuxGuest) -> None:
    out(guest, "test ! -e /sys/module/hv_sock")
    out(guest, "modprobe hv_sock && test -d /sys/module/hv_sock && cat /sys/module/hv_sock/initstate")
    out(guest, "modprobe -r hv_sock && test ! -e /sys/module/hv_sock")
    result = ssh(guest, "modprobe -r hv_utils")
    assert result.returncode == 1
    assert "in use" in result.stderr


def test_module_lists_follow_modprobe(guest: LinuxGuest) -> None:
    """What community.general.modprobe reads: /proc/modules, then modules.builtin."""
    out(guest, 'test -f "/lib/modules/$(uname -r)/modules.builtin"')
    assert out(guest, 'grep -c hv_ "/lib/modules/$(uname -r)/modules.builtin" || true') == "0"
    # The lab's module table is /proc/modules when the kernel running the lab has one to bind over.
    table = "/proc/modules" if Path("/proc/modules").exists() else "/run/hvlab/proc-modules"
    boot = out(guest, f"cat {table}").splitlines()
    assert [line.split()[0] for line in boot] == ["hv_storvsc", "hv_netvsc", "hv_utils", "hv_vmbus"]
    assert boot[-1].split()[2:] == ["3", "hv_netvsc,hv_storvsc,hv_utils,", "Live", "0x0000000000000000"]
    assert ssh(guest, f"grep '^hv_sock ' {table}").returncode == 1
    out(guest, "modprobe -n hv_sock && modprobe -n -r hv_utils; test $? = 1 && test ! -e /sys/module/hv_sock")
    assert ssh(guest, "modprobe --first-time -r hv_sock").returncode == 1
    out(guest, "modprobe hv_sock")
    assert out(guest, f"grep '^hv_sock ' {table}").split()[1:] == ["28672", "0", "-", "Live", "0x0000000000000000"]
    out(guest, "test -d /sys/module/hv_sock && modprobe hv_sock")
    result = ssh(guest, "modprobe -n --first-time hv_sock")
    assert (result.returncode, result.stderr.strip()) == (
        1,
        "modprobe: ERROR: could not insert 'hv_sock': Module already in kernel",
    )
    out(guest, "modprobe -r hv_sock && test ! -e /sys/module/hv_sock")
    assert ssh(guest, f"grep '^hv_sock ' {table}").returncode == 1
    assert out(guest, f"cat {table}").splitlines() == boot


def running_processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry))
    return found


def mounts_mentioning(text: str) -> list[str]:
    lines = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                lines += [line for line in Path(f"/proc/{entry}/mountinfo").read_text().splitlines() if text in line]
            except OSError:
                continue
    return lines


def test_second_guest_runs_alongside_and_stops_cleanly(
    guest: LinuxGuest, guest_image: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = LinuxGuest("Zweite VM", "9a1c0d7e-2b4f-5e66-8c11-3d2a7f90e4b1", tmp_path_factory.mktemp("lab-b"))
    other.offers_changed(frozenset({"heartbeat", "guest_service_interface"}))
    try:
        other.start()
        assert other.inventory_vars() != guest.inventory_vars()
        assert out(other, "hostname") == "zweite-vm"
        assert other.ic_status("vss") == ("NoContact", None)  # never offered: its daemon never ran
        assert class_ids(other) == {IC_DEVICES["heartbeat"].class_guid, GSI.class_guid} | STORAGE_AND_NETWORK
        wait_for("hv-fcopy-daemon active", lambda: other.ic_status("guest_service_interface") == ("Ok", None))
        # The guest's disk survives a restart; the image does not see its changes.
        out(other, "echo kept > /root/marker")
        other.stop()
        assert not (linux_guest.IMAGE_DIR / "rootfs" / "root" / "marker").exists()
        other.start()
        assert out(other, "cat /root/marker") == "kept"
        assert other.ic_status("guest_service_interface") == ("Ok", None) or wait_for(
            "hv-fcopy-daemon active again", lambda: other.ic_status("guest_service_interface") == ("Ok", None)
        )
        pids = other.pids
        assert all(pids.values()), pids
    finally:
        other.stop()
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} ({pid}) still there"
    assert running_processes_mentioning(other.machine) == []
    assert running_processes_mentioning(str(other.dir)) == []
    assert mounts_mentioning(str(other.dir)) == []
    assert other.snapshot()["container"] == "stopped"
    assert other.heartbeat() == "NoContact"
    assert other.ic_status("heartbeat") == ("NoContact", None)
    # The first guest did not notice.
    assert out(guest, "hostname") == "pruf-vm-web01"
