"""Client side of the protocol, written for the tests from docs/dev/powershell-protocol.md alone
(never from plugins/): encode the bootstrap, build the two stdin lines, parse the markers."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from winrm.protocol import Protocol

BOOTSTRAP = """
# hyperv.integration bootstrap protocol=1
# test bootstrap: only the first line matters to the lab
$lines = @($input | Where-Object { $_ })
"""
FAKE_LIBRARY = """# HYPERV_INTEGRATION_LIBRARY protocol=1
param ([string]$RequestJson)
# (test stand-in: the lab recognises the marker line and reads which operations the text defines and
# which request keys it reads; it never runs it)
"""


def stand_in_library(operation: str) -> str:
    """A stand-in library that defines just ``operation`` and reads no request key (the lab refuses a
    library that does not define the operation asked for, as the real dispatch would)."""
    return (
        FAKE_LIBRARY
        + "function Invoke-StandIn { param ($Request) }\n$operations = @{ '%s' = ${function:Invoke-StandIn} }\n"
        % operation
    )


POWERSHELL_ARGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Unrestricted"]


def encode_script(script: str) -> str:
    """What ansible's PowerShell shell plugin does: strip lines, drop blanks, UTF-16LE, base64."""
    lines = [line.strip() for line in script.splitlines() if line.strip()]
    return base64.b64encode("\n".join(lines).encode("utf-16-le")).decode()


def request(
    operation: str, params: dict[str, Any], check_mode: bool = False, nonce: str | None = None
) -> dict[str, Any]:
    return {
        "protocol": 1,
        "nonce": nonce or uuid.uuid4().hex,
        "operation": operation,
        "check_mode": check_mode,
        "params": params,
    }


def stdin_for(req: dict[str, Any] | str, library: str | None = None) -> bytes:
    text = req if isinstance(req, str) else json.dumps(req, ensure_ascii=False)
    if library is None:
        operation = req.get("operation") if isinstance(req, dict) else None
        library = stand_in_library(operation) if isinstance(operation, str) else FAKE_LIBRARY
    line1 = base64.b64encode(library.encode("utf-8")).decode()
    line2 = base64.b64encode(text.encode("utf-8")).decode()
    return f"{line1}\r\n{line2}\r\n".encode("ascii")


@dataclass
class Output:
    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def response(self, nonce: str) -> dict[str, Any]:
        text = self.stdout.decode("utf-8")
        match = re.search(rf"HYPERV_INTEGRATION_BEGIN_{nonce}\r?\n(.*?)\r?\nHYPERV_INTEGRATION_END_{nonce}", text, re.S)
        assert match, f"no markers for nonce {nonce} in {text!r}"
        return json.loads(base64.b64decode(match.group(1)).decode("utf-8"))


def connect(url: str, username: str, password: str, timeout: int = 20) -> Protocol:
    """A client of one endpoint (its own HTTP session): basic auth over loopback, so no CA bundle and no
    proxy from the environment; WS-Management OperationTimeout ``timeout``, HTTP read timeout 10 s more."""
    return Protocol(
        url,
        transport="basic",
        username=username,
        password=password,
        operation_timeout_sec=timeout,
        read_timeout_sec=timeout + 10,
        ca_trust_path=None,
        proxy=None,
    )


def connect_to(host_vars: dict[str, Any]) -> Protocol:
    """A client of the endpoint an inventory host of `lab up` names (ansible_port, user, password)."""
    url = f"http://127.0.0.1:{host_vars['ansible_port']}/wsman"
    return connect(url, host_vars["ansible_user"], host_vars["ansible_password"])


def run(protocol: Protocol, command: str, arguments: list[str], stdin: bytes | None) -> Output:
    """One command in its own shell, the way ansible's winrm connection drives pywinrm."""
    shell = protocol.open_shell(codepage=65001)
    try:
        command_id = protocol.run_command(shell, command, arguments, console_mode_stdin=stdin is None)
        if stdin is not None:
            protocol.send_command_input(shell, command_id, stdin, end=True)
        stdout, stderr, rc = protocol.get_command_output(shell, command_id)
        protocol.cleanup_command(shell, command_id)
    finally:
        protocol.close_shell(shell, close_session=False)
    return Output(rc, stdout, stderr)


def bootstrap_args(script: str = BOOTSTRAP) -> list[str]:
    return [*POWERSHELL_ARGS, "-EncodedCommand", encode_script(script)]


def call(protocol: Protocol, req: dict[str, Any], library: str | None = None) -> dict[str, Any]:
    """A library call that must be recognised; returns the RESPONSE object."""
    out = run(protocol, "PowerShell", bootstrap_args(), stdin_for(req, library))
    assert out.rc == 0, out.stderr_text
    return out.response(req["nonce"])


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 10) -> Any:
    """Poll ``probe`` every 0.1 s until it returns something true; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def in_threads(worker: Callable[[Any], None], items: Iterable[Any], timeout: float = 60) -> list[BaseException]:
    """worker(item) for every item, each in a thread of its own, all started at once; what they raised."""
    errors: list[BaseException] = []

    def run_one(item: Any) -> None:
        try:
            worker(item)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run_one, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), f"threads still running after {timeout} s"
    return errors


def build_guest_image() -> None:
    """Build (or find up to date) the Linux guest image (tests/lab/linux_image/build.sh), failing the test
    with the build's output when it fails."""
    from hvlab import linux_guest

    result = subprocess.run(
        ["bash", str(linux_guest.BUILD_SCRIPT), str(linux_guest.IMAGE_DIR)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
