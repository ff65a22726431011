"""Debian's real hv_fcopy_daemon in a Linux guest double, driven through the lab's kernel side of
/dev/vmbus/hv_fcopy (hvlab/fcopy_channel.py over hvlab/hvt_channel.py, the preloaded hvt_standin.c;
docs/dev/hyperv-facts.md section 9). The file in the guest is written by the real daemon. Needs root
(a real guest container)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest
from hvlab.fcopy_channel import (
    CREATE_PATH,
    DATA_FRAGMENT,
    HV_E_FAIL,
    HV_ERROR_ALREADY_EXISTS,
    HV_S_OK,
    FcopyNotOffered,
)
from hvlab.linux_guest import LinuxGuest
from labclient import build_guest_image, wait_for
from linux_guests import DEFAULT_OFFERS, booted, sh

pytestmark = pytest.mark.needs_root

UNIT = "hv-fcopy-daemon.service"
GSI = "guest_service_interface"


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinuxGuest]:
    build_guest_image()
    for vm in booted("fcopy01", "5b2d7e41-9c3a-4f18-b6e0-2a7d94c1f053", tmp_path_factory.mktemp("lab-fcopy")):
        vm.offers_changed(DEFAULT_OFFERS | {GSI})
        yield vm


def registered(guest: LinuxGuest) -> None:
    wait_for("the file copy daemon to register", lambda: guest.fcopy.registered, timeout=20)


def sha256_in_guest(guest: LinuxGuest, path: str) -> str:
    return sh(guest, "sha256sum -- '%s'" % path.replace("'", "'\\''")).split()[0]


def test_the_real_daemon_registers_and_the_service_reports_ok(guest: LinuxGuest) -> None:
    registered(guest)
    assert guest.fcopy.daemon_version == 1  # FCOPY_CURRENT_VERSION: it read the kernel's version back
    assert guest.ic_status(GSI) == ("Ok", None)
    pid = sh(guest, f"systemctl show -p MainPID --value {UNIT}")
    assert "/usr/local/lib/hvlab/libhvlab-fcopy.so" in sh(guest, f"cat /proc/{pid}/maps")
    assert sh(guest, f"readlink /proc/{pid}/exe") == "/usr/sbin/hv_fcopy_daemon"


def test_a_3_mb_file_with_spaces_in_its_name_arrives_byte_identical(guest: LinuxGuest) -> None:
    registered(guest)
    sh(guest, "mkdir -p '/srv/drop zone'")
    data = os.urandom(3 * 1024 * 1024 + 123)  # not a multiple of the fragment size
    destination = "/srv/drop zone/my file ünï.bin"
    answer = guest.fcopy.copy_file(data, destination, overwrite=False, create_path=False, timeout=60)
    assert answer.status == HV_S_OK, hex(answer.status)
    assert sha256_in_guest(guest, destination) == hashlib.sha256(data).hexdigest()
    assert sh(guest, "stat -c %s -- '/srv/drop zone/my file ünï.bin'") == str(len(data))
    assert len(data) // DATA_FRAGMENT > 500  # many fragments, each one message through the device


def test_create_path_makes_the_directories_before_the_last_slash_of_the_path_it_is_sent(guest: LinuxGuest) -> None:
    # hv_start_fcopy creates each component of path_name that a '/' follows. The lab sends the
    # destination's directory without a trailing '/' (the host's split is not documented): its last
    # component is then not created, and the copy fails. Only a real host can say which it sends.
    registered(guest)
    failed = guest.fcopy.copy_file(b"x", "/srv/new a/new b/leaf/f", overwrite=False, create_path=True)
    assert failed.status == HV_E_FAIL, hex(failed.status)
    sh(guest, "test -d '/srv/new a/new b' && test ! -e '/srv/new a/new b/leaf'")
    done = guest.fcopy.start_copy("f", "/srv/new a/new b/leaf/", 1, flags=CREATE_PATH)  # with the '/'
    assert done.ok and guest.fcopy.write_data(0, b"x").ok and guest.fcopy.complete().ok
    assert sh(guest, "cat '/srv/new a/new b/leaf/f'") == "x"


def test_an_existing_file_is_refused_without_overwrite_and_replaced_with_it(guest: LinuxGuest) -> None:
    registered(guest)
    sh(guest, "mkdir -p /srv/keep && printf old > /srv/keep/a.txt")
    refused = guest.fcopy.copy_file(b"new", "/srv/keep/a.txt", overwrite=False, create_path=False)
    assert refused.status == HV_ERROR_ALREADY_EXISTS, hex(refused.status)  # hv_start_fcopy, !OVER_WRITE
    assert sh(guest, "cat /srv/keep/a.txt") == "old"
    replaced = guest.fcopy.copy_file(b"new", "/srv/keep/a.txt", overwrite=True, create_path=False)
    assert replaced.ok and sh(guest, "cat /srv/keep/a.txt") == "new"


def test_a_missing_directory_without_create_path_fails_and_cancel_removes_a_partial_file(guest: LinuxGuest) -> None:
    registered(guest)
    missing = guest.fcopy.copy_file(b"x", "/srv/no such dir/f", overwrite=False, create_path=False)
    assert not missing.ok
    sh(guest, "test ! -e '/srv/no such dir'")
    started = guest.fcopy.start_copy("partial.bin", "/srv/keep", 10, flags=0)
    assert started.ok and guest.fcopy.write_data(0, b"12345").ok
    sh(guest, "test -e /srv/keep/partial.bin")
    assert guest.fcopy.cancel().ok
    sh(guest, "test ! -e /srv/keep/partial.bin")  # hv_copy_cancel: close and unlink


def test_withdrawing_the_service_stops_the_daemon_and_offering_it_again_brings_it_back(guest: LinuxGuest) -> None:
    registered(guest)
    guest.offers_changed(DEFAULT_OFFERS)
    wait_for("the daemon to lose its device", lambda: not guest.fcopy.registered, timeout=20)
    with pytest.raises(FcopyNotOffered):
        guest.fcopy.copy_file(b"x", "/srv/keep/b", overwrite=True, create_path=False, timeout=2)
    assert guest.ic_status(GSI)[0] in ("LostCommunication", "NoContact")
    guest.offers_changed(DEFAULT_OFFERS | {GSI})
    registered(guest)
    assert guest.fcopy.copy_file(b"back", "/srv/keep/b", overwrite=True, create_path=False).ok
    assert sh(guest, "cat /srv/keep/b") == "back"
