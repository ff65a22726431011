"""The Hyper-V host's file system (hvlab/host_files.py) and ansible-core's own winrm put_file and
ActionBase._make_tmp_path to the host endpoint (hvlab/ansible_scripts.py), driven with ansible's real
winrm connection plugin and action base class."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.executor.powershell.module_manifest import _bootstrap_powershell_script
from ansible.playbook.play_context import PlayContext
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import connection_loader
from hvlab import labfile
from hvlab.host_files import DotNetError, HostFiles, HostPathUnsupported, expand_environment_variables, parse_path
from support.labspec import lab_spec, vm_spec


def connect(lab: Any, name: str) -> Any:
    """ansible's winrm connection to one endpoint of the lab, as a play would build it."""
    conn = connection_loader.get("winrm", PlayContext(), None)
    variables = lab.lab.winrm_vars(lab.lab.endpoints[name].port)
    conn.set_options(
        var_options={
            "ansible_host": variables["ansible_host"],
            "ansible_port": variables["ansible_port"],
            "ansible_user": variables["ansible_user"],
            "ansible_password": variables["ansible_password"],
            "ansible_winrm_transport": "basic",
            "ansible_winrm_scheme": "http",
            "ansible_winrm_server_cert_validation": "ignore",
            "_extras": {},
        }
    )
    conn._connect()
    return conn


def put(lab: Any, tmp_path: Path, data: bytes, out_path: str, name: str | None = None) -> Any:
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    conn = connect(lab, name or lab.lab.host.name)
    try:
        conn.put_file(str(source), out_path)
    finally:
        conn.close()
    return conn


@pytest.fixture
def lab(make_lab: Any) -> Any:
    return make_lab(lab_spec(vm_spec("web01", "windows")))


def test_put_file_3mb_byte_identical(lab: Any, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    target = lab.lab.host_files.temp_path() + "Upload.BIN"
    put(lab, tmp_path, data, target)  # ansible checks the sha1 the lab answers
    files = lab.lab.host.files
    assert files.read_bytes(target.lower()) == data  # names compare case-insensitively
    assert files.sha256(target) == hashlib.sha256(data).hexdigest() and files.size(target) == len(data)
    state = lab.state()
    assert state["host"]["files"] == {target: len(data)}  # the stored case
    assert state["host"]["counters"]["put_files"] == 1
    assert state["host"]["counters"]["put_file_bytes"] == len(data)
    assert state["host"]["counters"]["calls"] == 1 and state["host"]["counters"]["rejected"] == 0
    files.remove(target)
    assert not files.exists(target) and lab.state()["host"]["files"] == {}


def test_put_file_empty_and_overwrite(lab: Any, tmp_path: Path) -> None:
    target = lab.lab.host_files.temp_path() + "f.txt"
    put(lab, tmp_path, b"first version, longer", target)
    put(lab, tmp_path, b"", target)  # File.Create truncates
    assert lab.lab.host_files.read_bytes(target) == b""


def test_put_file_50mb(lab: Any, tmp_path: Path) -> None:
    data = os.urandom(50 * 1024 * 1024)
    target = "C:\\Windows\\Temp\\big.vhdx"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    put(lab, tmp_path, data, target)
    elapsed = time.monotonic() - started
    peak_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"50 MB put_file: {elapsed:.1f} s, peak RSS growth {peak_growth_mb:.0f} MB")
    assert lab.lab.host_files.sha256(target) == hashlib.sha256(data).hexdigest()
    assert elapsed < 60


def test_put_file_missing_directory_fails_as_on_windows(lab: Any, tmp_path: Path) -> None:
    target = "C:\\NoSuchDir\\sub\\..\\file.bin"
    with pytest.raises(AnsibleError):
        put(lab, tmp_path, b"data", target)
    assert lab.state()["host"]["files"] == {}
    # What the host answered: exec_wrapper's error object on stdout, exit 1, nothing on stderr
    # (so ansible's AnsibleError(stderr) carries no message, as against a real host).
    source = tmp_path / "source.bin"
    conn = connect(lab, lab.lab.host.name)
    script, stdin = _bootstrap_powershell_script("winrm_put_file.ps1", {"Path": target}, has_input=True)
    parts = conn._shell._encode_script(script, as_list=True, strict_mode=False, preserve_rc=False)
    rc, stdout, stderr = conn._winrm_exec(
        parts[0], parts[1:], stdin_iterator=conn._put_file_stdin_iterator(stdin, str(source), target)
    )
    conn.close()
    assert (rc, stderr) == (1, b"")
    answer = json.loads(stdout)
    assert answer["failed"] is True
    assert answer["msg"] == (
        'failure during exec_wrapper: Exception calling "Create" with "1" argument(s): '
        "\"Could not find a part of the path 'C:\\NoSuchDir\\file.bin'.\""
    )
    assert "DirectoryNotFoundException" in answer["exception"]


def test_put_file_bad_base64_line(lab: Any, tmp_path: Path) -> None:
    target = lab.lab.host_files.temp_path() + "x.bin"
    conn = connect(lab, lab.lab.host.name)
    script, stdin = _bootstrap_powershell_script("winrm_put_file.ps1", {"Path": target}, has_input=True)
    parts = conn._shell._encode_script(script, as_list=True, strict_mode=False, preserve_rc=False)
    chunks = [(stdin, False), (b"QUJD\r\n", False), (b"not base64!\r\n", True)]
    rc, stdout, stderr = conn._winrm_exec(parts[0], parts[1:], stdin_iterator=iter(chunks))
    conn.close()
    assert rc == 1 and stderr == b"" and "FromBase64String" in json.loads(stdout)["msg"]
    assert lab.lab.host_files.read_bytes(target) == b"ABC"  # written before the bad line, as on Windows


def test_unknown_script_in_manifest_is_refused(lab: Any, tmp_path: Path) -> None:
    conn = connect(lab, lab.lab.host.name)
    script, stdin = _bootstrap_powershell_script(
        "winrm_fetch_file.ps1", {"Path": "C:\\x", "BufferSize": 1, "Offset": 0}, has_input=True
    )
    parts = conn._shell._encode_script(script, as_list=True, strict_mode=False, preserve_rc=False)
    rc, _stdout, stderr = conn._winrm_exec(parts[0], parts[1:], stdin_iterator=iter([(stdin + b"QUJD\r\n", True)]))
    conn.close()
    assert rc == 1 and b"not exactly the installed ansible-core's winrm_put_file.ps1" in stderr
    counters = lab.state()["host"]["counters"]
    assert counters["rejected"] == 1 and counters["put_files"] == 0


def test_changed_bootstrap_is_not_recognised(lab: Any, tmp_path: Path) -> None:
    conn = connect(lab, lab.lab.host.name)
    script, stdin = _bootstrap_powershell_script("winrm_put_file.ps1", {"Path": "C:\\x"}, has_input=True)
    parts = conn._shell._encode_script(
        script + "\r\nWrite-Output 1", as_list=True, strict_mode=False, preserve_rc=False
    )
    rc, _stdout, stderr = conn._winrm_exec(parts[0], parts[1:], stdin_iterator=iter([(stdin, True)]))
    conn.close()
    assert rc == 1 and b"hyperv.integration lab" in stderr
    assert not lab.lab.host_files.exists("C:\\x")


def test_windows_guest_refuses_put_file(lab: Any, tmp_path: Path) -> None:
    with pytest.raises(AnsibleError, match="only the Hyper-V host endpoint has a file system"):
        put(lab, tmp_path, b"data", "C:\\Windows\\Temp\\x.bin", name="web01")
    assert lab.state()["endpoints"]["web01"]["counters"]["rejected"] == 1


def test_labfile_seeds_host_files(make_lab: Any) -> None:
    spec = lab_spec()
    spec["host"] = {
        "files": [{"path": "c:/Data/Readme.TXT", "text": "hällo"}, {"path": "C:\\Data\\z.bin", "size": 300}]
    }
    running = make_lab(spec)
    files = running.lab.host_files
    assert running.state()["host"]["files"] == {"C:\\Data\\Readme.TXT": 6, "C:\\Data\\z.bin": 300}
    assert files.read_bytes("C:\\DATA\\readme.txt") == "hällo".encode()
    assert files.read_bytes("C:\\Data\\z.bin") == bytes(range(251)) + bytes(range(49))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ("x", "host.files: must be a list"),
        ([{"path": "C:\\a", "text": "t", "mode": 1}], "host.files[0]: unknown key(s) mode"),
        ([{"path": "C:\\a"}], "host.files[0]: give exactly one of text and size"),
        ([{"path": "C:\\a", "text": "t", "size": 1}], "host.files[0]: give exactly one"),
        ([{"path": "relative\\a", "text": "t"}], "host.files[0].path: only absolute drive paths"),
        ([{"path": "C:\\a|b", "text": "t"}], "Illegal characters in path."),
        ([{"path": "D:\\a", "text": "t"}], "must name a file on drive C:"),
        ([{"path": "C:\\a", "size": -1}], "host.files[0].size: must be an integer"),
        ([{"path": "C:\\a", "size": True}], "host.files[0].size"),
        ([{"path": "C:\\a", "text": 5}], "host.files[0].text: must be a string"),
        ([{"path": "C:\\A", "text": "t"}, {"path": "c:\\a", "text": "u"}], "host.files[1].path: 'c:\\\\a' is the same"),
        ([{"path": "C:\\a", "text": "t"}, {"path": "C:\\a\\b", "text": "u"}], "as a file and a directory"),
    ],
)
def test_labfile_host_files_validation(files: Any, message: str) -> None:
    data = lab_spec()
    data["host"] = {"files": files}
    with pytest.raises(labfile.LabfileError) as info:
        labfile.parse(data)
    assert message in str(info.value)


# -- HostFiles path rules -------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> HostFiles:
    return HostFiles(tmp_path / "host-files", "lab-admin")


def test_temp_path_exists(files: HostFiles) -> None:
    assert files.temp_path() == "C:\\Users\\lab-admin\\AppData\\Local\\Temp\\"
    assert files.exists(files.temp_path()) and files.exists("c:/users/LAB-ADMIN/appdata/local/temp")


@pytest.mark.parametrize(
    ("path", "full"),
    [
        ("C:\\a\\b.txt", "C:\\a\\b.txt"),
        ("c:/a//b.txt", "c:\\a\\b.txt"),
        ("C:\\a\\.\\x\\..\\b.txt", "C:\\a\\b.txt"),
        ("C:\\..\\..\\a\\b.txt", "C:\\a\\b.txt"),
        ("C:\\a\\b.txt. . ", "C:\\a\\b.txt"),
    ],
)
def test_path_normalisation(path: str, full: str) -> None:
    assert parse_path(path).full == full


@pytest.mark.parametrize(
    ("path", "type_", "message"),
    [
        ("", "System.ArgumentException", "Empty path name is not legal."),
        ("   ", "System.ArgumentException", "The path is not of a legal form."),
        *[(f"C:\\a{ch}b", "System.ArgumentException", "Illegal characters in path.") for ch in '<>"|?*\x00\x1f\t'],
        ("C:\\a:b", "System.NotSupportedException", "The given path's format is not supported."),
        ("C:\\" + "a" * 256, "System.IO.PathTooLongException", "The specified path"),
        ("C:\\" + "a\\" * 130, "System.IO.PathTooLongException", "The specified path"),
    ],
)
def test_path_refused_like_dotnet(path: str, type_: str, message: str) -> None:
    with pytest.raises(DotNetError) as info:
        parse_path(path)
    assert info.value.type == type_ and info.value.message.startswith(message)


@pytest.mark.parametrize(
    "path",
    [
        "relative.txt",
        "C:relative",
        "\\rooted",
        "\\\\server\\share\\x",
        "\\\\?\\C:\\x",
        "C:\\NUL",
        "C:\\con.txt",
        "C:\\...\\x",
    ],
)
def test_path_forms_the_lab_does_not_model(path: str) -> None:
    with pytest.raises(HostPathUnsupported):
        parse_path(path)


def test_create_errors(files: HostFiles) -> None:
    with pytest.raises(DotNetError) as info:
        files.open_create("C:\\missing\\f.txt")
    assert info.value.type == "System.IO.DirectoryNotFoundException"
    assert info.value.message == "Could not find a part of the path 'C:\\missing\\f.txt'."
    with pytest.raises(DotNetError) as info:
        files.open_create("D:\\f.txt")
    assert info.value.type == "System.IO.DirectoryNotFoundException"
    with pytest.raises(DotNetError) as info:
        files.open_create("C:\\users")
    assert (info.value.type, info.value.message) == (
        "System.UnauthorizedAccessException",
        "Access to the path 'C:\\users' is denied.",
    )
    files.add_file("C:\\data\\file.txt", b"x")
    with pytest.raises(DotNetError) as info:
        files.open_create("C:\\data\\file.txt\\inner")  # a file where a directory should be
    assert info.value.type == "System.IO.DirectoryNotFoundException"


def test_case_insensitive_names_keep_case(files: HostFiles) -> None:
    files.add_file("C:\\Data\\Report.TXT", b"one")
    with files.open_create("c:\\DATA\\report.txt") as writer:
        writer.write(b"two")
    assert files.listing() == {"C:\\Data\\Report.TXT": 3}
    assert files.read_bytes("C:\\data\\REPORT.txt") == b"two"
    assert (files.root / "C" / "Data" / "Report.TXT").read_bytes() == b"two"  # the real directory


def test_open_file_is_locked(files: HostFiles) -> None:
    writer = files.open_create("C:\\Windows\\Temp\\busy.bin")
    for action in (files.read_bytes, files.open_create, files.remove):
        with pytest.raises(DotNetError) as info:
            action("C:\\Windows\\Temp\\busy.bin")
        assert info.value.type == "System.IO.IOException" and "being used by another process" in info.value.message
    writer.close()
    files.remove("C:\\Windows\\Temp\\busy.bin")


def test_remove(files: HostFiles) -> None:
    files.add_file("C:\\d\\f", b"1")
    files.remove("c:\\D\\F")
    assert not files.exists("C:\\d\\f") and files.exists("C:\\d")
    with pytest.raises(DotNetError) as info:
        files.remove("C:\\d\\f")
    assert (info.value.type, info.value.message) == (
        "System.Management.Automation.ItemNotFoundException",
        "Cannot find path 'C:\\d\\f' because it does not exist.",
    )
    with pytest.raises(HostPathUnsupported):
        files.remove("C:\\d")  # directories are not modelled


def test_read_missing_file(files: HostFiles) -> None:
    with pytest.raises(DotNetError) as info:
        files.read_bytes("C:\\Windows\\Temp\\none")
    assert (info.value.type, info.value.message) == (
        "System.IO.FileNotFoundException",
        "Could not find file 'C:\\Windows\\Temp\\none'.",
    )


# -- ansible's _make_tmp_path on the host ---------------------------------------------------------


class _Action(ActionBase):
    """The smallest action plugin: only ActionBase's own helpers are used."""

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError


def make_tmp_path(conn: Any) -> str:
    """ansible's real ActionBase._make_tmp_path over the connection."""
    return _Action(None, conn, PlayContext(), None, None)._make_tmp_path()  # type: ignore[arg-type]


def test_make_tmp_path_put_file_and_remove_tree(lab: Any, tmp_path: Path) -> None:
    files = lab.lab.host_files
    temp = f"C:\\Users\\{files.username}\\AppData\\Local\\Temp\\"
    assert files.temp_path() == temp
    conn = connect(lab, lab.lab.host.name)
    try:
        assert conn._shell.get_option("remote_tmp") == "%TEMP%"  # the powershell shell's default
        made = make_tmp_path(conn)
        # The directory's FullName, then "\\." from _make_tmp_path's join_path(stdout, '') (ntpath.normpath('')
        # is '.'), as against a real host.
        assert made.startswith(temp + "ansible-tmp-") and made.endswith("\\.") and made.count("\\") == 7
        full_name = made[:-2]
        assert conn._shell.tmpdir == made
        assert files.exists(made) and not files.is_file(made)
        assert files.directories() == sorted(
            [
                "C:\\Users",
                f"C:\\Users\\{files.username}",
                f"C:\\Users\\{files.username}\\AppData",
                f"C:\\Users\\{files.username}\\AppData\\Local",
                temp.rstrip("\\"),
                full_name,
                "C:\\Windows",
                "C:\\Windows\\Temp",
            ],
            key=str.upper,
        )
        assert lab.state()["host"]["files"] == {}  # listing: files only, the empty directory is not one
        source = tmp_path / "source.bin"
        source.write_bytes(b"payload")
        conn.put_file(str(source), conn._shell.join_path(made, "payload.bin"))
        conn.put_file(str(source), conn._shell.join_path(made, "second.bin"))
    finally:
        conn.close()
    assert lab.state()["host"]["files"] == {full_name + "\\payload.bin": 7, full_name + "\\second.bin": 7}
    counters = lab.state()["host"]["counters"]
    assert (counters["calls"], counters["rejected"], counters["put_files"]) == (3, 0, 2)
    files.remove_tree(full_name.lower())  # Remove-Item -LiteralPath -Recurse -Force; names compare case-insensitively
    assert not files.exists(made) and files.exists(temp) and lab.state()["host"]["files"] == {}
    assert full_name not in files.directories()
    with pytest.raises(DotNetError) as info:
        files.remove_tree(full_name)
    assert (info.value.type, info.value.message) == (
        "System.Management.Automation.ItemNotFoundException",
        f"Cannot find path '{full_name}' because it does not exist.",
    )


def test_make_tmp_path_undefined_variable_stays(lab: Any) -> None:
    files = lab.lab.host_files
    conn = connect(lab, lab.lab.host.name)
    try:
        conn._shell.set_option("remote_tmp", "%SystemRoot%\\Temp\\%LAB_NOT_SET%\\ansible")
        made = make_tmp_path(conn)
    finally:
        conn.close()
    # %LAB_NOT_SET% is kept as text (a legal name); New-Item makes the missing parents too.
    assert made.startswith("C:\\Windows\\Temp\\%LAB_NOT_SET%\\ansible\\ansible-tmp-")
    assert files.exists("C:\\Windows\\Temp\\%LAB_NOT_SET%\\ansible") and files.exists(made)


def test_second_mkdtemp_with_the_same_name_fails(lab: Any) -> None:
    files = lab.lab.host_files
    conn = connect(lab, lab.lab.host.name)
    try:
        conn._shell._generate_temp_dir_name = lambda: "ansible-tmp-fixed"  # type: ignore[method-assign]
        made = make_tmp_path(conn)
        assert made == files.temp_path() + "ansible-tmp-fixed\\."
        with pytest.raises(AnsibleConnectionFailure) as info:
            make_tmp_path(conn)
        # What the host answered: exec_wrapper's error object on stdout, exit 1, nothing on stderr.
        cmd = conn._shell._mkdtemp2(basefile="ANSIBLE-TMP-FIXED", tmpdir="%temp%")
        rc, stdout, stderr = conn.exec_command(cmd.command, in_data=cmd.input_data)
    finally:
        conn.close()
    message = str(info.value)
    assert message.startswith("Failed to create temporary directory.") and "exited with result 1" in message
    existing = files.temp_path() + "ansible-tmp-fixed"
    reported = json.loads(message.split(", stdout output: ", 1)[1])
    assert reported["msg"] == f"failure during exec_wrapper: An item with the specified name {existing} already exists."
    assert (rc, stderr) == (1, b"")
    answer = json.loads(stdout)
    assert answer["failed"] is True
    assert answer["msg"] == (
        f"failure during exec_wrapper: An item with the specified name {files.temp_path()}ANSIBLE-TMP-FIXED "
        "already exists."
    )
    assert "DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand" in answer["exception"]
    assert files.directories().count(existing) == 1
    counters = lab.state()["host"]["counters"]
    assert (counters["calls"], counters["rejected"]) == (3, 0)


def test_mkdtemp_forms_the_lab_does_not_model_are_refused(lab: Any) -> None:
    conn = connect(lab, lab.lab.host.name)
    try:
        for remote_tmp in ("%ProgramFiles%\\x", "relative\\tmp", "C:\\Windows\\[ab]", "D:\\tmp"):
            cmd = conn._shell._mkdtemp2(basefile="ansible-tmp-x", tmpdir=remote_tmp)
            rc, _stdout, stderr = conn.exec_command(cmd.command, in_data=cmd.input_data)
            assert rc == 1 and stderr.startswith(b"hyperv.integration lab: ansible _make_tmp_path:"), stderr
        # put_file's encoding (no strict mode, no rc line) of the mkdtemp script is not ansible's command
        cmd = conn._shell._mkdtemp2(basefile="ansible-tmp-x", tmpdir="%TEMP%")
        script, stdin = _bootstrap_powershell_script(
            "powershell_mkdtemp.ps1", {"Directory": "%TEMP%", "Name": "ansible-tmp-x"}
        )
        assert stdin == cmd.input_data
        stdin += b"\n\0\0\0\0\n"
        parts = conn._shell._encode_script(script, as_list=True, strict_mode=False, preserve_rc=False)
        rc, _stdout, stderr = conn._winrm_exec(parts[0], parts[1:], stdin_iterator=iter([(stdin, True)]))
        assert rc == 1 and b"not exactly the installed ansible-core's winrm_put_file.ps1" in stderr
        # an input marker after the manifest (has_input=True) is not what _mkdtemp2 sends
        rc, _stdout, stderr = conn.exec_command(cmd.command, in_data=cmd.input_data + b"\n\0\0\0\0\n")
        assert rc == 1 and b"input after the exec manifest is not modelled" in stderr
    finally:
        conn.close()
    assert lab.lab.host_files.directories().count("C:\\Windows\\Temp") == 1
    assert not any("ansible-tmp-x" in d for d in lab.lab.host_files.directories())
    assert lab.state()["host"]["counters"]["rejected"] == 6


def test_windows_guest_refuses_make_tmp_path(lab: Any) -> None:
    conn = connect(lab, "web01")
    try:
        with pytest.raises(AnsibleConnectionFailure, match="Failed to create temporary directory"):
            make_tmp_path(conn)
    finally:
        conn.close()
    assert lab.state()["endpoints"]["web01"]["counters"]["rejected"] == 1


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("%TEMP%", "C:\\Users\\lab-admin\\AppData\\Local\\Temp"),
        ("%tmp%\\x", "C:\\Users\\lab-admin\\AppData\\Local\\Temp\\x"),
        ("%USERPROFILE%|%SystemRoot%|%WINDIR%", "C:\\Users\\lab-admin|C:\\Windows|C:\\Windows"),
        ("%NOPE%", "%NOPE%"),
        ("%NOPE%TEMP%", "%NOPEC:\\Users\\lab-admin\\AppData\\Local\\Temp"),  # the closing % opens the next name
        ("100%", "100%"),
        ("%%", "%%"),
        ("a%TEMP", "a%TEMP"),
    ],
)
def test_expand_environment_variables(files: HostFiles, text: str, expanded: str) -> None:
    assert expand_environment_variables(text, files.session_environment()) == expanded


def test_expand_unmodelled_standard_variable_is_refused(files: HostFiles) -> None:
    with pytest.raises(HostPathUnsupported, match="ComputerName"):
        expand_environment_variables("C:\\%ComputerName%", files.session_environment())


def test_new_directory(files: HostFiles) -> None:
    assert files.new_directory("C:\\Windows\\Temp\\ ", "a") == "C:\\Windows\\Temp\\a"  # -Path trimmed
    assert files.new_directory("c:/new/deep/", "b") == "c:\\new\\deep\\b"  # missing parents made
    assert files.directories()[:3] == ["C:\\new", "C:\\new\\deep", "C:\\new\\deep\\b"]
    files.add_file("C:\\Windows\\Temp\\f", b"")
    for parent, name in (("C:\\WINDOWS\\temp", "A"), ("C:\\Windows\\Temp", "f")):  # a directory or a file
        with pytest.raises(DotNetError) as info:
            files.new_directory(parent, name)
        assert (info.value.type, info.value.message) == (
            "System.IO.IOException",
            f"An item with the specified name {parent}\\{name} already exists.",
        )
    for parent, name in (("C:\\x*", "a"), ("C:\\", "a\\b"), ("C:\\Windows\\Temp\\f", "x"), ("C:\\a|b", "c")):
        with pytest.raises(HostPathUnsupported):
            files.new_directory(parent, name)


def test_remove_tree(files: HostFiles) -> None:
    files.add_file("C:\\t\\a\\one", b"1")
    files.add_file("C:\\t\\a\\b\\two", b"22")
    files.make_dirs("C:\\t\\empty")
    files.add_file("C:\\t\\keep", b"3")
    files.remove_tree("C:\\t\\keep")  # a file is just removed
    files.remove_tree("c:\\T\\A\\")
    assert files.directories() == [d for d in files.directories() if not d.startswith("C:\\t\\a")]
    assert "C:\\t\\empty" in files.directories() and files.exists("C:\\t\\empty")
    assert files.listing() == {}
    assert not (files.root / "C" / "t" / "a").exists()
    files.remove_tree("C:\\t")
    assert not files.exists("C:\\t\\empty") and not files.exists("C:\\t")
    with pytest.raises(DotNetError) as info:
        files.remove_tree("C:\\t\\nothing")
    assert info.value.message == "Cannot find path 'C:\\t\\nothing' because it does not exist."
    writer = files.open_create("C:\\Windows\\Temp\\busy")
    with pytest.raises(HostPathUnsupported):
        files.remove_tree("C:\\Windows")  # a tree holding an open file
    with pytest.raises(DotNetError) as info:
        files.remove_tree("C:\\Windows\\Temp\\busy")
    assert "being used by another process" in info.value.message
    writer.close()
    with pytest.raises(HostPathUnsupported):
        files.remove_tree("C:\\")
