"""vm_file_copy end to end: ansible-playbook, the file sent by ansible's own winrm put_file into ansible's
temporary directory on the lab host, the host library's Copy-VMFile, and the real hv_fcopy_daemon in the
lab's Linux guest writing the file (kernel messages from the lab's stand-in of /dev/vmbus/hv_fcopy); the
Windows guest double's vmicguestinterface for the Windows guest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from harness import run_playbook
from support.labspec import CONNECTIONS

LINUX_DEST = "/srv/seed files/seed config.bin"
WINDOWS_DEST = "C:\\ProgramData\\Seed\\seed config.bin"
GSI = {"guest_service_interface": True}
LAB = {
    "host": {"name": "hv01"},
    "vms": [
        {"name": "lin01", "guest": "linux", "integration_services": GSI},
        {"name": "web01", "guest": "windows", "integration_services": GSI},
        {"name": "nogsi", "guest": "windows"},
    ],
}


def _copy(src: Path, name: str = "copy", **extra: object) -> dict:
    args = {
        "src": str(src),
        "vms": [{"name": "lin01", "dest": LINUX_DEST}, {"name": "web01", "dest": WINDOWS_DEST, "create_dirs": True}],
        **extra,
    }
    return {"name": name, "hyperv.integration.vm_file_copy": args}


def _in_linux_guest(tmp_path: Path, lab, path: str, name: str) -> dict:
    """stat of the file in the Linux guest, over its own ssh connection: checksum, size, mode, owner."""
    stat = {"name": "stat", "ansible.builtin.stat": {"path": path, "checksum_algorithm": "sha256"}}
    run = run_playbook(tmp_path, lab, [stat], hosts="linux_guests", name=name)
    assert run.rc == 0, run.stdout
    return run.result("stat")["result"]["stat"]


def _host(lab) -> dict:
    state = lab.state()
    return {"files": state["host"]["files"], "counters": state["host"]["counters"]}


@pytest.mark.needs_root
# ansible's own put_file differs per connection: a WinRS command, a PSRP pipeline, an sftp session.
@pytest.mark.parametrize("connection", CONNECTIONS)
def test_one_task_copies_to_a_linux_and_a_windows_guest_then_reruns_change_nothing(
    tmp_path: Path, start_lab, connection: str
) -> None:
    lab = start_lab(LAB, connection=connection)
    # The directory the file goes to exists in the Linux guest (create_dirs on Linux: hyperv-facts section 11).
    mkdir = {"name": "mkdir", "ansible.builtin.file": {"path": os.path.dirname(LINUX_DEST), "state": "directory"}}
    assert run_playbook(tmp_path, lab, [mkdir], hosts="linux_guests", name="mkdir").rc == 0
    src = tmp_path / "seed config.bin"
    data = os.urandom(3 * 1024 * 1024)
    src.write_bytes(data)

    check = run_playbook(tmp_path, lab, [_copy(src)], check=True, diff=True, name="check")
    assert check.rc == 0 and check.result("copy")["result"]["changed"] is True, check.stdout
    assert _host(lab)["counters"]["put_files"] == 0 and lab.state()["counters"]["writes"] == 0

    first = run_playbook(tmp_path, lab, [_copy(src)], name="first")
    assert first.rc == 0, first.stdout
    result = first.result("copy")["result"]
    assert [vm["changed"] for vm in result["vms"]] == [True, True], result
    host = _host(lab)
    assert host["files"] == {} and host["counters"]["put_files"] == 1  # sent once, gone afterwards
    # Written by the real daemon: byte-identical, with the mode hv_fcopy_daemon creates files with.
    stat = _in_linux_guest(tmp_path, lab, LINUX_DEST, "stat1")
    assert stat["checksum"] == hashlib.sha256(data).hexdigest() and stat["size"] == len(data), stat
    assert stat["mode"] == "0744" and stat["pw_name"] == "root", stat
    windows = lab.state()["vms"]["web01"]["guest"]["files"]
    assert windows[WINDOWS_DEST] == len(data), windows

    again = run_playbook(tmp_path, lab, [_copy(src)], name="again")
    assert again.rc == 0 and again.recap("hv01")["changed"] == 0, again.stdout
    assert _host(lab)["counters"]["put_files"] == 1  # nothing sent

    src.write_bytes(data[:-1] + b"!")
    changed = run_playbook(tmp_path, lab, [_copy(src)], name="changed")
    assert changed.rc == 0 and changed.recap("hv01")["changed"] == 1, changed.stdout
    stat = _in_linux_guest(tmp_path, lab, LINUX_DEST, "stat2")
    assert stat["checksum"] == hashlib.sha256(data[:-1] + b"!").hexdigest(), stat
    assert _host(lab)["files"] == {}


@pytest.mark.needs_root
def test_a_vm_with_guest_service_interface_disabled_stops_every_copy(tmp_path: Path, start_lab) -> None:
    lab = start_lab(LAB)
    src = tmp_path / "seed.txt"
    src.write_text("seed\n")
    task = {
        "name": "copy",
        "hyperv.integration.vm_file_copy": {
            "name": ["lin01", "web01", "nogsi"],
            "src": str(src),
            "dest": "/tmp/seed.txt",
        },
    }
    run = run_playbook(tmp_path, lab, [task], name="nogsi")
    assert run.rc != 0, run.stdout
    msg = run.result("copy")["result"]["msg"]
    assert "VM 'nogsi' has Guest Service Interface disabled" in msg and "Nothing was copied to any VM" in msg, msg
    host = _host(lab)
    assert host["files"] == {} and host["counters"]["put_files"] == 0 and lab.state()["counters"]["writes"] == 0
    assert _in_linux_guest(tmp_path, lab, "/tmp/seed.txt", "stat")["exists"] is False


@pytest.mark.needs_root
def test_a_50_mb_file_and_a_failed_copy_leave_no_temporary_file_on_the_host(tmp_path: Path, start_lab) -> None:
    lab = start_lab(
        {"host": {"name": "hv01"}, "vms": [{"name": "lin01", "guest": "linux", "integration_services": GSI}]}
    )
    src = tmp_path / "big image.bin"
    data = os.urandom(50 * 1024 * 1024)
    src.write_bytes(data)
    task = {
        "name": "copy",
        "hyperv.integration.vm_file_copy": {"name": "lin01", "src": str(src), "dest": "/tmp/big image.bin"},
    }
    big = run_playbook(tmp_path, lab, [task], name="big")
    assert big.rc == 0 and big.result("copy")["result"]["changed"] is True, big.stdout
    assert _in_linux_guest(tmp_path, lab, "/tmp/big image.bin", "stat")["checksum"] == hashlib.sha256(data).hexdigest()
    assert _host(lab)["files"] == {}

    # A directory the guest does not have, without create_dirs: the real daemon refuses, the task fails
    # naming the VM, and the upload is gone all the same.
    missing = {
        "name": "copy",
        "hyperv.integration.vm_file_copy": {"name": "lin01", "src": str(src), "dest": "/nowhere/x.bin"},
    }
    failed = run_playbook(tmp_path, lab, [missing], name="failed")
    assert failed.rc != 0, failed.stdout
    msg = failed.result("copy")["result"]["msg"]
    assert "VM 'lin01'" in msg and "failed to initiate copying files to the guest" in msg, msg
    assert _host(lab)["files"] == {} and _host(lab)["counters"]["put_files"] == 2
