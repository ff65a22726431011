"""The lab's stand-in for the PowerShell that a Windows OpenSSH server starts for a session.

sshd (Debian's real OpenSSH server, configured by hvlab/ssh_gateway.py) runs this program for every
session through `ForceCommand`, with the client's command in SSH_ORIGINAL_COMMAND. A Windows OpenSSH
server whose DefaultShell is PowerShell runs `<DefaultShell> -c "<command>"` (DefaultShellCommandOption,
default `-c`: PowerShell/Win32-OpenSSH wiki, "DefaultShell"); the command text is the same in both
cases, so this program treats SSH_ORIGINAL_COMMAND exactly as that `-c` argument. It reads the
session's standard input to its end, hands command and input to the lab process (a Unix socket,
one JSON line each way), and writes what the lab answers: stdout, stderr and the exit code.

When the lab answers `drop`, the program kills the sshd process that carries the TCP connection:
the client sees the connection vanish (`ssh` exits 255, "closed by remote host"), as when a network
drops mid-call. Standard library only: it runs with `python -I`, outside the lab's environment.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path


def _sshd_ancestor() -> int | None:
    """The nearest ancestor process that is sshd (the per-connection process holding the socket)."""
    pid = os.getppid()
    while pid > 1:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text(encoding="ascii").strip()
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        except OSError:
            return None
        if comm == "sshd":
            return pid
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4 of /proc/PID/stat: the parent
    return None


def _drop_connection() -> None:
    pid = _sshd_ancestor()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    os._exit(255)


# The `Subsystem sftp` command of the lab's sshd; sshd runs ForceCommand for it with this text in
# SSH_ORIGINAL_COMMAND (sshd_config(5), ForceCommand), and the session then carries SFTP packets.
SFTP_SUBSYSTEM = "hvlab-sftp-server"


def _connect(socket_name: str) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # "@name": Linux's abstract socket namespace (no path length limit, nothing left on disk).
    conn.connect("\0" + socket_name[1:] if socket_name.startswith("@") else socket_name)
    return conn


def _relay(conn: socket.socket) -> None:
    """Bytes both ways until each side ends (the SFTP session runs in the lab process)."""

    def upstream() -> None:
        while chunk := os.read(0, 1 << 16):
            conn.sendall(chunk)
        conn.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=upstream, daemon=True)
    thread.start()
    while chunk := conn.recv(1 << 16):
        os.write(1, chunk)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", required=True, help="the lab's Unix socket")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--endpoint", required=True, help="inventory name of the machine this session reaches")
    args = parser.parse_args()
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    if command is None:
        sys.stderr.write("hyperv.integration lab: this ssh endpoint runs commands only (no interactive session)\n")
        return 1
    token = Path(args.token_file).read_text(encoding="ascii").strip()
    if command == SFTP_SUBSYSTEM:
        with _connect(args.socket) as conn:
            header = {"token": token, "endpoint": args.endpoint, "mode": "sftp"}
            conn.sendall(json.dumps(header).encode("utf-8") + b"\n")
            _relay(conn)
        return 0
    stdin = sys.stdin.buffer.read()
    request = {
        "token": token,
        "endpoint": args.endpoint,
        "command": command,
        "stdin": base64.b64encode(stdin).decode("ascii"),
        "client": os.environ.get("SSH_CLIENT", ""),
    }
    with _connect(args.socket) as conn:
        conn.sendall(json.dumps(request).encode("utf-8") + b"\n")
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(1 << 16):
            reply += chunk
    answer = json.loads(reply)
    if answer.get("drop"):
        _drop_connection()
    sys.stdout.buffer.write(base64.b64decode(answer["stdout"]))
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(base64.b64decode(answer["stderr"]))
    sys.stderr.buffer.flush()
    return int(answer["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
