"""Recognising a call of the collection's PowerShell library and answering it
(docs/dev/powershell-protocol.md, implemented independently of plugins/).

A call is: `PowerShell ... -EncodedCommand <base64 UTF-16LE bootstrap>` plus stdin of two base64
lines (library, JSON request). Anything else is "not recognised": exit 1 and a stderr line saying
what was wrong, so a test never passes against a lab that silently did nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import library_reads

if TYPE_CHECKING:
    from .counters import Counters
    from .host_files import HostFiles

BOOTSTRAP_MARKER = "# hyperv.integration bootstrap protocol=1"
LIBRARY_MARKER = "# HYPERV_INTEGRATION_LIBRARY protocol=1"
POWERSHELL_NAMES = ("powershell", "powershell.exe", "pwsh", "pwsh.exe")
REQUEST_KEYS = ("protocol", "nonce", "operation", "check_mode", "params")
NONCE_RE = re.compile(r"^[0-9a-fA-F]{32}$")


# Language modes in which the bootstrap cannot even be parsed (PowerShell's ParserStrings.resx:
# ScriptsNotAllowed; AssignmentStatementNotSupportedInDataSection, its first statement being an assignment).
# Only a PSRP session configuration (JEA) runs in them; powershell.exe runs in FullLanguage or
# ConstrainedLanguage (about_Language_Modes), so the LABFILE allows them with host.connection psrp only.
SCRIPT_REFUSING_MODES = {
    "NoLanguage": (
        "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode."
    ),
    "RestrictedLanguage": "Assignment statements are not allowed in restricted language mode or a Data section.",
}


class NotRecognised(Exception):
    """The command, its stdin or the request is not something the lab understands."""


class OperationError(Exception):
    """A failure the real library reports as `ok: false` (a .NET exception on the host)."""

    def __init__(
        self,
        type_: str,
        message: str,
        vm: str | None = None,
        service: str | None = None,
        category: str = "NotSpecified",
    ):
        super().__init__(message)
        self.type = type_
        self.message = message
        # ErrorRecord.CategoryInfo.Category: not localized, so the controller decides on it.
        self.category = category
        self.vm = vm
        self.service = service

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "category": self.category,
            "vm": self.vm,
            "service": self.service,
        }


# The libraries' Test-XmlText (_prelude.ps1) and its refusal text.
XML_CHARACTERS = "characters XML 1.0 allows (no control characters but tab, LF and CR; no lone surrogates)"


def xml_chars_ok(text: str) -> bool:
    """System.Xml.XmlConvert.VerifyXmlChars: XML 1.0's Char production (a lone surrogate fails)."""
    for ch in text:
        code = ord(ch)
        if not (
            code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF
        ):
            return False
    return True


def kvp_limits(params: dict[str, Any], names: tuple[str, ...], operation: str) -> dict[str, int]:
    """The KVP size limits a request carries (vm_kvp_set, guest_kvp_set). The libraries read each as
    params.limits.<name> under strict mode and convert it with [int]: a missing name throws there, so
    anything but an object of exactly these integers is refused here."""
    limits = params["limits"]
    if (
        not isinstance(limits, dict)
        or set(limits) != set(names)
        or not all(isinstance(limits[n], int) and not isinstance(limits[n], bool) for n in names)
    ):
        raise NotRecognised(f"{operation} params.limits must be an object of integers {', '.join(names)}")
    return limits


@dataclass
class LibraryCall:
    library: str
    nonce: str
    operation: str
    check_mode: bool
    params: dict[str, Any]


@dataclass
class CommandResult:
    stdout: bytes
    stderr: bytes
    exit_code: int
    recognised: bool = False
    operation: str | None = None
    # The script could not run at all (a locked-down PSRP endpoint): a psrp pipeline ends Failed with
    # stderr as its error, rather than Completed with output (hvlab/psrp.py).
    script_refused: bool = False


Operation = Callable[[LibraryCall], dict[str, Any]]


def command_words(command: str, arguments: list[str]) -> list[str]:
    # pywinrm joins all arguments into one <rsp:Arguments> element; other clients send one element
    # per word. Splitting on white space handles both (base64 never contains spaces).
    words = command.split()
    for argument in arguments:
        words.extend(argument.split())
    return words


def decode_bootstrap(words: list[str]) -> str:
    """Return the bootstrap script; NotRecognised unless it is ours."""
    shown = " ".join(words)
    shown = shown if len(shown) <= 160 else shown[:157] + "..."
    if not words or words[0].rsplit("\\", 1)[-1].lower() not in POWERSHELL_NAMES:
        raise NotRecognised(f"command not recognised (expected 'PowerShell ... -EncodedCommand <bootstrap>'): {shown}")
    positions = [i for i, w in enumerate(words[1:], 1) if _is_encoded_command_switch(w)]
    if len(positions) != 1 or positions[0] + 1 >= len(words):
        raise NotRecognised(f"command not recognised (no single -EncodedCommand <base64>): {shown}")
    try:
        script = base64.b64decode(words[positions[0] + 1], validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise NotRecognised(f"-EncodedCommand is not base64 of UTF-16LE text: {exc}") from exc
    check_bootstrap(script, "-EncodedCommand")
    return script


def check_bootstrap(script: str, what: str) -> None:
    """NotRecognised unless the script's first line is the bootstrap marker, compared after the
    normalisation ansible's shell plugin applies (strip lines, drop blanks), and it reads its input
    through `$input`: a PSRP pipeline has no standard input, only pipeline input, so a bootstrap that
    read [Console]::In would work over winrm and ssh and get nothing over psrp (protocol doc section 1)."""
    lines = [line.strip() for line in script.lstrip("\ufeff").splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if first != BOOTSTRAP_MARKER:
        raise NotRecognised(
            f"{what} is not the hyperv.integration bootstrap: first line is "
            f"{first[:120]!r}, expected {BOOTSTRAP_MARKER!r}"
        )
    code = [line.lower() for line in lines if not line.startswith("#")]
    if not any("$input" in line for line in code) or any("[console]::in" in line for line in code):
        raise NotRecognised(
            f"{what}: the bootstrap must read its input through $input (and not [Console]::In), which "
            "powershell.exe's standard input and a PSRP pipeline's input both reach"
        )


def _is_encoded_command_switch(word: str) -> bool:
    # powershell.exe accepts unambiguous prefixes (-e, -enc, ...) and the alias -ec.
    lower = word.lower()
    return lower == "-ec" or (len(lower) >= 2 and "-encodedcommand".startswith(lower))


def decode_stdin(stdin: bytes | None) -> tuple[str, str]:
    """Return (library text, request text) from the two base64 stdin lines."""
    if not stdin:
        raise NotRecognised("no stdin: expected two base64 lines (library, request)")
    try:
        text = stdin.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise NotRecognised(f"stdin is not UTF-8 text: {exc}") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 2:
        raise NotRecognised(f"stdin must be exactly two non-empty base64 lines (library, request), got {len(lines)}")
    decoded = []
    for number, line in enumerate(lines, 1):
        try:
            decoded.append(base64.b64decode(line, validate=True).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise NotRecognised(f"stdin line {number} is not base64 of UTF-8 text: {exc}") from exc
    library, request = decoded
    if LIBRARY_MARKER not in (line.strip() for line in library.lstrip("\ufeff").splitlines()):
        raise NotRecognised(f"stdin line 1 is not the hyperv.integration library: no line {LIBRARY_MARKER!r}")
    return library, request


# Windows PowerShell 5.1's ConvertFrom-Json (JavaScriptSerializer) turns a JSON string written with the
# escaped prefix \/Date( into a [datetime] (JavaScriptObjectDeserializer.cs, DateTimePrefix); Python's
# json.loads does not, so the lab refuses such a request rather than read it as text.
DATE_ESCAPE = '"\\/Date('


def parse_request(library: str, text: str) -> LibraryCall:
    if DATE_ESCAPE in text:
        raise NotRecognised(
            "request holds a string written as \\/Date(...): Windows PowerShell 5.1 would read it as a date"
        )
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise NotRecognised(f"request (stdin line 2) is not valid JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise NotRecognised("request (stdin line 2) must be a JSON object")
    missing = [k for k in REQUEST_KEYS if k not in request]
    extra = sorted(k for k in request if k not in REQUEST_KEYS)
    if missing or extra:
        # An unknown key (say 'checkmode') must not silently turn a dry run into writes.
        raise NotRecognised(f"request keys not recognised: missing {missing}, unknown {extra}")
    if request["protocol"] != 1 or isinstance(request["protocol"], bool):
        raise NotRecognised(f"request protocol {request['protocol']!r} not recognised (expected 1)")
    nonce = request["nonce"]
    if not isinstance(nonce, str) or not NONCE_RE.match(nonce):
        raise NotRecognised(f"request nonce {nonce!r} not recognised (expected 32 hex characters)")
    if not isinstance(request["operation"], str):
        raise NotRecognised("request operation must be a string")
    if not isinstance(request["check_mode"], bool):
        raise NotRecognised(f"request check_mode must be true or false, got {request['check_mode']!r}")
    if not isinstance(request["params"], dict):
        raise NotRecognised("request params must be a JSON object")
    return LibraryCall(library, nonce, request["operation"], request["check_mode"], request["params"])


def encode_response(call: LibraryCall, result: dict[str, Any] | None, error: OperationError | None) -> bytes:
    response = {
        "protocol": 1,
        "operation": call.operation,
        "ok": error is None,
        "result": result if error is None else None,
        "error": error.as_json() if error is not None else None,
    }
    payload = base64.b64encode(json.dumps(response, ensure_ascii=False).encode("utf-8")).decode()
    # Write-Output on Windows ends lines with CRLF; the controller must cope with that.
    lines = [f"HYPERV_INTEGRATION_BEGIN_{call.nonce}", payload, f"HYPERV_INTEGRATION_END_{call.nonce}"]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _not_recognised(exc: NotRecognised, call: LibraryCall | None) -> CommandResult:
    message = f"hyperv.integration lab: {exc}\r\n"
    return CommandResult(b"", message.encode("utf-8"), 1, False, call.operation if call else None)


class Dispatcher:
    """Runs one WinRM command against a backend's operation table.

    `operations` maps operation names to handlers (the host's, or one Windows guest's);
    `before_call` can refuse a call as a whole (access denied). `host_files`: the endpoint's file
    system (the Hyper-V host's only); with it, ansible-core's own winrm put_file and _make_tmp_path are
    carried out on it (hvlab/ansible_scripts.py) and counted in `counters`; without it, they are refused."""

    def __init__(
        self,
        operations: dict[str, Operation],
        before_call: Callable[[LibraryCall], None] | None = None,
        where: str = "",
        language_mode: Callable[[], str] | None = None,
        host_files: HostFiles | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.operations = operations
        self.before_call = before_call
        self.where = where  # e.g. "the Hyper-V host hv01": named when an operation is unknown here
        self.language_mode = language_mode  # the session's PSLanguageMode name (FullLanguage unless a fault says)
        self.host_files = host_files
        self.counters = counters

    def run(self, command: str, arguments: list[str], stdin: bytes | None) -> CommandResult:
        try:
            words = command_words(command, arguments)
            from . import ansible_scripts  # imports this module: loaded on first use

            if ansible_scripts.is_ansible_command(words):
                return self._put_file(ansible_scripts, words, stdin)
            decode_bootstrap(words)
        except NotRecognised as exc:
            return _not_recognised(exc, None)
        return self._bootstrap_call(stdin)

    def run_script(self, script: str, input_lines: list[Any] | None) -> CommandResult:
        """The PowerShell Remoting (psrp) entry point: one pipeline whose one command is ``script``
        (ansible's psrp connection decodes the -EncodedCommand and runs the script text itself) with
        ``input_lines`` as its input objects (the stdin lines: library, request). The same checks,
        counters and answers as run(): the input objects must be strings without line breaks (ansible
        sends ``in_data.splitlines()``), then they are read as the stdin lines they came from.
        ansible-core's own psrp put_file and _make_tmp_path scripts go to hvlab/ansible_scripts.py."""
        try:
            lines = list(input_lines or [])
            for number, line in enumerate(lines, 1):
                if not isinstance(line, str):
                    raise NotRecognised(f"pipeline input object {number} is a {type(line).__name__}, not a string")
                if "\r" in line or "\n" in line:
                    raise NotRecognised(f"pipeline input object {number} holds a line break (one line per object)")
            from . import ansible_scripts  # imports this module: loaded on first use

            kind = ansible_scripts.psrp_script_kind(script)
            stdin = "\n".join(lines).encode("utf-8") if lines else None
            if kind is not None:
                return self._ansible(lambda files: ansible_scripts.run_psrp(kind, stdin, files, self.counters))
            check_bootstrap(script, "the pipeline's script")
        except NotRecognised as exc:
            return _not_recognised(exc, None)
        return self._bootstrap_call(stdin)

    def _bootstrap_call(self, stdin: bytes | None) -> CommandResult:
        """What the bootstrap does with its stdin: the language mode check, then the library call."""
        call: LibraryCall | None = None
        try:
            mode = self.language_mode() if self.language_mode is not None else "FullLanguage"
            if mode in SCRIPT_REFUSING_MODES:
                # A JEA endpoint: the bootstrap is refused as it is parsed, before its first check can
                # answer anything (protocol doc section 6); PowerShell's own text (ParserStrings.resx).
                text = SCRIPT_REFUSING_MODES[mode] + "\r\n"
                return CommandResult(b"", text.encode("utf-8"), 1, True, None, script_refused=True)
            if mode != "FullLanguage":
                # The bootstrap's first check (protocol doc section 6): one line, nothing run.
                line = f"HYPERV_INTEGRATION_UNSUPPORTED language_mode={mode}\r\n"
                return CommandResult(line.encode("ascii"), b"", 1, True, None)
            library, request_text = decode_stdin(stdin)
            call = parse_request(library, request_text)
            handler = self.operations.get(call.operation)
            if handler is None:
                where = f" on {self.where}" if self.where else ""
                raise NotRecognised(
                    f"unknown operation {call.operation!r}{where}; known here: " + ", ".join(sorted(self.operations))
                )
            self._check_library_fits(call)
            try:
                self._check_strict_reads(call)
                if self.before_call is not None:
                    self.before_call(call)
                result, error = handler(call), None
            except OperationError as exc:
                result, error = None, exc
            return CommandResult(encode_response(call, result, error), b"", 0, True, call.operation)
        except NotRecognised as exc:
            return _not_recognised(exc, call)

    def _put_file(self, module: Any, words: list[str], stdin: bytes | None) -> CommandResult:
        """ansible-core's winrm put_file or _make_tmp_path."""
        return self._ansible(lambda files: module.run(words, stdin, files, self.counters))

    def _ansible(self, run: Callable[[HostFiles], CommandResult]) -> CommandResult:
        """ansible-core's own commands (NotRecognised where this endpoint has no file system, or
        the session is not in FullLanguage: there the exec wrapper works differently)."""
        where = self.where or "this endpoint"
        if self.host_files is None:
            raise NotRecognised(
                f"ansible's own commands (put_file, its temporary directory) are not modelled on {where}: "
                "only the Hyper-V host endpoint has a file system"
            )
        mode = self.language_mode() if self.language_mode is not None else "FullLanguage"
        if mode != "FullLanguage":
            raise NotRecognised(f"ansible's put_file in {mode} is not modelled by the lab ({where})")
        return run(self.host_files)

    def _check_library_fits(self, call: LibraryCall) -> None:
        """The library body must be the one for this endpoint (host library to the host, guest library
        to a guest): its own operation table is read from the text that arrived."""
        untracked = library_reads.untracked_uses(call.library)
        if untracked:
            # Fail closed: the lab cannot tell which request keys such a library reads.
            raise NotRecognised(
                "the library uses request values in forms the lab cannot follow (hvlab/library_reads.py): "
                + "; ".join("line %d: %s" % item for item in untracked[:5])
            )
        defined = library_reads.operations_of(call.library)
        foreign = sorted(set(defined) - set(self.operations))
        if foreign or not defined:
            where = self.where or "this endpoint"
            raise NotRecognised(
                f"the library sent defines operations {sorted(defined)}, not those of {where} "
                f"({', '.join(sorted(self.operations))}): a library body sent to the wrong endpoint"
            )

    def _check_strict_reads(self, call: LibraryCall) -> None:
        """What Set-StrictMode -Version 3.0 does on a real host: reading a request key the request does
        not have throws (hvlab/library_reads.py). The lab throws too, as the library would report it."""
        request = {
            "protocol": 1,
            "nonce": call.nonce,
            "operation": call.operation,
            "check_mode": call.check_mode,
            "params": call.params,
        }
        if call.operation not in library_reads.operations_of(call.library):
            # _dispatch.ps1 throws this for an operation its body does not define.
            raise OperationError(
                "System.ArgumentException", f"unknown operation '{call.operation}'", category="OperationStopped"
            )
        violation = library_reads.strict_mode_violation(call.library, request)
        if violation is not None:
            key, _path = violation
            raise OperationError(
                library_reads.STRICT_TYPE, library_reads.STRICT_MESSAGE % key, category=library_reads.STRICT_CATEGORY
            )
