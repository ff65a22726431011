"""The Linux guest's Hyper-V PTP clock stand-in (image README, stand-in 8): /dev/ptp_hyperv follows the
host's Time Synchronization offer, the preloaded library answers PTP ioctls the way the hyperv clock
does, and chronyd runs with the PHC refclock in the container. Needs root (a real guest container)."""

from __future__ import annotations

import errno
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hvlab import linux_guest
from hvlab.linux_guest import LinuxGuest
from labclient import build_guest_image, wait_for
from linux_guests import DEFAULT_OFFERS, booted, sh

pytestmark = pytest.mark.needs_root

PRELOAD = "/usr/local/lib/hvlab/libhvlab-phc.so"
REFCLOCK = "refclock PHC /dev/ptp_hyperv poll 3 dpoll -2 offset 0 stratum 2"

# Run inside the guest: the PTP ioctls chronyd uses, on /dev/ptp_hyperv (linux/ptp_clock.h numbers).
PROBE = r"""
import errno, fcntl, json, os, struct, sys, time
def ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (ord("=") << 8) | nr
GETCAPS, SYS_OFFSET, SYS_OFFSET_EXTENDED = ioc(2, 1, 80), ioc(1, 5, 16 + 51 * 16), ioc(3, 9, 16 + 75 * 16)
def call(fd, request, buf):
    try:
        fcntl.ioctl(fd, request, buf)
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
fd = os.open("/dev/ptp_hyperv", os.O_RDONLY)
caps = bytearray(80)
result = {"caps": call(fd, GETCAPS, caps), "caps_zero": not any(caps)}
buf = bytearray(16 + 51 * 16)
struct.pack_into("I", buf, 0, 3)
result["offset"] = call(fd, SYS_OFFSET, buf)
secs = [struct.unpack_from("q", buf, 16 + 16 * i)[0] for i in range(7)]
result["offset_near_now"] = all(abs(s - time.time()) < 5 for s in secs)
result["extended"] = call(fd, SYS_OFFSET_EXTENDED, bytearray(16 + 75 * 16))
sys.stdout.write(json.dumps(result) + "\n")
sys.stdout.flush()
sys.stdin.readline()  # the test withdraws the service now
result = {"caps_after_withdrawal": call(fd, GETCAPS, bytearray(80))}
sys.stdout.write(json.dumps(result) + "\n")
"""


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinuxGuest]:
    build_guest_image()
    yield from booted("ptp01", "5b0c8f2e-4a7d-4e36-9b1f-2f6d2c1a9e01", tmp_path_factory.mktemp("lab-ptp"))


def ptp_link(guest: LinuxGuest) -> str:
    return sh(guest, "readlink /dev/ptp_hyperv || echo none")


def test_ptp_hyperv_follows_the_time_synchronization_offer(
    guest: LinuxGuest, offers: Callable[[frozenset[str]], None]
) -> None:
    assert ptp_link(guest) == "ptp0"
    assert sh(guest, "stat -c '%F %a %U' /dev/ptp0") == "regular empty file 600 root"
    offers(DEFAULT_OFFERS - {"time_synchronization"})
    wait_for("/dev/ptp_hyperv to go", lambda: ptp_link(guest) == "none")
    assert sh(guest, "ls /dev | grep -c '^ptp' || true") == "0"
    offers(DEFAULT_OFFERS - {"heartbeat"})  # other services do not matter
    wait_for("/dev/ptp_hyperv to come back", lambda: ptp_link(guest) == "ptp0")
    assert sh(guest, "test -e /dev/ptp_hyperv && echo exists") == "exists"


def test_preloaded_library_answers_as_the_hyperv_clock(
    guest: LinuxGuest, offers: Callable[[frozenset[str]], None], tmp_path: Path
) -> None:
    plain = guest.run_in_guest(["python3", "-c", PROBE.replace("sys.stdin.readline()", "pass")], timeout=10)
    assert json.loads(plain.stdout.splitlines()[0])["caps"] == "ENOTTY"  # a plain file: no clock without it

    assert guest.pids["systemd"] is not None
    proc = subprocess.Popen(
        [
            "nsenter",
            "-t",
            str(guest.pids["systemd"]),
            "-a",
            "--",
            "env",
            f"LD_PRELOAD={PRELOAD}",
            "python3",
            "-c",
            PROBE,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=linux_guest.GUEST_ENV,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = json.loads(proc.stdout.readline())
        assert first == {
            "caps": "ok",
            "caps_zero": True,
            "offset": "ok",
            "offset_near_now": True,
            "extended": errno.errorcode[errno.EOPNOTSUPP],  # the hyperv clock has no gettimex64
        }
        offers(DEFAULT_OFFERS - {"time_synchronization"})
        wait_for("/dev/ptp_hyperv to go", lambda: ptp_link(guest) == "none")
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"caps_after_withdrawal": "ENODEV"}  # clock unregistered
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_chronyd_runs_with_the_phc_refclock(guest: LinuxGuest) -> None:
    sh(guest, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chrony >/dev/null 2>&1", 600)
    assert sh(guest, "systemctl is-active chrony.service") == "active"  # started by the package, as on Debian
    sh(guest, f"printf '%s\\n' '{REFCLOCK}' > /etc/chrony/conf.d/ptp.conf && systemctl restart chrony.service")
    assert sh(guest, "systemctl is-active chrony.service") == "active"
    assert "Disabled control of system clock" in sh(guest, "journalctl -b -u chrony.service --no-pager")

    def phc_reached() -> bool:
        lines = [line.split(",") for line in sh(guest, "chronyc -n -c sources").splitlines()]
        return any(fields[2] == "PHC0" and fields[5] != "0" for fields in lines)  # reach register

    wait_for("chronyd to read PHC0", phc_reached, timeout=30)
