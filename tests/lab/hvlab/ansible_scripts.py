"""ansible-core's own PowerShell commands that the collection's action plugins cause on the Hyper-V
host, carried out on its file system model (hvlab/host_files.py): the winrm connection's put_file and
the action plugin's `_make_tmp_path()`. Only the host endpoint accepts them (Dispatcher(host_files=...)).

put_file: what ansible sends (ansible-core 2.19, read in the installed package):

- plugins/connection/winrm.py `put_file`: builds the command with
  executor/powershell/module_manifest.py `_bootstrap_powershell_script('winrm_put_file.ps1',
  {'Path': out_path}, has_input=True)` and plugins/shell/powershell.py `_encode_script(...,
  strict_mode=False, preserve_rc=False)`: `PowerShell -NoProfile -NonInteractive -ExecutionPolicy
  Unrestricted -EncodedCommand <UTF-16LE base64 of bootstrap_wrapper.ps1, each line stripped, blank
  lines dropped, joined with LF>`.
- stdin (`_get_bootstrap_input`, `_put_file_stdin_iterator`): the bootstrap JSON (name exec_wrapper,
  exec_wrapper.ps1's text, params MinOSVersion/MinPSVersion/TempPath), a line of four NUL characters,
  the exec manifest JSON (scripts by name with base64 content, one action winrm_put_file.ps1 with
  params {Path}, signed_hashlist), four NULs again, then the file in 250000-byte pieces, each as one
  base64 line ending with CRLF.
- executor/powershell/winrm_put_file.ps1: begin `[File]::Create($Path)`; process
  `[Convert]::FromBase64String($InputObject)` per line, written to the file and hashed; end: the
  file closed and `{"sha1":"<lower hex>"}` written.
- executor/powershell/exec_wrapper.ps1: an exception in the action (its begin or process block) is
  caught and reported by Write-AnsibleErrorJson: a JSON object {failed, msg: "failure during
  exec_wrapper: <error record>", exception} on stdout and `$host.SetShouldExit(1)`; nothing goes to
  stderr. The connection then raises AnsibleError(stderr), i.e. with an empty message: that is what a
  real host gives, so the lab gives it too.

_make_tmp_path (plugins/action/__init__.py): `remote_tmp` of the shell (powershell's default
`%TEMP%`; `_remote_expand_user` leaves a path not starting with `~` alone), a name from
`_generate_temp_dir_name()` (`ansible-tmp-<time>-<pid>-<random>`), then plugins/shell/powershell.py
`_mkdtemp2`: `_bootstrap_powershell_script('powershell_mkdtemp.ps1', {'Directory': remote_tmp,
'Name': name})` (no input: stdin is the bootstrap JSON, the four-NUL line and the exec manifest JSON,
nothing after it) encoded with the shell's default `_encode_script(script)`: strict_mode and
preserve_rc on, i.e. `Set-StrictMode -Version Latest` before bootstrap_wrapper.ps1 and the
`If (-not $?) {...exit...}` line after it, then normalised as for put_file. The winrm connection's
`exec_command` sends such an already encoded command as it is (split on spaces).
executor/powershell/powershell_mkdtemp.ps1 runs `[Environment]::ExpandEnvironmentVariables($Directory)`,
`New-Item -Path $path -Name $Name -ItemType Directory` and outputs `$tmp.FullName`
(hvlab/host_files.py `HostFiles.new_directory`, `expand_environment_variables`, with the variables of
the lab user's WinRM session). exec_wrapper.ps1 runs an action without input wholly in its end
block (Begin and Process of the steppable pipeline, then `$out = $actionPipeline.End()`) and writes
`$out` to the output stream, so stdout is the one string and the console's CRLF (UTF-8: the wrapper
sets [Console]::OutputEncoding), exit 0. exec_wrapper sets `$ErrorActionPreference = "Stop"`, so New-Item's
error for an existing item stops the script and is reported as above (error object on stdout, exit 1);
`_make_tmp_path` then raises AnsibleConnectionFailure "Failed to create temporary directory. ...,
stdout output: <the object>". On success it strips stdout, splits it on `<name>=` (absent here, so
the whole text), joins it with '' by the shell's join_path (ntpath.normpath('') is '.', so `\\.` is
appended) and takes the last line: `<FullName>\\.`, which later join_path calls normalise away.

The lab recognises a command only when the decoded script equals what the installed ansible-core
would send (scripts read with pkgutil from `ansible.executor.powershell`, so a newer ansible-core is
followed, or refused as not recognised when its protocol changed) and the manifest runs exactly the
installed winrm_put_file.ps1 (or powershell_mkdtemp.ps1) with exactly its params. Anything else fails
closed (NotRecognised).

Lab approximations: the `exception` text of the error object (a real one has the position message
and a script stack trace), the JSON escaping of PowerShell 5.1's ConvertTo-Json, and what follows a
failure (on Windows each later line may add another error object; the lab stops at the first).
The effects of `Set-StrictMode` are not modelled (the wrapper scripts run under it on a real host).
.NET messages are those of .NET Framework 4.x: FormatException texts of Convert.FromBase64String
(https://learn.microsoft.com/dotnet/api/system.convert.frombase64string), PowerShell's wording of a
.NET method exception ("Exception calling "<Method>" with "<n>" argument(s): "<message>"",
MethodInvocationException).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import logging
import pkgutil
from collections.abc import Iterator
from typing import Any

from .counters import Counters
from .host_files import DotNetError, HostFiles, HostPathUnsupported, expand_environment_variables
from .protocol import POWERSHELL_NAMES, CommandResult, NotRecognised, _is_encoded_command_switch

log = logging.getLogger("hvlab.ansible_scripts")
PACKAGE = "ansible.executor.powershell"
ACTION = "winrm_put_file.ps1"
PSRP_ACTION = "psrp_put_file.ps1"  # the psrp connection's put_file action (same begin/process/end steps)
MKDTEMP = "powershell_mkdtemp.ps1"
# What plugins/shell/powershell.py `_encode_script` puts around a script with strict_mode=True and
# preserve_rc=True (the defaults, used by `_mkdtemp2`), before its line normalisation.
STRICT_MODE_LINE = "Set-StrictMode -Version Latest\r\n"
PRESERVE_RC_LINE = (
    "\r\nIf (-not $?) { If (Get-Variable LASTEXITCODE -ErrorAction SilentlyContinue) { exit $LASTEXITCODE } "
    "Else { exit 1 } }\r\n"
)
SEPARATOR = "\0\0\0\0"
SWITCHES = ("-noprofile", "-noninteractive", "-executionpolicy", "unrestricted")
BOOTSTRAP_PARAMS = {"MinOSVersion": None, "MinPSVersion": None, "TempPath": None}
BAD_BASE64_CHAR = (
    "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two "
    "padding characters, or an illegal character among the padding characters. "
)
BAD_BASE64_LENGTH = "Invalid length for a Base-64 char array or string."
BASE64_WHITESPACE = " \t\r\n"


@functools.cache
def installed_script(name: str, package: str = PACKAGE) -> bytes | None:
    """A script as the installed ansible-core sends it (an .authenticode signature appended as
    module_manifest.py `_get_powershell_script` does); None when ansible-core is not installed."""
    try:
        code = pkgutil.get_data(package, name)
    except (ImportError, OSError):
        return None
    if code is None:
        return None
    try:
        signature = pkgutil.get_data(package, f"{name}.authenticode")
    except OSError:
        signature = None
    if signature:
        code = code + b"\r\n" + b"\r\n".join(signature.splitlines()) + b"\r\n"
    return code


@functools.cache
def _signed_hashlist() -> tuple[str, str] | None:
    """(manifest path, base64 content) of ansible-core's own signed hash list, when it ships one."""
    try:
        data = pkgutil.get_data("ansible.config", "powershell_signatures.psd1")
    except (ImportError, OSError):
        return None
    if not data:
        return None
    return "ansible.config.powershell_signatures.psd1", base64.b64encode(data).decode()


def _shell_normalised(script: str) -> str:
    """What the powershell shell plugin's _encode_script does to a script before encoding it."""
    return "\n".join(line.strip() for line in script.splitlines() if line.strip())


@functools.cache
def _expected_command_script(kind: str) -> str | None:
    """The normalised script of the command: bare bootstrap_wrapper.ps1 for put_file
    (strict_mode=False, preserve_rc=False), wrapped by the shell defaults for mkdtemp."""
    wrapper = installed_script("bootstrap_wrapper.ps1")
    if wrapper is None:
        return None
    text = wrapper.decode("utf-8")
    if kind == "mkdtemp":
        text = STRICT_MODE_LINE + text + PRESERVE_RC_LINE
    return _shell_normalised(text)


def command_kind(words: list[str]) -> str | None:
    """ "put_file" or "mkdtemp" when the command line is exactly ansible-core's bootstrap_wrapper as
    that sends it; None for anything else."""
    if len(words) != 7 or words[0].rsplit("\\", 1)[-1].lower() not in POWERSHELL_NAMES:
        return None
    if tuple(w.lower() for w in words[1:5]) != SWITCHES or not _is_encoded_command_switch(words[5]):
        return None
    try:
        script = base64.b64decode(words[6], validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError):
        return None
    for kind in ("put_file", "mkdtemp"):
        expected = _expected_command_script(kind)
        if expected is not None and script == expected:
            return kind
    return None


def psrp_script_kind(script: str) -> str | None:
    """ "put_file" or "mkdtemp" when a psrp pipeline's one script is exactly what ansible-core's psrp
    connection runs for them; None for anything else.

    - put_file (plugins/connection/psrp.py `put_file`): `_bootstrap_powershell_script('psrp_put_file.ps1',
      {'Path': out_path}, has_input=True)` gives bootstrap_wrapper.ps1 as it is installed (not
      normalised, the .authenticode signature appended by `_get_powershell_script`), run with
      `add_script(script, use_local_scope=True)`; the input objects are `in_data.decode().splitlines()`
      (bootstrap JSON, four NULs, exec manifest JSON, four NULs) and then one base64 string per piece of
      the file (`[""]` for an empty file).
    - mkdtemp: `_make_tmp_path` sends `_mkdtemp2`'s -EncodedCommand through `exec_command`, which
      decodes it (`cmd.startswith("PowerShell -NoProfile ... -EncodedCommand")`) and runs the decoded
      text as the script: the normalised, strict-mode wrapped bootstrap_wrapper, as over winrm; input
      `in_data.splitlines()`."""
    wrapper = installed_script("bootstrap_wrapper.ps1")
    if wrapper is not None and script == wrapper.decode("utf-8"):
        return "put_file"
    expected = _expected_command_script("mkdtemp")
    if expected is not None and script == expected:
        return "mkdtemp"
    return None


def run_psrp(kind: str, stdin: bytes | None, files: HostFiles, counters: Counters | None) -> CommandResult:
    """Carry out a psrp pipeline psrp_script_kind() recognised; ``stdin`` is its input objects joined
    with LF (each one a line, as the wrapper reads them from $input)."""
    if kind == "mkdtemp":
        return _run_mkdtemp(stdin, files)
    if kind != "put_file":
        raise NotRecognised("not an ansible-core psrp put_file or _make_tmp_path script")
    return _run_put_file(stdin, files, counters, PSRP_ACTION)


def is_put_file_command(words: list[str]) -> bool:
    """True when the command line is exactly ansible-core's bootstrap_wrapper as put_file sends it."""
    return command_kind(words) == "put_file"


def is_ansible_command(words: list[str]) -> bool:
    """True for ansible-core's put_file or _make_tmp_path command line (run() carries it out)."""
    return command_kind(words) is not None


def _lines(data: bytes, start: int) -> Iterator[tuple[bytes, int]]:
    """Lines as PowerShell reads them from stdin (ended by CRLF, LF or CR), with the offset after each."""
    end = len(data)
    pos = start
    while pos < end:
        lf = data.find(b"\n", pos)
        cr = data.find(b"\r", pos, lf if lf >= 0 else end)
        stop = cr if cr >= 0 else (lf if lf >= 0 else end)
        line = data[pos:stop]
        if stop == end:
            pos = end
        elif data[stop : stop + 2] == b"\r\n":
            pos = stop + 2
        else:
            pos = stop + 1
        yield line, pos


def _section(data: bytes, start: int, what: str, label: str = "ansible put_file") -> tuple[Any, int]:
    """The JSON before the next four-NUL line, and the offset after that line."""
    parts: list[str] = []
    for line, after in _lines(data, start):
        text = _text(line, what, label)
        if text == SEPARATOR:
            return _json(parts, what, label), after
        parts.append(text)
    raise NotRecognised(f"{label}: stdin ended before the line of four NULs after the {what}")


def _json(parts: list[str], what: str, label: str) -> Any:
    try:
        return json.loads("\n".join(parts))
    except ValueError as exc:
        raise NotRecognised(f"{label}: the {what} is not JSON: {exc}") from exc


def _text(line: bytes, what: str, label: str = "ansible put_file") -> str:
    try:
        return line.decode("ascii")
    except UnicodeDecodeError as exc:
        raise NotRecognised(f"{label}: the {what} is not ASCII (ansible sends JSON with ASCII escapes)") from exc


def _check_bootstrap(manifest: Any, label: str = "ansible put_file") -> None:
    wrapper = installed_script("exec_wrapper.ps1")
    if not isinstance(manifest, dict) or set(manifest) != {"name", "script", "params"}:
        raise NotRecognised(f"{label}: the bootstrap manifest is not {{name, script, params}}")
    if manifest["name"] != "exec_wrapper" or wrapper is None or manifest["script"] != wrapper.decode("utf-8"):
        raise NotRecognised(f"{label}: the bootstrap does not run the installed ansible-core's exec_wrapper.ps1")
    if manifest["params"] != BOOTSTRAP_PARAMS:
        raise NotRecognised(
            f"{label}: bootstrap params {manifest['params']!r} not modelled (expected {BOOTSTRAP_PARAMS!r})"
        )


def _check_manifest(
    manifest: Any, action: str = ACTION, params: tuple[str, ...] = ("Path",), label: str = "ansible put_file"
) -> dict[str, str]:
    """The string params of the one `action`; NotRecognised for anything else."""
    action_script = installed_script(action)
    if action_script is None:
        raise NotRecognised(f"{label}: the installed ansible-core has no {action}")
    expected_scripts: dict[str, Any] = {action: {"path": action, "script": base64.b64encode(action_script).decode()}}
    expected_hashlist: list[str] = []
    hashlist = _signed_hashlist()
    if hashlist is not None:
        expected_scripts[hashlist[0]] = {"path": hashlist[0], "script": hashlist[1]}
        expected_hashlist.append(hashlist[0])
    if not isinstance(manifest, dict) or set(manifest) != {"scripts", "actions", "signed_hashlist"}:
        raise NotRecognised(f"{label}: the exec manifest is not {{scripts, actions, signed_hashlist}}")
    scripts = manifest["scripts"]
    if scripts != expected_scripts:
        names = sorted(scripts) if isinstance(scripts, dict) else scripts
        digests = []
        if isinstance(scripts, dict):
            for name in sorted(scripts):
                body = scripts[name].get("script") if isinstance(scripts[name], dict) else None
                if not isinstance(body, str):
                    digests.append(f"{name}: no script text")
                    continue
                try:
                    digests.append(f"{name}: sha256 {hashlib.sha256(base64.b64decode(body)).hexdigest()[:16]}")
                except (TypeError, ValueError, binascii.Error):
                    digests.append(f"{name}: not base64")
        raise NotRecognised(
            f"{label}: the exec manifest's scripts {names!r} are not exactly the installed ansible-core's "
            f"{action} (sha256 {hashlib.sha256(action_script).hexdigest()[:16]}); got {'; '.join(digests)}"
        )
    if manifest["signed_hashlist"] != expected_hashlist:
        raise NotRecognised(f"{label}: signed_hashlist differs from the installed ansible-core's")
    actions = manifest["actions"]
    if (
        not isinstance(actions, list)
        or len(actions) != 1
        or not isinstance(actions[0], dict)
        or set(actions[0]) != {"name", "params", "secure_params"}
        or actions[0]["name"] != action
        or actions[0]["secure_params"] != {}
        or not isinstance(actions[0]["params"], dict)
        or set(actions[0]["params"]) != set(params)
        or not all(isinstance(actions[0]["params"][name], str) for name in params)
    ):
        wanted = ", ".join(params)
        raise NotRecognised(f"{label}: the exec manifest's actions are not one {action} with params {{{wanted}}}")
    return dict(actions[0]["params"])


def from_base64(line: bytes) -> bytes:
    """[Convert]::FromBase64String: white space ignored; length and characters checked (.NET
    Framework order: the length of the significant characters first)."""
    text = line.decode("latin-1")
    compact = "".join(ch for ch in text if ch not in BASE64_WHITESPACE)
    if len(compact) % 4:
        raise DotNetError("System.FormatException", BAD_BASE64_LENGTH)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DotNetError("System.FormatException", BAD_BASE64_CHAR) from exc


def _method_error(method: str, args: int, exc: DotNetError) -> str:
    return f'Exception calling "{method}" with "{args}" argument(s): "{exc.message}"'


def _failed(
    record: str, category: str, error_id: str, block: str, script: str = ACTION, label: str = "ansible put_file"
) -> CommandResult:
    """exec_wrapper.ps1 Write-AnsibleErrorJson: the error object on stdout, exit code 1, no stderr."""
    exception = "\r\n".join(
        [
            record,
            f"At {script}, {block} block",
            f"+ CategoryInfo          : {category}",
            f"+ FullyQualifiedErrorId : {error_id}",
            "",
            "ScriptStackTrace:",
            f"at <ScriptBlock><{block}>, {script}",
        ]
    )
    body = {"failed": True, "msg": f"failure during exec_wrapper: {record}", "exception": exception}
    log.warning("%s failed: %s", label, record)
    return CommandResult((json.dumps(body) + "\r\n").encode("utf-8"), b"", 1, True, label)


def run(words: list[str], stdin: bytes | None, files: HostFiles, counters: Counters | None) -> CommandResult:
    """Carry out one command that is_ansible_command(words) recognised."""
    kind = command_kind(words)
    if kind == "mkdtemp":
        return _run_mkdtemp(stdin, files)
    if kind != "put_file":
        raise NotRecognised("not an ansible-core put_file or _make_tmp_path command")
    return _run_put_file(stdin, files, counters)


def _run_mkdtemp(stdin: bytes | None, files: HostFiles) -> CommandResult:
    """powershell_mkdtemp.ps1 through the exec wrapper: the new directory's FullName on stdout."""
    label = "ansible _make_tmp_path"
    data = stdin or b""
    bootstrap, offset = _section(data, 0, "bootstrap manifest", label)
    _check_bootstrap(bootstrap, label)
    parts: list[str] = []
    for line, _after in _lines(data, offset):
        text = _text(line, "exec manifest", label)
        if text == SEPARATOR:
            raise NotRecognised(f"{label}: input after the exec manifest is not modelled (_mkdtemp2 sends none)")
        parts.append(text)
    params = _check_manifest(_json(parts, "exec manifest", label), MKDTEMP, ("Directory", "Name"), label)
    for name in ("Directory", "Name"):
        if params[name] == "":
            return _failed(
                f"Cannot bind argument to parameter '{name}' because it is an empty string.",
                f"InvalidData: (:) [{MKDTEMP}], ParameterBindingValidationException",
                f"ParameterArgumentValidationErrorEmptyStringNotAllowed,{MKDTEMP}",
                "End",
                MKDTEMP,
                label,
            )
    try:
        directory = expand_environment_variables(params["Directory"], files.session_environment())
        full_name = files.new_directory(directory, params["Name"])
    except HostPathUnsupported as exc:
        raise NotRecognised(f"{label}: {exc}") from exc
    except DotNetError as exc:
        # The only error new_directory reports: FileSystemProvider's DirectoryExist record.
        target = exc.message.removeprefix("An item with the specified name ").removesuffix(" already exists.")
        return _failed(
            exc.message,
            f"ResourceExists: ({target}:String) [New-Item], IOException",
            "DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand",
            "End",
            MKDTEMP,
            label,
        )
    log.info("%s: %s", label, full_name)
    return CommandResult(f"{full_name}\r\n".encode(), b"", 0, True, label)


def _run_put_file(
    stdin: bytes | None, files: HostFiles, counters: Counters | None, action: str = ACTION
) -> CommandResult:
    """winrm_put_file.ps1 (or psrp_put_file.ps1: the same File.Create in begin, FromBase64String per
    input line in process, the sha1 JSON in end) through the exec wrapper: the file written, its sha1
    answered."""
    data = stdin or b""
    bootstrap, offset = _section(data, 0, "bootstrap manifest")
    _check_bootstrap(bootstrap)
    manifest, offset = _section(data, offset, "exec manifest")
    path = _check_manifest(manifest, action)["Path"]
    if path == "":
        return _failed(
            "Cannot bind argument to parameter 'Path' because it is an empty string.",
            f"InvalidData: (:) [{action}], ParameterBindingValidationException",
            f"ParameterArgumentValidationErrorEmptyStringNotAllowed,{action}",
            "Begin",
            action,
        )
    try:
        writer = files.open_create(path)
    except DotNetError as exc:
        short = exc.type.rsplit(".", 1)[-1]
        return _failed(
            _method_error("Create", 1, exc),
            "NotSpecified: (:) [], MethodInvocationException",
            short,
            "Begin",
            action,
        )
    except HostPathUnsupported as exc:
        raise NotRecognised(f"ansible put_file: {exc}") from exc
    sha1 = hashlib.sha1()
    try:
        for line, _after in _lines(data, offset):
            try:
                chunk = from_base64(line)
            except DotNetError as exc:
                return _failed(
                    _method_error("FromBase64String", 1, exc),
                    "NotSpecified: (:) [], MethodInvocationException",
                    "FormatException",
                    "Process",
                    action,
                )
            sha1.update(chunk)
            writer.write(chunk)
    finally:
        writer.close()
    if counters is not None:
        counters.add("put_files")
        counters.add("put_file_bytes", writer.written)
    log.info("ansible put_file: %s (%d bytes)", path, writer.written)
    return CommandResult(f'{{"sha1":"{sha1.hexdigest()}"}}\r\n'.encode("ascii"), b"", 0, True, "ansible put_file")
