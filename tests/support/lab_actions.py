"""Running the collection's action plugins for real (ActionModule.run) against an in-process lab.

The task's connection is a stand-in whose ``_low_level_execute_command`` hands the exact command and
stdin the plugin built to a lab endpoint's Dispatcher (no WinRM server, no ansible-playbook): the lab
reads the library text that arrived, as it does over WinRM. Each request and answer is recorded.
"""

from __future__ import annotations

import json
import typing as t
from unittest.mock import MagicMock

from ansible.errors import AnsibleError
from ansible.executor.powershell.module_manifest import _bootstrap_powershell_script
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.connection.winrm import Connection as WinRMConnection
from ansible.plugins.loader import shell_loader
from ansible.plugins.shell.powershell import ShellModule
from ansible.utils.hashing import secure_hash
from hvlab import labfile
from hvlab.protocol import NotRecognised, decode_bootstrap, decode_stdin
from hvlab.server import Lab

from support.labspec import lab_spec, vm_spec

LAB = lab_spec(vm_spec("web01", "windows"), vm_spec("db01", "none", "Off"), vm_spec("Prüf'VM $(x)"), language="de-DE")


class LabConnection:
    """What the action plugins see as their connection: a PowerShell shell, and a command runner that
    records each request and answers it from an in-process lab endpoint."""

    def __init__(self, lab: Lab, endpoint: str) -> None:
        self.backend = lab.endpoints[endpoint].backend
        self.requests: list[dict[str, t.Any]] = []
        self.libraries: list[str] = []
        self.results: list[t.Any] = []
        self.put_files: list[str] = []
        self.ansible_commands: list[t.Any] = []  # ansible-core's own commands (mkdtemp), as answered
        self.lab: Lab | None = None

    def execute(self, cmd: str, sudoable: bool = True, in_data: bytes | None = None, **_kwargs: t.Any) -> dict:
        words = cmd.split()
        if not is_library_call(words):  # ansible's own (its mkdtemp): run, not recorded as a request
            other = self.backend.run(words[0], words[1:], in_data)
            self.ansible_commands.append(other)
            return {"rc": other.exit_code, "stdout": other.stdout.decode(), "stderr": other.stderr.decode()}
        library, request_text = decode_stdin(in_data)
        self.libraries.append(library)
        self.requests.append(json.loads(request_text))
        result = self.backend.run(words[0], words[1:], in_data)
        self.results.append(result)
        return {"rc": result.exit_code, "stdout": result.stdout.decode(), "stderr": result.stderr.decode()}

    def put_file(self, in_path: str, out_path: str) -> None:
        """ansible's winrm put_file, to the lab endpoint: its own command (the bootstrap wrapper running
        winrm_put_file.ps1), stdin as its iterator makes it, and its checks of the answer."""
        self.put_files.append(out_path)
        script, initial = _bootstrap_powershell_script("winrm_put_file.ps1", {"Path": out_path}, has_input=True)
        words = ShellModule()._encode_script(script, as_list=True, strict_mode=False, preserve_rc=False)
        stand_in = MagicMock()  # the iterator reads only _display and _winrm_host of its connection
        chunks = WinRMConnection._put_file_stdin_iterator(stand_in, initial, in_path, out_path)
        result = self.backend.run(words[0], words[1:], b"".join(chunk for chunk, _end in chunks))
        if result.exit_code != 0:
            raise AnsibleError(result.stderr.decode())
        if json.loads(result.stdout).get("sha1") != secure_hash(in_path):
            raise AnsibleError("Remote sha1 does not match the local one")


def is_library_call(words: list[str]) -> bool:
    """Whether a command is the collection's bootstrap (else it is one of ansible-core's own)."""
    try:
        decode_bootstrap(words)
    except NotRecognised:
        return False
    return True


def run_with(
    cls: t.Any,
    args: dict[str, t.Any],
    endpoint: str,
    execute: t.Callable[..., dict],
    check_mode: bool = False,
    delegated_from: str | None = None,
    put_file: t.Callable[[str, str], None] | None = None,
) -> dict:
    """Run ``cls`` (an ActionModule class) with ``args`` for ``endpoint``; ``execute`` stands in for
    ``_low_level_execute_command`` (a lab endpoint, or recorded answers), ``put_file`` for the
    connection's. ``delegated_from``: the task runs for that inventory host with ``delegate_to: endpoint``,
    as the roles' host-side tasks do. Files are found as on a controller (a real DataLoader; absolute paths)."""
    task = MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.diff = True
    task.async_val = 0
    task.delegate_to = endpoint if delegated_from else None
    task.get_search_path.return_value = []
    play_context = MagicMock()
    play_context.remote_addr = endpoint
    conn = MagicMock()
    conn._shell = shell_loader.get("powershell")  # through the loader: its options are defined
    conn._shell.set_options()  # their defaults (remote_tmp %TEMP%), as ansible configures a shell
    conn._remote_is_local = False  # a Windows host, not this controller (ActionBase._make_tmp_path)
    if put_file is not None:
        conn.put_file = put_file
    action = cls(task, conn, play_context, loader=DataLoader(), templar=MagicMock(), shared_loader_obj=MagicMock())
    action._low_level_execute_command = execute
    return action.run(task_vars={"inventory_hostname": delegated_from or endpoint})


def lab_connection(endpoint: str, lab_spec: dict | None = None) -> LabConnection:
    """A connection to ``endpoint`` of a new in-process lab (``lab_spec``, or LAB)."""
    lab = Lab(labfile.parse(lab_spec or LAB), "lab-admin", "secret", linux_guest=None)
    connection = LabConnection(lab, endpoint)
    connection.lab = lab
    return connection


def run_action(
    cls: t.Any,
    args: dict[str, t.Any],
    endpoint: str,
    check_mode: bool = False,
    lab_spec: dict | None = None,
    delegated_from: str | None = None,
) -> tuple[dict, LabConnection]:
    """Run ``cls`` (an ActionModule class) with ``args`` against ``endpoint`` of a new lab."""
    connection = lab_connection(endpoint, lab_spec)
    result = run_with(cls, args, endpoint, connection.execute, check_mode, delegated_from, connection.put_file)
    return result, connection
