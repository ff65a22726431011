"""The lab over ssh (`host.connection: ssh`): Debian's real sshd, the lab's PowerShell stand-in behind
ForceCommand, and the same dispatcher, counters and faults as over WinRM (hvlab/ssh_gateway.py)."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import labclient
import pytest

# No skip when sshd is missing: scripts/bootstrap.sh installs it, and the lab's error says so.
GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"


def ssh_lab(make_lab: Any, tmp_path: Path, faults: list[dict[str, Any]] | None = None) -> Any:
    return make_lab(
        {
            "host": {"name": "hv01", "connection": "ssh"},
            "vms": [
                {"name": "web01", "guest": "windows"},
                {"name": "ウェブ 01", "guest": "windows", "state": "Off"},
            ],
            "faults": faults or [],
        },
        lab_dir=tmp_path,
    )


def ssh(lab: Any, name: str, command: str, stdin: bytes = b"", key: Path | None = None) -> subprocess.CompletedProcess:
    """The ssh client, as ansible's ssh connection runs it: host, then the command as one argument."""
    vars_ = lab.lab.connection_vars(name)
    argv = [
        "ssh",
        "-p",
        str(vars_["ansible_port"]),
        "-i",
        str(key or vars_["ansible_ssh_private_key_file"]),
        "-o",
        "BatchMode=yes",
        *shlex.split(vars_["ansible_ssh_common_args"]),
        f"{vars_['ansible_user']}@{vars_['ansible_host']}",
        command,
    ]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60, check=False)


def output(done: subprocess.CompletedProcess) -> labclient.Output:
    return labclient.Output(done.returncode, done.stdout, done.stderr)


def bootstrap_command() -> str:
    return " ".join(
        ["PowerShell", *labclient.POWERSHELL_ARGS, "-EncodedCommand", labclient.encode_script(labclient.BOOTSTRAP)]
    )


def set_gsi(check_mode: bool = False) -> tuple[dict[str, Any], bytes]:
    req = labclient.request(
        "vm_integration_service_set", {"vm_names": ["web01"], "changes": [{"guid": GSI, "enabled": True}]}, check_mode
    )
    return req, labclient.stdin_for(req)


def test_a_library_call_over_ssh_is_answered_counted_and_written(make_lab: Any, tmp_path: Path) -> None:
    lab = ssh_lab(make_lab, tmp_path)
    req, stdin = set_gsi()
    done = ssh(lab, "hv01", bootstrap_command(), stdin)
    assert done.returncode == 0, done.stderr
    response = output(done).response(req["nonce"])
    assert response["ok"], response
    state = lab.state()
    host = state["endpoints"]["hv01"]
    assert host["counters"]["commands"] == 1 and host["counters"]["calls"] == 1
    assert host["counters"]["writes"] == 1
    assert state["vms"]["web01"]["integration_services"]["guest_service_interface"]["enabled"] is True
    assert host["recent_commands"][-1]["transport"] == "ssh"
    assert host["recent_commands"][-1]["operation"] == "vm_integration_service_set"


def test_what_the_lab_does_not_recognise_fails_loudly_over_ssh(make_lab: Any, tmp_path: Path) -> None:
    lab = ssh_lab(make_lab, tmp_path)
    done = ssh(lab, "hv01", "Get-ChildItem C:\\")
    assert done.returncode == 1
    assert b"command not recognised" in done.stderr
    assert lab.state()["endpoints"]["hv01"]["counters"]["rejected"] == 1


def test_a_key_the_lab_did_not_authorise_is_refused_by_sshd(make_lab: Any, tmp_path: Path) -> None:
    lab = ssh_lab(make_lab, tmp_path)
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    done = ssh(lab, "hv01", bootstrap_command(), key=other)
    assert done.returncode == 255
    assert b"Permission denied" in done.stderr
    assert lab.state()["endpoints"]["hv01"]["counters"]["commands"] == 0


@pytest.mark.parametrize("at", ["send", "receive"])
def test_a_dropped_connection_closes_the_ssh_session(make_lab: Any, tmp_path: Path, at: str) -> None:
    lab = ssh_lab(make_lab, tmp_path, [{"type": "drop_connection", "at": at, "times": 1}])
    _req, stdin = set_gsi()
    done = ssh(lab, "hv01", bootstrap_command(), stdin)
    assert done.returncode == 255, done
    assert b"closed by remote host" in done.stderr
    assert done.stdout == b""
    counters = lab.state()["endpoints"]["hv01"]["counters"]
    assert counters["commands"] == 1
    assert counters["writes"] == (1 if at == "receive" else 0)  # at send the command never ran
    again = ssh(lab, "hv01", bootstrap_command(), set_gsi()[1])
    assert again.returncode == 0, again.stderr  # the fault fired once


def test_a_delay_holds_the_answer_back(make_lab: Any, tmp_path: Path) -> None:
    lab = ssh_lab(make_lab, tmp_path, [{"type": "delay", "seconds": 1.0}])
    req, stdin = set_gsi(check_mode=True)
    started = time.monotonic()
    done = ssh(lab, "hv01", bootstrap_command(), stdin)
    assert time.monotonic() - started >= 1.0
    assert output(done).response(req["nonce"])["ok"]
    assert lab.state()["counters"]["writes"] == 0


def test_windows_guests_have_their_own_ssh_ports_and_a_stopped_one_drops_sessions(
    make_lab: Any, tmp_path: Path
) -> None:
    lab = ssh_lab(make_lab, tmp_path)
    req = labclient.request("guest_service_info", {"names": ["vmicheartbeat"]})
    done = ssh(lab, "web01", bootstrap_command(), labclient.stdin_for(req))
    assert done.returncode == 0, done.stderr
    assert output(done).response(req["nonce"])["ok"]
    state = lab.state()
    assert state["endpoints"]["web01"]["counters"]["calls"] == 1
    assert state["endpoints"]["hv01"]["counters"]["commands"] == 0  # the guest's call counts on its endpoint only
    stopped = next(name for name, ep in state["endpoints"].items() if ep["vm"] == "ウェブ 01")
    refused = ssh(lab, stopped, bootstrap_command(), labclient.stdin_for(req))
    assert refused.returncode == 255
    assert lab.state()["endpoints"][stopped]["refused_connections"] == 1
    ports = {ep["ssh_port"] for ep in state["endpoints"].values()}
    assert len(ports) == 3 and None not in ports


def sftp(lab: Any, name: str, batch: str) -> subprocess.CompletedProcess:
    """OpenSSH's sftp client in batch mode, as ansible's ssh put_file runs it."""
    vars_ = lab.lab.connection_vars(name)
    argv = [
        "sftp",
        "-b",
        "-",
        "-P",
        str(vars_["ansible_port"]),
        "-i",
        str(vars_["ansible_ssh_private_key_file"]),
        *shlex.split(vars_["ansible_ssh_common_args"]),
        f"{vars_['ansible_user']}@{vars_['ansible_host']}",
    ]
    return subprocess.run(argv, input=batch.encode(), capture_output=True, timeout=60, check=False)


def test_sftp_puts_a_file_on_the_hosts_file_system_and_refuses_what_it_does_not_model(
    make_lab: Any, tmp_path: Path
) -> None:
    lab = ssh_lab(make_lab, tmp_path / "lab")
    files = lab.lab.host_files
    files.make_dirs("C:\\Users\\lab-admin\\AppData\\Local\\Temp\\ansible-tmp-1")
    src = tmp_path / "seed config.bin"
    data = bytes(range(256)) * 4096  # 1 MiB: many WRITE packets
    src.write_bytes(data)
    dest = "/C:/Users/lab-admin/AppData/Local/Temp/ansible-tmp-1/seed config.bin"
    done = sftp(lab, "hv01", f"put {shlex.quote(str(src))} {shlex.quote(dest)}\n")
    assert done.returncode == 0, done.stderr
    assert files.read_bytes("C:\\Users\\lab-admin\\AppData\\Local\\Temp\\ansible-tmp-1\\seed config.bin") == data
    counters = lab.state()["endpoints"]["hv01"]["counters"]
    assert (counters["put_files"], counters["put_file_bytes"]) == (1, len(data))
    assert counters["commands"] == 0  # an sftp session is no PowerShell command

    missing = sftp(lab, "hv01", f"put {shlex.quote(str(src))} /C:/nowhere/x.bin\n")
    assert missing.returncode == 1 and b"No such file" in missing.stderr
    fetch = sftp(lab, "hv01", f"get {shlex.quote(dest)} {shlex.quote(str(tmp_path / 'back'))}\n")
    assert fetch.returncode == 1 and not (tmp_path / "back").exists()  # fetching is not modelled
    guest = sftp(lab, "web01", f"put {shlex.quote(str(src))} /C:/x.bin\n")
    assert guest.returncode != 0  # no file system modelled on a Windows guest
    assert lab.state()["endpoints"]["hv01"]["counters"]["put_files"] == 1
