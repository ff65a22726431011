"""Debian's real hv_kvp_daemon in a Linux guest double, driven through the lab's kernel side of
/dev/vmbus/hv_kvp (hvlab/kvp_channel.py, the preloaded hvt_standin.c; docs/dev/hyperv-facts.md
section 9). Needs root (a real guest container)."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from hvlab import linux_guest
from hvlab.kvp_channel import HV_E_FAIL, HV_S_CONT, HV_S_OK, KvpNotAnswering, KvpNotOffered
from hvlab.linux_guest import LinuxGuest
from labclient import build_guest_image, wait_for
from linux_guests import DEFAULT_OFFERS, booted, sh

pytestmark = pytest.mark.needs_root

UNIT = "hv-kvp-daemon.service"
POOL_DIR = "/var/lib/hyperv"
RECORD = 512 + 2048  # struct kvp_record in tools/hv/hv_kvp_daemon.c
TRICKY = [
    ("Prüf'VM $(whoami)", "Wert mit \"Anführungszeichen\", 'einfachen', `backticks` und $(rm -rf /)"),
    ("日本語のキー", "€ 🙂 ✓ — ünïcødé; a\\b\tc"),
    ("$HOME `id`", "; echo pwned #"),
]

# Run in the guest: append one record to a pool file the way a guest tool does, under the same
# whole-file fcntl write lock the daemon takes (kvp_acquire_lock).
WRITE_RECORD = r"""
import fcntl, os, sys
pool, key, value = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
fd = os.open("/var/lib/hyperv/.kvp_pool_" + pool, os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
os.lseek(fd, 0, os.SEEK_END)
os.write(fd, key.ljust(512, b"\0") + value.ljust(2048, b"\0"))
fcntl.lockf(fd, fcntl.LOCK_UN)
os.close(fd)
"""

# Run in the guest: hold a pool's lock until stdin closes.
HOLD_LOCK = r"""
import fcntl, os, sys
fd = os.open("/var/lib/hyperv/.kvp_pool_" + sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""

# Run in the guest: the MAC address of the adapter that has IPv4 address argv[1] (SIOCGIFADDR).
ADAPTER_WITH_ADDRESS = r"""
import fcntl, os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for name in sorted(os.listdir("/sys/class/net")):
    try:
        answer = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()))
    except OSError:
        continue
    if socket.inet_ntoa(answer[20:24]) == sys.argv[1]:
        print(open("/sys/class/net/%s/address" % name).read().strip())
        break
"""

# Run in the guest: open the device as a second process would, with or without the stand-in library.
OPEN_DEVICE = r"""
import errno, os
try:
    os.close(os.open("/dev/vmbus/hv_kvp", os.O_RDWR))
    print("opened")
except OSError as exc:
    print(errno.errorcode[exc.errno])
"""


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinuxGuest]:
    build_guest_image()
    yield from booted("kvp01", "3e0f6c2a-8b1d-4f5e-9a7c-6d2b1e0f4a31", tmp_path_factory.mktemp("lab-kvp"))


def pool_records(guest: LinuxGuest, pool: int) -> list[tuple[bytes, bytes]]:
    """The records of /var/lib/hyperv/.kvp_pool_N in the guest: (key, value) up to each one's NUL."""
    data = base64.b64decode(sh(guest, f"base64 -w0 {POOL_DIR}/.kvp_pool_{pool}"))
    assert len(data) % RECORD == 0, f"pool {pool} is {len(data)} bytes, not whole records"
    records = [data[i : i + RECORD] for i in range(0, len(data), RECORD)]
    return [(r[:512].split(b"\0", 1)[0], r[512:].split(b"\0", 1)[0]) for r in records]


def hold_lock(guest: LinuxGuest, pool: int) -> subprocess.Popen[str]:
    """A guest process holding pool's lock until its stdin closes (release_lock)."""
    assert guest.pids["systemd"] is not None
    holder = subprocess.Popen(
        ["nsenter", "-t", str(guest.pids["systemd"]), "-a", "--", "python3", "-c", HOLD_LOCK, str(pool)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=linux_guest.GUEST_ENV,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release_lock(holder: subprocess.Popen[str]) -> None:
    # Closing stdin ends the guest process; killing nsenter would leave its child holding the lock.
    assert holder.stdin is not None
    holder.stdin.close()
    try:
        assert holder.wait(timeout=10) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def start_unit(guest: LinuxGuest) -> None:
    """systemctl start, then wait for the daemon to register. On the project's machines the
    container's systemd now and then cannot set up the unit's cgroup after a stop ("Failed to kill
    control group ... Input/output error", then status=219/CGROUP): an artefact of the machine
    running the lab, not of the daemon, so that one failure is retried once."""
    sh(guest, f"systemctl start {UNIT}")
    deadline = time.monotonic() + 5
    while not guest.kvp.registered and time.monotonic() < deadline:
        status = sh(guest, f"systemctl show -p ExecMainStatus --value {UNIT}")
        if status == "219" and sh(guest, f"systemctl is-failed {UNIT} || true") == "failed":
            sh(guest, f"systemctl reset-failed {UNIT} && systemctl start {UNIT}")
            break
        time.sleep(0.1)
    ready(guest)


def ready(guest: LinuxGuest, what: str = "the KVP daemon to register") -> None:
    try:
        wait_for(what, lambda: guest.kvp.registered, timeout=20)
    except AssertionError as exc:
        journal = guest.run_in_guest(["journalctl", "-b", "--no-pager", "-n", "30", "-u", UNIT]).stdout
        raise AssertionError(f"{exc}; the unit's journal:\n{journal}") from None


def test_the_daemon_is_debians_own_binary_with_the_device_stand_in(guest: LinuxGuest) -> None:
    assert sh(guest, f"systemctl is-active {UNIT}") == "active"
    pid = sh(guest, f"systemctl show -p MainPID --value {UNIT}")
    assert sh(guest, f"readlink /proc/{pid}/exe") == "/usr/sbin/hv_kvp_daemon"
    assert sh(guest, f"tr '\\0' ' ' < /proc/{pid}/cmdline") == "/usr/sbin/hv_kvp_daemon -n"  # as packaged
    assert "/usr/local/lib/hvlab/libhvlab-kvp.so" in sh(guest, f"cat /proc/{pid}/maps")
    sh(guest, "dpkg -V hyperv-daemons")  # the package's files are unchanged
    journal = sh(guest, f"journalctl -b -u {UNIT} --no-pager -o cat")
    assert "KVP LIC Version: 3.1" in journal  # it read the kernel's registration answer (hv_kvp.c)
    assert guest.ic_status("key_value_pair_exchange") == ("Ok", None)
    # The daemon created its five pools (kvp_file_init), empty.
    assert sh(guest, f"stat -c '%n %s %a' {POOL_DIR}/.kvp_pool_*").splitlines() == [
        f"{POOL_DIR}/.kvp_pool_{n} 0 644" for n in range(5)
    ]


def test_host_item_goes_to_pool_0_and_delete_removes_it(guest: LinuxGuest) -> None:
    ready(guest)
    assert guest.kvp.set_item("hvlab_first", "one").status == HV_S_OK
    assert guest.kvp.set_item("hvlab_second", "two").status == HV_S_OK
    assert pool_records(guest, 0) == [(b"hvlab_first", b"one"), (b"hvlab_second", b"two")]
    assert guest.kvp.set_item("hvlab_first", "1").status == HV_S_OK  # modified in place
    assert pool_records(guest, 0) == [(b"hvlab_first", b"1"), (b"hvlab_second", b"two")]
    assert guest.kvp.enumerate_pool(0).items == [("hvlab_first", "1"), ("hvlab_second", "two")]

    assert guest.kvp.delete_item("hvlab_first").status == HV_S_OK
    assert pool_records(guest, 0) == [(b"hvlab_second", b"two")]
    assert guest.kvp.delete_item("hvlab_first").status == HV_S_CONT  # no such key (kvp_key_delete)
    assert guest.kvp.delete_item("hvlab_second").status == HV_S_OK
    assert pool_records(guest, 0) == []
    enumeration = guest.kvp.enumerate_pool(0)
    assert enumeration.items == [] and enumeration.complete


def test_non_ascii_and_shell_characters_round_trip_exactly(guest: LinuxGuest) -> None:
    ready(guest)
    for key, value in TRICKY:
        assert guest.kvp.set_item(key, value).ok
    assert pool_records(guest, 0) == [(k.encode(), v.encode()) for k, v in TRICKY]  # UTF-8 on disk
    assert guest.kvp.enumerate_pool(0).items == TRICKY
    for key, _value in TRICKY:
        assert guest.kvp.delete_item(key).ok
    assert pool_records(guest, 0) == []


def test_sizes_follow_the_kernel(guest: LinuxGuest) -> None:
    ready(guest)
    # The host's message holds 255 UTF-16 units of key plus NUL: more cannot be sent at all.
    with pytest.raises(ValueError, match="at most 255"):
        guest.kvp.set_item("k" * 256, "v")
    # The kernel converts to UTF-8 into 511 bytes: 200 euro signs (600 bytes) keep 170 (510 bytes),
    # and the daemon's value_size/key_size count the NUL (kvp_send_key).
    assert guest.kvp.set_item("€" * 200, "x" * 1023).ok
    assert pool_records(guest, 0) == [(("€" * 170).encode(), b"x" * 1023)]
    # Back to the host, kvp_respond_to_host converts into (2048 / 2) - 2 = 1022 UTF-16 units: the
    # longest value the host can send (1023 units) comes back one character short.
    assert guest.kvp.enumerate_pool(0).items == [("€" * 170, "x" * 1022)]
    assert guest.kvp.set_item("u32", 4294967295).ok  # REG_U32 / REG_U64 become decimal strings
    assert guest.kvp.set_item("u64", 2**64 - 1).ok
    assert pool_records(guest, 0)[1:] == [(b"u32", b"4294967295"), (b"u64", b"18446744073709551615")]
    for key in ("€" * 170, "u32", "u64"):
        assert guest.kvp.delete_item(key).ok


def test_get_answers_found_with_an_empty_value(guest: LinuxGuest) -> None:
    # hv_kvp.c sends GET with value_size 0 and reads the answer at kvp_enum_data's value offset.
    ready(guest)
    assert guest.kvp.set_item("hvlab_get", "a value").ok
    found = guest.kvp.get_item("hvlab_get", 0)
    assert (found.status, found.value) == (HV_S_OK, "")
    assert guest.kvp.get_item("hvlab_missing", 0).status == HV_S_CONT
    assert guest.kvp.get_item("FullyQualifiedDomainName", 2).status == HV_S_CONT  # pool 2's file is empty
    assert guest.kvp.delete_item("hvlab_get").ok


def test_guest_items_written_in_pool_1_are_enumerated(guest: LinuxGuest) -> None:
    ready(guest)
    for key, value in [("GuestTool", "running"), *TRICKY[:2]]:
        result = guest.run_in_guest(["python3", "-c", WRITE_RECORD, "1", key, value])
        assert result.returncode == 0, result.stderr
    enumeration = guest.kvp.guest_items()
    assert enumeration.items == [("GuestTool", "running"), *TRICKY[:2]]
    assert enumeration.end_status == HV_S_CONT
    sh(guest, f": > {POOL_DIR}/.kvp_pool_1")
    assert guest.kvp.guest_items().items == []


def test_the_daemon_honours_the_pool_lock(guest: LinuxGuest) -> None:
    ready(guest)
    holder = hold_lock(guest, 1)
    try:
        with pytest.raises(KvpNotAnswering, match="no answer"):
            guest.kvp.guest_items(timeout=2)  # the daemon waits in F_SETLKW
    finally:
        release_lock(holder)
    assert guest.kvp.guest_items(timeout=10).items == []  # the late answer went to the first request


def test_intrinsic_items_come_from_the_guest(guest: LinuxGuest) -> None:
    ready(guest)
    enumeration = guest.kvp.intrinsic_items()
    assert enumeration.end_status == HV_S_CONT
    items = enumeration.as_dict()
    assert [key for key, _value in enumeration.items] == [
        "FullyQualifiedDomainName",
        "IntegrationServicesVersion",
        "NetworkAddressIPv4",
        "NetworkAddressIPv6",
        "OSBuildNumber",
        "OSName",
        "OSMajorVersion",
        "OSMinorVersion",
        "OSVersion",
        "ProcessorArchitecture",
    ]  # the index order in include/uapi/linux/hyperv.h
    assert items["FullyQualifiedDomainName"] == sh(guest, "hostname -f")  # both ask getaddrinfo (AI_CANONNAME)
    assert items["FullyQualifiedDomainName"] == guest.hostname == "kvp01"
    assert items["IntegrationServicesVersion"] == "3.1"  # what the kernel told it at registration
    assert items["OSName"] == sh(guest, '. /etc/os-release && echo "$NAME"') == "Debian GNU/Linux"
    assert items["OSMajorVersion"] == sh(guest, '. /etc/os-release && echo "$VERSION_ID"') == "12"
    assert items["OSMinorVersion"] == ""
    assert items["OSBuildNumber"] == sh(guest, "uname -r")
    assert items["OSVersion"] == sh(guest, "uname -r").split("-")[0]
    assert items["ProcessorArchitecture"] == sh(guest, "uname -m")


def test_ip_info_of_an_adapter(guest: LinuxGuest) -> None:
    ready(guest)
    ipv4 = guest.kvp.intrinsic_items().as_dict()["NetworkAddressIPv4"]
    if not ipv4:
        pytest.skip("the machine running the lab has no non-loopback IPv4 address")
    first = ipv4.split(";")[0]
    # The guest shares this machine's network: find the adapter that has that address.
    result = guest.run_in_guest(["python3", "-c", ADAPTER_WITH_ADDRESS, first])
    mac = result.stdout.strip().upper()
    assert mac, f"no adapter has {first}: {result.stderr}"
    info = guest.kvp.ip_info(mac)
    assert info.status == HV_S_OK
    assert first in info.ip_addr.split(";")
    assert info.addr_family & 1  # ADDR_FAMILY_IPV4
    assert guest.kvp.ip_info("00:00:5E:00:53:FF").status == HV_E_FAIL  # no adapter with that MAC


def test_a_second_open_of_the_device_is_refused(guest: LinuxGuest) -> None:
    ready(guest)
    preloaded = guest.run_in_guest(
        ["env", "LD_PRELOAD=/usr/local/lib/hvlab/libhvlab-kvp.so", "python3", "-c", OPEN_DEVICE]
    )
    assert preloaded.stdout.strip() == "EBUSY"  # hvt_op_open: the daemon has it open
    plain = guest.run_in_guest(["python3", "-c", OPEN_DEVICE])
    assert plain.stdout.strip() == "ENODEV"  # without the library: a node no driver serves
    assert guest.kvp.registered


def test_a_restarted_daemon_registers_again(guest: LinuxGuest) -> None:
    ready(guest)
    for _round in range(3):  # the old daemon's close is released before the new one's open (no EBUSY)
        before = sh(guest, f"systemctl show -p MainPID --value {UNIT}")
        sh(guest, f"systemctl restart {UNIT}")
        ready(guest)
        assert sh(guest, f"systemctl show -p MainPID --value {UNIT}") != before
        assert guest.kvp.intrinsic_items().as_dict()["IntegrationServicesVersion"] == "3.1"
    assert "EBUSY" not in sh(guest, f"journalctl -b -u {UNIT} --no-pager -o cat")
    assert "Device or resource busy" not in sh(guest, f"journalctl -b -u {UNIT} --no-pager -o cat")


def test_stopped_daemon_is_not_answering(guest: LinuxGuest) -> None:
    ready(guest)
    sh(guest, f"systemctl stop {UNIT}")
    wait_for("the daemon to close the device", lambda: not guest.kvp.registered)
    assert guest.ic_status("key_value_pair_exchange") == ("LostCommunication", None)
    started = time.monotonic()
    with pytest.raises(KvpNotAnswering, match="not answering: no daemon has registered"):
        guest.kvp.set_item("hvlab_nobody", "home", timeout=1.5)
    assert 1.4 < time.monotonic() - started < 5
    with pytest.raises(KvpNotAnswering):
        guest.kvp.intrinsic_items(timeout=0.5)
    assert pool_records(guest, 0) == []

    start_unit(guest)
    assert guest.ic_status("key_value_pair_exchange") == ("Ok", None)
    assert guest.kvp.intrinsic_items().as_dict()["OSName"] == "Debian GNU/Linux"


def test_killed_daemon_mid_request_fails_the_request(guest: LinuxGuest) -> None:
    ready(guest)
    holder = hold_lock(guest, 0)
    try:
        with pytest.raises(KvpNotAnswering):
            guest.kvp.set_item("hvlab_blocked", "x", timeout=1)  # the daemon waits in F_SETLKW
        sh(guest, f"systemctl kill -s SIGKILL {UNIT}")
        wait_for("the daemon to be gone", lambda: not guest.kvp.registered)
    finally:
        release_lock(holder)
    # The unit has no Restart=: it stays failed, and the host gets no answers.
    assert sh(guest, f"systemctl is-failed {UNIT} || true") == "failed"
    with pytest.raises(KvpNotAnswering):
        guest.kvp.enumerate_pool(0, timeout=0.5)
    start_unit(guest)
    assert pool_records(guest, 0) == []  # the interrupted SET never happened


def test_the_daemon_follows_the_offer(guest: LinuxGuest, offers: Callable[[frozenset[str]], None]) -> None:
    ready(guest)
    assert guest.kvp.set_item("hvlab_kept", "across the withdrawal").ok
    offers(DEFAULT_OFFERS - {"key_value_pair_exchange"})
    wait_for("the daemon to exit", lambda: sh(guest, f"systemctl is-active {UNIT} || true") == "failed")
    journal = sh(guest, f"journalctl -b -u {UNIT} --no-pager -o cat")
    assert "read failed; error:9 Bad file descriptor" in journal  # hvt_op_read once the device is gone
    assert "open /dev/vmbus/hv_kvp failed; error: 2 No such file or directory" in journal
    with pytest.raises(KvpNotOffered):
        guest.kvp.set_item("hvlab_nowhere", "x", timeout=1)
    assert guest.ic_status("key_value_pair_exchange") == ("LostCommunication", None)

    offers(DEFAULT_OFFERS)
    ready(guest, "the daemon to register again")
    assert sh(guest, f"systemctl is-active {UNIT}") == "active"  # started by the udev stand-in
    assert guest.kvp.enumerate_pool(0).items == [("hvlab_kept", "across the withdrawal")]
    assert guest.kvp.delete_item("hvlab_kept").ok
