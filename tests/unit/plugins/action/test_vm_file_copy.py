"""vm_file_copy against the in-process lab (tests/support/lab_actions.py), Windows guest doubles: one upload
for many VMs, the record that makes a rerun copy nothing, check mode and diff, readiness checked before
anything is sent, destination rules, failures part-way, and the upload removed from the host in every case.
The Linux guest's real hv_fcopy_daemon is in tests/integration/test_vm_file_copy.py."""

from __future__ import annotations

import hashlib
import typing as t
from pathlib import Path

import pytest
from hvlab import library_reads
from support.lab_actions import lab_connection, run_with
from support.labspec import lab_spec, vm_spec

from ansible_collections.hyperv.integration.plugins.action import vm_file_copy

ACTION = vm_file_copy.ActionModule
GSI_ON = {"integration_services": {"guest_service_interface": True}}
DEST = "C:\\Seed\\seed config.json"
RECORD = "hyperv.integration.vm_file_copy:" + DEST


def _lab(*vms: dict[str, t.Any], **extra: t.Any) -> t.Any:
    default = (vm_spec("web01", "windows", **GSI_ON), vm_spec("web02", "windows", **GSI_ON))
    return lab_connection("hv01", lab_spec(*(vms or default), **extra))


def _run(connection: t.Any, args: dict[str, t.Any], check_mode: bool = False, put_file: t.Any = None) -> dict:
    before = len(connection.requests)
    result = run_with(ACTION, args, "hv01", connection.execute, check_mode, put_file=put_file or connection.put_file)
    for library, request in zip(connection.libraries[before:], connection.requests[before:], strict=True):
        assert library_reads.strict_mode_violation(library, request) is None, request
    return result


def _source(tmp_path: Path, data: bytes, name: str = "seed config.json") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _guest_file(connection: t.Any, vm: str, path: str = DEST) -> bytes | None:
    guest = next(v.guest for v in connection.lab.host.vms if v.name == vm)
    return guest.files.read_bytes(path) if guest.files.exists(path) else None


def _host_files(connection: t.Any) -> dict[str, int]:
    """The host's files, and no directory of ansible's left in the user's temporary directory."""
    left = [d for d in connection.lab.host_files.directories() if "ansible-tmp-" in d]
    assert left == [], left
    return connection.lab.host_files.listing()


def _counter(connection: t.Any, name: str) -> int:
    return int(connection.lab.host.counters.snapshot()[name])


def test_one_upload_for_two_vms_then_a_rerun_sends_nothing(tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * 4096)  # 3 MB, every byte value
    src = _source(tmp_path, data)
    connection = _lab()
    result = _run(connection, {"name": ["web01", "web02"], "src": src, "dest": DEST, "create_dirs": True})
    assert "failed" not in result and result["changed"] is True, result
    assert result["checksum"] == hashlib.sha256(data).hexdigest() and result["size"] == len(data)
    assert [vm["changed"] for vm in result["vms"]] == [True, True]
    assert _guest_file(connection, "web01") == data and _guest_file(connection, "web02") == data
    # One upload whatever the number of VMs, gone afterwards; the plan, then the copy: two library calls.
    assert len(connection.put_files) == 1 and _host_files(connection) == {}
    assert [r["operation"] for r in connection.requests] == ["vm_file_copy_plan", "vm_file_copy"]
    assert len(connection.ansible_commands) == 1  # ansible's mkdtemp: four PowerShell processes in all
    record = "sha256:" + hashlib.sha256(data).hexdigest()
    assert all(vm.kvp_host_items[RECORD] == record for vm in connection.lab.host.vms)

    again = _run(connection, {"name": ["web01", "web02"], "src": src, "dest": DEST, "create_dirs": True})
    assert again["changed"] is False and len(connection.put_files) == 1, again  # nothing sent
    assert [r["operation"] for r in connection.requests[2:]] == ["vm_file_copy_plan"]
    assert len(connection.ansible_commands) == 1  # the rerun: one process, nothing else
    assert [vm["previous_checksum"] for vm in again["vms"]] == [result["checksum"]] * 2


def test_a_changed_source_is_copied_again_and_force_copies_an_unchanged_one(tmp_path: Path) -> None:
    connection = _lab()
    args = {"name": "web01", "src": _source(tmp_path, b"one\n"), "dest": DEST, "create_dirs": True}
    assert _run(connection, args)["changed"] is True
    args["src"] = _source(tmp_path, b"two\n")
    changed = _run(connection, args)
    assert changed["changed"] is True and _guest_file(connection, "web01") == b"two\n", changed
    assert changed["diff"]["before"] == {"web01": {DEST: "sha256:" + hashlib.sha256(b"one\n").hexdigest()}}
    assert changed["diff"]["after"] == {"web01": {DEST: "sha256:" + hashlib.sha256(b"two\n").hexdigest()}}
    forced = _run(connection, dict(args, force=True))
    assert forced["changed"] is True and len(connection.put_files) == 3, forced


def test_check_mode_sends_copies_and_writes_nothing_and_says_what_would_be_copied(tmp_path: Path) -> None:
    connection = _lab()
    result = _run(connection, {"name": ["web01", "web02"], "src": _source(tmp_path, b"x"), "dest": DEST}, True)
    assert result["changed"] is True and [vm["changed"] for vm in result["vms"]] == [True, True], result
    assert set(result["diff"]["after"]) == {"web01", "web02"} and result["diff"]["before"] == {}
    assert connection.put_files == [] and _counter(connection, "writes") == 0
    assert _counter(connection, "file_copies") == 0 and _guest_file(connection, "web01") is None
    assert [r["operation"] for r in connection.requests] == ["vm_file_copy_plan"]


def test_a_vm_that_cannot_take_the_file_stops_every_copy_before_anything_is_sent(tmp_path: Path) -> None:
    connection = _lab(
        vm_spec("web01", "windows", **GSI_ON),
        vm_spec("nogsi", "windows"),
        vm_spec("off01", "windows", "Off", **GSI_ON),
        vm_spec("quiet", "windows", guest_services={"vmicguestinterface": {"status": "Stopped"}}, **GSI_ON),
    )
    result = _run(
        connection, {"name": ["web01", "nogsi", "off01", "quiet"], "src": _source(tmp_path, b"x"), "dest": DEST}
    )
    assert result["failed"] is True and result["changed"] is False, result
    msg = result["msg"]
    assert "VM 'nogsi' has Guest Service Interface disabled" in msg and "vm_integration_service" in msg, msg
    assert "VM 'off01' is Off" in msg and "VM 'quiet' does not answer Guest Service Interface" in msg, msg
    assert "vmicguestinterface" in msg and "Nothing was copied to any VM" in msg and "web01" not in msg, msg
    assert connection.put_files == [] and _guest_file(connection, "web01") is None
    assert _counter(connection, "writes") == 0


def test_skip_unready_copies_to_the_others_with_a_warning(tmp_path: Path) -> None:
    connection = _lab(vm_spec("web01", "windows", **GSI_ON), vm_spec("nogsi", "windows"))
    args = {"name": ["web01", "nogsi"], "src": _source(tmp_path, b"x"), "dest": DEST, "create_dirs": True}
    result = _run(connection, dict(args, skip_unready=True))
    assert "failed" not in result and result["changed"] is True, result
    assert [(vm["name"], vm["changed"], bool(vm["skipped"])) for vm in result["vms"]] == [
        ("web01", True, False),
        ("nogsi", False, True),
    ]
    assert "nogsi" in result["warnings"][0] and _guest_file(connection, "web01") == b"x"


@pytest.mark.parametrize(
    ("dest", "says"),
    [
        ("relative/file", "must be the absolute path of a file in the guest"),
        ("/opt/app/Grüße.txt", "outside ASCII"),
        ("/opt/app\\file", "backslash"),
        ("/opt/app/", "must end with the file's name"),
        ("/opt/" + "d" * 260 + "/f", "its directory is 265 characters"),
        ("/opt/%HOME%/f", "%NAME%"),
        ("C:\\Seed\\", "must end with the file's name"),
        ("C:\\Seed\\a|b", "holds |"),
        ("C:\\Seed\\NUL.txt", "device name"),
        ("C:/Seed/file", "holds a /"),
        ("C:\\Seed\\name.", "ends with a dot or a space"),
        ("C:\\" + "d" * 300, "at most 259"),
        ("C:\\" + "d" * 230, "too long to record"),
        ("/tmp/a\nb", "control character"),
    ],
)
def test_destinations_the_guest_would_not_write_as_given_are_refused_before_anything_is_sent(
    tmp_path: Path, dest: str, says: str
) -> None:
    connection = _lab()
    result = _run(connection, {"name": "web01", "src": _source(tmp_path, b"x"), "dest": dest})
    assert result["failed"] is True and says in result["msg"] and "Nothing was copied" in result["msg"], result
    assert connection.requests == [] and connection.put_files == []


def test_a_copy_that_fails_on_one_vm_names_it_and_the_upload_is_still_removed(tmp_path: Path) -> None:
    # Without create_dirs, a guest whose directory is missing refuses (web02 has it made first).
    connection = _lab()
    web02 = next(vm.guest for vm in connection.lab.host.vms if vm.name == "web02")
    web02.files.make_dirs("C:\\Seed")
    result = _run(connection, {"name": ["web01", "web02"], "src": _source(tmp_path, b"x"), "dest": DEST})
    assert result["failed"] is True and result["changed"] is True, result
    assert "VM 'web01'" in result["msg"] and "0x80070003" in result["msg"] and "Copied to: web02" in result["msg"]
    assert _host_files(connection) == {}
    assert RECORD not in connection.lab.host.vms[0].kvp_host_items  # no record: the rerun copies to it
    rerun = _run(
        connection, {"name": ["web01", "web02"], "src": _source(tmp_path, b"x"), "dest": DEST, "create_dirs": True}
    )
    assert "failed" not in rerun and [vm["changed"] for vm in rerun["vms"]] == [True, False], rerun


def test_a_failed_upload_is_removed_from_the_host(tmp_path: Path) -> None:
    connection = _lab()

    def breaks_half_way(in_path: str, out_path: str) -> None:
        with connection.lab.host_files.open_create(out_path) as writer:
            writer.write(b"half")  # what a broken transfer leaves behind
        raise OSError("connection reset by peer")

    result = _run(connection, {"name": "web01", "src": _source(tmp_path, b"x"), "dest": DEST}, put_file=breaks_half_way)
    assert result["failed"] is True and "connection reset by peer" in result["msg"], result
    assert "Nothing was copied to any VM" in result["msg"] and "was removed" in result["msg"], result
    assert _host_files(connection) == {} and _guest_file(connection, "web01") is None


def test_an_upload_whose_copy_call_got_no_answer_is_removed_by_a_cleanup_call(tmp_path: Path) -> None:
    connection = _lab()

    def loses_the_copy(cmd: str, sudoable: bool = True, in_data: bytes | None = None, **kwargs: t.Any) -> dict:
        answer = connection.execute(cmd, sudoable, in_data, **kwargs)
        if connection.requests[-1]["operation"] == "vm_file_copy" and connection.requests[-1]["params"]["vm_names"]:
            connection.lab.host_files.add_file(connection.requests[-1]["params"]["source"], b"x")  # not removed
            return {"rc": 1, "stdout": "", "stderr": "the WinRM connection broke"}
        return answer

    args = {"name": "web01", "src": _source(tmp_path, b"x"), "dest": DEST, "create_dirs": True}
    result = run_with(ACTION, args, "hv01", loses_the_copy, put_file=connection.put_file)
    assert result["failed"] is True and "rerun the task" in result["msg"], result
    assert "was removed" in result["msg"] and _host_files(connection) == {}, result
    cleanup = connection.requests[-1]["params"]
    assert cleanup["vm_names"] == [] and "ansible-tmp-" in cleanup["upload_dir"], cleanup
    assert not cleanup["upload_dir"].endswith("\\."), cleanup  # the directory itself, not "<dir>\."


def test_remote_src_copies_a_host_file_and_leaves_it(tmp_path: Path) -> None:
    host_file = "C:\\Deploy\\[x] unattend.xml"  # brackets: taken literally, no wildcard
    connection = lab_connection(
        "hv01",
        {
            "host": {"name": "hv01", "language": "en-US", "files": [{"path": host_file, "text": "<unattend/>"}]},
            "vms": [vm_spec("web01", "windows", **GSI_ON)],
        },
    )
    args = {"name": "web01", "src": host_file, "remote_src": True, "dest": DEST, "create_dirs": True}
    result = _run(connection, args)
    assert "failed" not in result and result["changed"] is True, result
    assert result["checksum"] == hashlib.sha256(b"<unattend/>").hexdigest()
    assert connection.put_files == [] and _guest_file(connection, "web01") == b"<unattend/>"
    assert _host_files(connection) == {host_file: len(b"<unattend/>")}  # the user's file stays
    missing = _run(connection, dict(args, src="C:\\Deploy\\nothing.xml"))
    assert missing["failed"] is True and "cannot be read on Hyper-V host hv01" in missing["msg"], missing


def test_src_on_the_controller_must_be_one_file(tmp_path: Path) -> None:
    connection = _lab()
    result = _run(connection, {"name": "web01", "src": str(tmp_path), "dest": DEST})
    assert result["failed"] is True and "is a directory" in result["msg"] and connection.requests == [], result
    gone = _run(connection, {"name": "web01", "src": str(tmp_path / "nothing"), "dest": DEST})
    assert gone["failed"] is True and "Nothing was copied" in gone["msg"] and connection.requests == [], gone


def test_a_missing_vm_fails_naming_it_before_anything_is_sent(tmp_path: Path) -> None:
    connection = _lab()
    result = _run(connection, {"name": ["web01", "old99"], "src": _source(tmp_path, b"x"), "dest": DEST})
    assert result["failed"] is True and "old99" in result["msg"] and result["missing_vms"] == ["old99"], result
    assert connection.put_files == [] and _guest_file(connection, "web01") is None


def test_a_destination_that_is_a_directory_in_a_windows_guest_gets_the_file_under_its_own_name(tmp_path: Path) -> None:
    # Msvm_CopyFileToGuestSettingData: an existing directory as DestinationPath takes the source's file name. The
    # upload carries the source's own name, so the file is the user's file, not ansible's temporary one.
    connection = _lab()
    web01 = next(vm.guest for vm in connection.lab.host.vms if vm.name == "web01")
    web01.files.make_dirs("C:\\Seed")
    result = _run(connection, {"name": "web01", "src": _source(tmp_path, b"x", "seed config.json"), "dest": "C:\\Seed"})
    assert "failed" not in result and result["changed"] is True, result
    assert _guest_file(connection, "web01", "C:\\Seed\\seed config.json") == b"x"
    assert "hyperv.integration.vm_file_copy:C:\\Seed" in connection.lab.host.vms[0].kvp_host_items
