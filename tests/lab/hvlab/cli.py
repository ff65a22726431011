"""`tests/lab/lab up|state|down` (DESIGN.md "Lab contract").

`up` starts the lab process detached (own session, output to DIR/lab.log) and returns once it has
written DIR/lab.json; `down` asks it to stop through the control endpoint, then makes sure the
process is gone. DIR keeps lab.log, inventory.yml and credentials.json after `down`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .server import CREDENTIALS_FILE, INFO_FILE, serve

PID_FILE = "lab.pid"
LOG_FILE = "lab.log"
USERNAME = "lab-admin"
UP_TIMEOUT = 120.0  # Linux guest doubles boot before the lab is ready
STOP_TIMEOUT = 30.0  # after a shutdown request: the lab stops its guest doubles first
TERM_TIMEOUT = 10.0  # after SIGTERM (the lab stops its guests then too), before SIGKILL


def _serve_env() -> dict[str, str]:
    """The lab process imports hvlab from beside this file, whatever its working directory."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (nobody may reap our orphan)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _our_pid(directory: Path) -> int | None:
    """The pid from DIR/lab.pid if that process is alive and is this DIR's lab process."""
    try:
        pid = int((directory / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not _alive(pid) or b"_serve" not in cmdline or str(directory).encode() not in cmdline:
        return None  # gone, or the pid was reused by something else: never signal it
    return pid


def _read_info(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _control(info: dict[str, Any], method: str, path: str, timeout: float = 10.0) -> Any:
    request = urllib.request.Request(
        info["control_url"] + path,
        method=method,
        data=b"" if method == "POST" else None,
        headers={"Authorization": f"Bearer {info['control_token']}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    with opener.open(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _cleanup(directory: Path) -> None:
    for name in (INFO_FILE, PID_FILE):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


def cmd_up(labfile: str, directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    pid = _our_pid(directory)
    if pid is not None:
        print(
            f"lab up: a lab is already running in {directory} (pid {pid}); "
            f"run 'tests/lab/lab down --dir {directory}' first",
            file=sys.stderr,
        )
        return 1
    path = Path(labfile).resolve()
    if not path.is_file():
        print(f"lab up: LABFILE {labfile} not found", file=sys.stderr)
        return 1
    _cleanup(directory)
    credentials = {"username": USERNAME, "password": secrets.token_urlsafe(18)}
    fd = os.open(directory / CREDENTIALS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle)
    launch_id = secrets.token_hex(8)
    with open(directory / LOG_FILE, "ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            [sys.executable, "-m", "hvlab", "_serve", str(path), "--dir", str(directory), "--launch-id", launch_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=directory,
            env=_serve_env(),
            start_new_session=True,
            close_fds=True,
        )  # setsid: survives this shell, own group
    (directory / PID_FILE).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + UP_TIMEOUT
    while True:
        info = _read_info(directory)
        if info is not None and info.get("launch_id") == launch_id:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with open(directory / LOG_FILE, "rb") as log:
                log.seek(offset)
                tail = log.read().decode("utf-8", "replace").strip()
            _cleanup(directory)
            print(tail or f"lab up: the lab process exited with {proc.returncode}", file=sys.stderr)
            return 1
        time.sleep(0.01)
    for name, url in info["endpoints"].items():
        print(f"lab up: {name} at {url}")
    print(f"lab up: inventory {info['inventory']}; state: tests/lab/lab state --dir {directory}")
    return 0


class LabNotRunning(Exception):
    """No lab runs in that directory, or its control endpoint does not answer."""


def read_state(directory: Path) -> dict[str, Any]:
    """The running lab's state, read over its control endpoint (what `lab state` prints), in-process:
    tests read it often, and a process per read costs far more than the read."""
    info = _read_info(directory)
    if info is None or _our_pid(directory) is None:
        raise LabNotRunning(f"no lab running in {directory}")
    try:
        return _control(info, "GET", "/lab/state")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabNotRunning(f"cannot reach the lab's control endpoint: {exc}") from exc


def cmd_state(directory: Path) -> int:
    try:
        state = read_state(directory)
    except LabNotRunning as exc:
        print(f"lab state: {exc}", file=sys.stderr)
        return 1
    json.dump(state, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return not _alive(pid)


def cmd_down(directory: Path) -> int:
    pid = _our_pid(directory)
    if pid is None:
        _cleanup(directory)
        print(f"lab down: nothing running in {directory}")
        return 0
    info = _read_info(directory)
    asked = False
    if info is not None:
        try:
            _control(info, "POST", "/lab/shutdown", timeout=3.0)
            asked = True
        except (urllib.error.URLError, OSError, ValueError):
            pass  # fall back to signals below
    if not (asked and _wait_gone(pid, STOP_TIMEOUT)):
        os.killpg(pid, signal.SIGTERM)  # the lab's own process group (setsid at up)
        if not _wait_gone(pid, TERM_TIMEOUT):
            os.killpg(pid, signal.SIGKILL)
            _wait_gone(pid, 3.0)
    _cleanup(directory)
    print(f"lab down: stopped pid {pid}; log kept in {directory / LOG_FILE}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["_serve"]:  # internal: the detached lab process
        serve_parser = argparse.ArgumentParser(prog="lab _serve")
        serve_parser.add_argument("labfile")
        serve_parser.add_argument("--dir", required=True)
        serve_parser.add_argument("--launch-id", required=True)
        args = serve_parser.parse_args(argv[1:])
        return serve(args.labfile, args.dir, args.launch_id)

    parser = argparse.ArgumentParser(
        prog="tests/lab/lab", description="Hyper-V host double for hyperv.integration tests"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a lab in the background; writes DIR/inventory.yml")
    up.add_argument("labfile")
    up.add_argument("--dir", required=True)
    state = sub.add_parser("state", help="print the running lab's state as JSON")
    state.add_argument("--dir", required=True)
    down = sub.add_parser("down", help="stop the lab started in DIR (idempotent)")
    down.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    directory = Path(args.dir).resolve()
    if args.command == "up":
        return cmd_up(args.labfile, directory)
    if args.command == "state":
        return cmd_state(directory)
    return cmd_down(directory)
