"""The lab's machines over ssh: Debian's real OpenSSH server in front of the same endpoints.

`connection: ssh` in the LABFILE gives the Hyper-V host endpoint and every Windows guest endpoint
an ssh port on 127.0.0.1. A real `sshd` (openssh-server, installed by scripts/bootstrap.sh) does key
exchange, authentication and the session channels; its `ForceCommand` for each port is
hvlab/ssh_shell.py, the stand-in for the PowerShell a Windows OpenSSH server starts. That program
hands each session's command and standard input to this gateway (a Unix socket of the lab process),
which runs it on the endpoint's backend: the same dispatcher, model, counters and faults as WinRM.

Keys: one host key and one client key per lab, made with ssh-keygen in DIR/ssh; the inventory pins
the host key (a known_hosts file, StrictHostKeyChecking=yes) and uses the client key. The login
user is the account the lab runs as (sshd can only start sessions for an existing account; a
dedicated Windows-like account per lab would need a system user).

Faults on the host endpoint: `drop_connection` at send (the command never runs) or at receive (it
runs, then the connection goes), both by killing the sshd process of that connection; `delay` holds
the answer back. A Windows guest whose VM is not Running drops every session the same way, so ansible
reports it UNREACHABLE.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import command_run
from .sftp_server import SftpSession
from .ssh_shell import SFTP_SUBSYSTEM

if TYPE_CHECKING:
    from .wsman import Endpoint

log = logging.getLogger("hvlab.ssh")
SSH_DIR = "ssh"
# sshd.c: MAX_LISTEN_SOCKS is 16; a lab with more ssh ports runs one sshd per 16.
PORTS_PER_SSHD = 16
SHELL_PROGRAM = Path(__file__).resolve().with_name("ssh_shell.py")


class SshUnavailable(Exception):
    """The machine lacks what `connection: ssh` needs."""


def find_sshd() -> str:
    path = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", ""))
    if path is None:
        raise SshUnavailable(
            "host.connection ssh needs Debian's openssh-server (/usr/sbin/sshd); scripts/bootstrap.sh installs it"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SshGateway:
    """sshd processes for a set of endpoints, and the socket their sessions come through."""

    def __init__(self, directory: Path, endpoints: list[Endpoint]) -> None:
        self.dir = directory / SSH_DIR
        self.endpoints = {ep.name: ep for ep in endpoints}
        self.ports: dict[str, int] = {}
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self._token = secrets.token_hex(16)
        self._socket_name = "@hvlab-ssh-" + secrets.token_hex(8)
        self._listener: socket.socket | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- files ----------------------------------------------------------------------------------
    @property
    def client_key(self) -> Path:
        return self.dir / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def _keygen(self, path: Path, comment: str) -> None:
        if path.exists():
            path.unlink()
            path.with_name(path.name + ".pub").unlink(missing_ok=True)
        result = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SshUnavailable(f"ssh-keygen failed: {result.stderr.strip()}")

    def _config(self, index: int, names: list[str]) -> Path:
        lines = [
            "# Written by the hyperv.integration lab (hvlab/ssh_gateway.py) for this lab only.",
            *(f"ListenAddress 127.0.0.1:{self.ports[name]}" for name in names),
            f'HostKey "{self.dir / "host_ed25519"}"',
            "PidFile none",
            f'AuthorizedKeysFile "{self.dir / "authorized_keys"}"',
            "StrictModes no",  # the lab directory may sit under a world-writable /tmp
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
            "PrintMotd no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "MaxStartups 100:30:200",  # many forks connect at once in the per-connection tests
            # A name, not a program: ForceCommand below runs for it too, with this in SSH_ORIGINAL_COMMAND.
            f"Subsystem sftp {SFTP_SUBSYSTEM}",
        ]
        for name in names:
            command = [
                sys.executable,
                "-I",
                str(SHELL_PROGRAM),
                "--socket",
                self._socket_name,
                "--token-file",
                str(self.dir / "token"),
                "--endpoint",
                name,
            ]
            lines += [f"Match LocalPort {self.ports[name]}", f"    ForceCommand {shlex.join(command)}"]
        path = self.dir / f"sshd-{index}.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    # -- life -----------------------------------------------------------------------------------
    def start(self) -> None:
        sshd = find_sshd()
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # sshd's privilege separation directory (_PATH_PRIVSEP_CHROOT_DIR); the package's
            # systemd unit makes it, and no systemd runs here.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._keygen(self.dir / "host_ed25519", "hvlab-ssh-host")
        self._keygen(self.client_key, "hvlab-ssh-client")
        (self.dir / "authorized_keys").write_text(
            (self.dir / "client_ed25519.pub").read_text(encoding="ascii"), encoding="ascii"
        )
        fd = os.open(self.dir / "token", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(self._token + "\n")
        host_key = (self.dir / "host_ed25519.pub").read_text(encoding="ascii").split()[:2]
        self.ports = {name: _free_port() for name in self.endpoints}
        self.known_hosts.write_text(
            "".join(f"[127.0.0.1]:{port} {' '.join(host_key)}\n" for port in self.ports.values()), encoding="ascii"
        )
        self._listen()
        names = list(self.endpoints)
        for index in range(0, len(names), PORTS_PER_SSHD):
            chunk = names[index : index + PORTS_PER_SSHD]
            config = self._config(index // PORTS_PER_SSHD, chunk)
            log_file = open(self.dir / f"sshd-{index // PORTS_PER_SSHD}.log", "ab")  # noqa: SIM115
            # -D: stay in the foreground (a child of the lab, stopped with it); -e: log to stderr.
            process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log_file, stderr=log_file)
            log_file.close()
            self._processes.append(process)
        self._wait_ready()
        for name, port in self.ports.items():
            log.info("%s: ssh endpoint on 127.0.0.1:%d (user %s)", name, port, self.user)

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = dict(self.ports)
        while waiting:
            for process in self._processes:
                if process.poll() is not None:
                    raise SshUnavailable(f"sshd exited with code {process.returncode}; see {self.dir}/sshd-*.log")
            for name, port in list(waiting.items()):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    del waiting[name]
                except OSError:
                    pass
            if waiting and time.monotonic() > deadline:
                raise SshUnavailable(f"sshd did not listen on {sorted(waiting.values())} within {timeout} s")
            if waiting:
                time.sleep(0.02)

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind("\0" + self._socket_name[1:])
        listener.listen(64)
        listener.settimeout(1.0)
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, name="ssh-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._thread is not None:
            self._thread.join(5)
        if self._listener is not None:
            self._listener.close()

    # -- sessions -------------------------------------------------------------------------------
    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), name="ssh-session", daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            data = reader.readline()
            try:
                request = json.loads(data)
                if request.get("mode") == "sftp":
                    self._sftp(request, reader, conn)
                    return
                answer = self._answer(request)
            except (ValueError, KeyError, binascii.Error) as exc:
                log.warning("ssh gateway: malformed session request: %s", exc)
                answer = _reply(b"", f"hyperv.integration lab: malformed ssh session request: {exc}\r\n".encode(), 1)
            conn.sendall(json.dumps(answer).encode("utf-8") + b"\n")

    def _endpoint(self, request: dict[str, Any]) -> Endpoint:
        if not hmac.compare_digest(str(request["token"]), self._token):
            raise ValueError("wrong token")
        return self.endpoints[request["endpoint"]]

    def _sftp(self, request: dict[str, Any], reader: Any, conn: socket.socket) -> None:
        """An SFTP session (ansible's ssh put_file) on the host's file system; a machine the lab keeps no
        files for (a Windows guest) ends the session at once, which the client reports as a failure."""
        ep = self._endpoint(request)
        files = getattr(ep.backend, "host_files", None)
        if files is None or not ep.reachable():
            log.warning("%s: sftp session refused: the lab models no file system here", ep.name)
            return
        with conn.makefile("wb") as writer:
            SftpSession(files, ep.counters, reader, writer).serve()

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        ep = self._endpoint(request)
        if not ep.reachable():
            ep.refuse(request.get("client") or "ssh")
            return {"drop": True}
        command = str(request["command"])
        stdin = base64.b64decode(request["stdin"], validate=True)
        record = command_run.begin(ep, command, "ssh")
        log.info("%s: ssh command: %s", ep.name, record["command_line"])
        if ep.faults.take("drop_connection", lambda f: f.params["at"] == "send"):
            record["state"] = "aborted (drop_connection at send)"
            log.warning("%s: fault drop_connection at send: ssh session dropped before the command ran", ep.name)
            return {"drop": True}
        # A Windows OpenSSH server hands the command to PowerShell as one `-c` argument; the words
        # are what that PowerShell would run (protocol doc section 1), split as the dispatcher does.
        result, delay = command_run.execute(ep, record, command, [], stdin)
        if delay:
            time.sleep(delay)  # the output held back; ssh has no operation timeout to run into
        if ep.faults.take("drop_connection", lambda f: f.params["at"] == "receive"):
            log.warning("%s: fault drop_connection at receive: ssh session dropped after the command ran", ep.name)
            return {"drop": True}
        # The PowerShell that `-c` starts exits 0 when the last command succeeded, else 1: a native
        # command's other exit codes become 1 (about_PowerShell_exe, -Command).
        return _reply(result.stdout, result.stderr, 0 if result.exit_code == 0 else 1)

    def inventory_vars(self, name: str) -> dict[str, Any]:
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.ports[name],
            "ansible_connection": "ssh",
            "ansible_user": self.user,
            "ansible_shell_type": "powershell",
            "ansible_ssh_private_key_file": str(self.client_key),
            "ansible_ssh_common_args": shlex.join(
                [
                    "-o",
                    f"UserKnownHostsFile={self.known_hosts}",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "IdentitiesOnly=yes",
                ]
            ),
        }


def _reply(stdout: bytes, stderr: bytes, exit_code: int) -> dict[str, Any]:
    return {
        "stdout": base64.b64encode(stdout).decode("ascii"),
        "stderr": base64.b64encode(stderr).decode("ascii"),
        "exit_code": exit_code,
    }
