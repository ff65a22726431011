"""The Hyper-V host's file system, as far as the collection uses it: files that ansible's winrm
put_file uploads and the temporary directories ansible's _make_tmp_path makes
(hvlab/ansible_scripts.py), that the host library's Copy-VMFile reads, and that are removed again.
The contents live in a real directory of the lab machine (`<root>/C/...`, names with the case they
were created with); which names exist is kept in an index that compares names the
Windows way. Standard library only.

Windows behaviours modelled, and where they come from:

- Paths (.NET Framework 4.x `Path.GetFullPath`, which `File.Create` applies first; documented at
  https://learn.microsoft.com/dotnet/standard/io/file-path-formats): `/` is a separator like `\\`,
  repeated separators collapse, `.` and `..` are resolved (`..` stops at the root), trailing dots and
  spaces of a component are dropped. The message of an exception names the full path after this.
- Names compare case-insensitively and keep their case (NTFS default; compared char by char with
  Python's simple upper-case mapping instead of NTFS's upcase table: a lab simplification, as in
  hvlab/hvsocket.py).
- Refused characters (`File.Create` exceptions, https://learn.microsoft.com/dotnet/api/system.io.file.create,
  and .NET's own tests of the Framework behaviour, dotnet/corefx PathTests_Windows_NetFX.cs):
  `" < > |`, `?`, `*` and control characters anywhere give System.ArgumentException "Illegal characters
  in path."; a `:` other than the drive's gives System.NotSupportedException "The given path's format
  is not supported."; an empty path System.ArgumentException "Empty path name is not legal.", one of
  white space only "The path is not of a legal form.".
- A missing directory on the way (or a file where a directory should be, Win32 ERROR_PATH_NOT_FOUND,
  or a drive other than C:) gives System.IO.DirectoryNotFoundException "Could not find a part of the
  path '<full path>'."; creating a file where a directory is gives System.UnauthorizedAccessException
  "Access to the path '<full path>' is denied."; a full path of 260 characters or more, or a name
  longer than 255, System.IO.PathTooLongException (MAX_PATH, long paths not enabled: the Windows
  default); opening a file another handle holds (File.Create shares nothing, FileShare.None) gives
  System.IO.IOException "The process cannot access the file '<full path>' because it is being used by
  another process.".
- `File.Create` creates or truncates the file at once (before anything is written).
- `Remove-Item -LiteralPath <file> -Force`: a missing path throws
  System.Management.Automation.ItemNotFoundException "Cannot find path '<path>' because it does not
  exist." (the path as given). `Remove-Item -LiteralPath <dir> -Recurse -Force` (remove_tree) removes
  the directory with everything in it, and a file like the above; -Force is what lets it remove
  hidden and read-only items (Remove-Item docs, 5.1:
  https://learn.microsoft.com/powershell/module/microsoft.powershell.management/remove-item).
- `New-Item -Path <dir> -Name <name> -ItemType Directory` (new_directory; what ansible-core's
  powershell_mkdtemp.ps1 runs), read in the PowerShell engine source (PowerShell/PowerShell,
  SessionStateContainer.cs `NewItem`, FileSystemProvider.cs `NewItem` and `CreateDirectory`; the
  message is FileSystemProviderStrings.resx `DirectoryExist`, the same text Windows PowerShell 5.1
  prints): trailing separators and spaces of -Path are trimmed, the path is globbed allowing a path
  that does not exist, and -Name is joined to it with a backslash. Without -Force an existing item
  of that name (a directory or a file) is an error: System.IO.IOException "An item with the specified
  name <path> already exists." (error id DirectoryExist, category ResourceExists). Otherwise
  `Directory.CreateDirectory` makes the directory and every missing directory above it (it creates
  all directories in the path: https://learn.microsoft.com/dotnet/api/system.io.directory.createdirectory),
  and the new DirectoryInfo is the output; its FullName is the full path (GetFullPath form).
- `[Environment]::ExpandEnvironmentVariables` (expand_environment_variables): each `%NAME%` whose
  NAME is set is replaced by its value, names compared case-insensitively; a name that is not set
  leaves the text as it is, percent signs included, and its closing `%` may open the next name; a
  lone `%` stays (https://learn.microsoft.com/dotnet/api/system.environment.expandenvironmentvariables,
  which defers to Win32 ExpandEnvironmentStrings,
  https://learn.microsoft.com/windows/win32/api/processenv/nf-processenv-expandenvironmentstringsw).
  The variables are those of a WinRM session of the lab user (session_environment): TEMP and TMP the
  user's temp directory without the trailing backslash, the profile variables, SystemRoot and windir
  `C:\\Windows` (the list of standard variables:
  https://learn.microsoft.com/windows/deployment/usmt/usmt-recognized-environment-variables). Names a
  real session also sets but the lab has no value for (COMPUTERNAME, ProgramFiles, Path ...) are
  refused with HostPathUnsupported rather than left unexpanded.

Not modelled, refused with HostPathUnsupported (the command fails loudly, never does something a real
host would not): relative, drive-relative (`C:x`), root-relative (`\\x`), UNC and device (`\\\\?\\`)
paths, device names (CON, NUL, COM1 ...), components that are only dots or spaces beyond `.`/`..`, a
trailing separator on a path that is not an existing directory, removing a directory without
-Recurse (Windows would ask for confirmation), removing a tree that holds an open file or the drive
root, New-Item with wildcard characters in -Path or a separator in -Name, on a drive other than C:,
or through a file where a directory should be, and paths .NET refuses in New-Item or Remove-Item.
There are no attributes (read-only, hidden), ACLs, alternate data streams or short (8.3) names.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

MAX_PATH = 260  # full path length limit (characters, the terminating NUL included in Win32's count)
MAX_NAME = 255  # NTFS component limit
ILLEGAL = frozenset('"<>|?*') | frozenset(chr(c) for c in range(32))
DEVICE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)
DRIVE_RE = re.compile(r"^([A-Za-z]):\\")
LAB_DRIVE = "C"
TOO_LONG = (
    "The specified path, file name, or both are too long. The fully qualified file name must be less "
    "than 260 characters, and the directory name must be less than 248 characters."
)

WILDCARDS = frozenset("*?[]")  # PowerShell wildcard characters: New-Item -Path globs them
# Standard variables of a Windows session the lab gives no value for: refused, not left unexpanded.
UNMODELLED_VARIABLES = frozenset(
    name.upper()
    for name in (
        "COMPUTERNAME",
        "USERDOMAIN",
        "USERDNSDOMAIN",
        "LOGONSERVER",
        "HOMEDRIVE",
        "HOMEPATH",
        "HOMESHARE",
        "ProgramFiles",
        "ProgramFiles(x86)",
        "ProgramW6432",
        "CommonProgramFiles",
        "CommonProgramFiles(x86)",
        "CommonProgramW6432",
        "ComSpec",
        "Path",
        "PATHEXT",
        "PSModulePath",
        "OS",
        "NUMBER_OF_PROCESSORS",
        "PROCESSOR_ARCHITECTURE",
        "PROCESSOR_IDENTIFIER",
        "PROCESSOR_LEVEL",
        "PROCESSOR_REVISION",
        "DriverData",
        "CD",
        "DATE",
        "TIME",
        "RANDOM",
        "ERRORLEVEL",
        "CMDCMDLINE",
        "CMDEXTVERSION",
    )
)


class DotNetError(Exception):
    """An exception a real host would throw: its .NET type (full name) and message."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message


class HostPathUnsupported(ValueError):
    """A path form the lab does not model: the command is refused as not recognised."""


def fold(name: str) -> str:
    """Windows name comparison: upper case, char by char (lengths never change)."""
    return "".join(u if len(u := ch.upper()) == 1 else ch for ch in name)


def expand_environment_variables(text: str, variables: dict[str, str]) -> str:
    """[Environment]::ExpandEnvironmentVariables(text) with `variables` (names compared
    case-insensitively). HostPathUnsupported for a standard Windows name the lab has no value for."""
    values = {fold(name): value for name, value in variables.items()}
    out: list[str] = []
    start = 0  # text[start:] is still to be copied or expanded
    while True:
        opening = text.find("%", start)
        closing = text.find("%", opening + 1) if opening >= 0 else -1
        if closing < 0:
            out.append(text[start:])
            return "".join(out)
        out.append(text[start:opening])
        name = text[opening + 1 : closing]
        value = values.get(fold(name)) if name else None
        if value is not None:
            out.append(value)
            start = closing + 1
            continue
        if fold(name) in UNMODELLED_VARIABLES:
            raise HostPathUnsupported(f"the lab has no value for the Windows environment variable %{name}%: {text!r}")
        out.append(text[opening:closing])  # not set: kept; its closing % may open the next name
        start = closing


@dataclass(frozen=True)
class WinPath:
    drive: str  # as written (c or C)
    parts: tuple[str, ...]  # resolved components, as written
    trailing_separator: bool

    @property
    def full(self) -> str:
        text = f"{self.drive}:\\" + "\\".join(self.parts)
        return text + "\\" if self.trailing_separator and self.parts else text

    @property
    def key(self) -> tuple[str, ...]:
        return (fold(self.drive), *(fold(p) for p in self.parts))


def parse_path(path: str) -> WinPath:
    """What Path.GetFullPath makes of an absolute drive path; DotNetError where .NET throws,
    HostPathUnsupported for forms the lab does not model."""
    if not isinstance(path, str):
        raise HostPathUnsupported(f"path must be a string, got {type(path).__name__}")
    if path == "":
        raise DotNetError("System.ArgumentException", "Empty path name is not legal.")
    if path.strip() == "":
        raise DotNetError("System.ArgumentException", "The path is not of a legal form.")
    text = path.replace("/", "\\")
    if text.startswith("\\\\"):
        raise HostPathUnsupported(f"UNC and device paths are not modelled by the lab: {path!r}")
    if any(ch in ILLEGAL for ch in path):
        raise DotNetError("System.ArgumentException", "Illegal characters in path.")
    match = DRIVE_RE.match(text)
    if match is None:
        raise HostPathUnsupported(f"only absolute drive paths (C:\\...) are modelled by the lab: {path!r}")
    rest = text[match.end() :]
    if ":" in rest:
        raise DotNetError("System.NotSupportedException", "The given path's format is not supported.")
    parts: list[str] = []
    for raw in rest.split("\\"):
        if raw in ("", "."):
            continue
        if raw == "..":
            if parts:
                parts.pop()
            continue
        name = raw.rstrip(". ")
        if name == "":
            raise HostPathUnsupported(f"a path component of only dots or spaces is not modelled by the lab: {path!r}")
        if fold(name.split(".", 1)[0].rstrip(" ")) in DEVICE_NAMES:
            raise HostPathUnsupported(f"device names (CON, NUL, COM1 ...) are not modelled by the lab: {path!r}")
        parts.append(name)
    result = WinPath(match.group(1), tuple(parts), text.endswith("\\") and bool(parts))
    if len(result.full) >= MAX_PATH or any(len(p) > MAX_NAME for p in parts):
        raise DotNetError("System.IO.PathTooLongException", TOO_LONG)
    return result


@dataclass
class _Node:
    name: str  # as created
    is_dir: bool
    real: Path
    children: dict[str, _Node] = field(default_factory=dict)  # folded name -> node
    open_handles: int = 0


class FileWriter:
    """An open File.Create handle: write() appends, close() releases the file (FileShare.None)."""

    def __init__(self, files: HostFiles, node: _Node, handle: object) -> None:
        self._files = files
        self._node = node
        self._handle = handle
        self.written = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)  # type: ignore[attr-defined]
        self.written += len(data)

    def close(self) -> None:
        if self._handle is None:
            return
        self._handle.close()  # type: ignore[attr-defined]
        self._handle = None
        with self._files.lock:
            self._node.open_handles -= 1

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HostFiles:
    """The host's file system under `root` (removed and made again here). Thread-safe: one lock
    guards the index; writes through an open FileWriter happen outside it."""

    def __init__(self, root: Path, username: str) -> None:
        self.root = Path(root)
        self.username = username
        self.lock = threading.RLock()
        shutil.rmtree(self.root, ignore_errors=True)
        (self.root / LAB_DRIVE).mkdir(parents=True)
        self._drive = _Node(LAB_DRIVE, True, self.root / LAB_DRIVE)
        # What a fresh Windows Server has and the lab relies on: the connecting user's temp directory.
        self._make_dirs(parse_path(self.temp_path()))
        self._make_dirs(parse_path("C:\\Windows\\Temp"))

    # -- paths --------------------------------------------------------------------------------
    def temp_path(self) -> str:
        """[System.IO.Path]::GetTempPath() of the connecting user (TEMP of a local profile): it ends
        with a backslash, and the directory exists."""
        return f"C:\\Users\\{self.username}\\AppData\\Local\\Temp\\"

    def session_environment(self) -> dict[str, str]:
        """The environment variables of the lab user's WinRM session that the lab models (values as a
        local profile on a fresh Windows Server has them; TEMP and TMP without the trailing
        backslash, as the profile sets them)."""
        profile = f"C:\\Users\\{self.username}"
        temp = self.temp_path().rstrip("\\")
        return {
            "TEMP": temp,
            "TMP": temp,
            "USERPROFILE": profile,
            "USERNAME": self.username,
            "APPDATA": f"{profile}\\AppData\\Roaming",
            "LOCALAPPDATA": f"{profile}\\AppData\\Local",
            "SystemDrive": "C:",
            "SystemRoot": "C:\\Windows",
            "windir": "C:\\Windows",
            "ProgramData": "C:\\ProgramData",
            "ALLUSERSPROFILE": "C:\\ProgramData",
            "PUBLIC": "C:\\Users\\Public",
        }

    def _walk(self, path: WinPath, upto: int | None = None) -> _Node | None:
        """The node for path.parts[:upto] (all when None); None when something on the way is missing
        or a file, or the drive is not C:."""
        if fold(path.drive) != LAB_DRIVE:
            return None
        node = self._drive
        for name in path.parts[: len(path.parts) if upto is None else upto]:
            if not node.is_dir:
                return None
            child = node.children.get(fold(name))
            if child is None:
                return None
            node = child
        return node

    def _make_dirs(self, path: WinPath) -> _Node:
        node = self._drive
        for name in path.parts:
            child = node.children.get(fold(name))
            if child is None:
                child = _Node(name, True, node.real / name)
                child.real.mkdir()
                node.children[fold(name)] = child
            elif not child.is_dir:
                raise DotNetError("System.IO.IOException", f"Cannot create '{path.full}' because a file exists.")
            node = child
        return node

    def _file(self, path: str) -> tuple[WinPath, _Node]:
        """An existing file for reading; DotNetError as File.OpenRead would throw."""
        parsed = parse_path(path)
        parent = self._walk(parsed, len(parsed.parts) - 1) if parsed.parts else None
        if parent is None or not parent.is_dir:
            raise DotNetError(
                "System.IO.DirectoryNotFoundException", f"Could not find a part of the path '{parsed.full}'."
            )
        node = parent.children.get(fold(parsed.parts[-1]))
        if node is None:
            raise DotNetError("System.IO.FileNotFoundException", f"Could not find file '{parsed.full}'.")
        if node.is_dir or parsed.trailing_separator:
            raise DotNetError("System.UnauthorizedAccessException", f"Access to the path '{parsed.full}' is denied.")
        if node.open_handles:
            raise DotNetError(
                "System.IO.IOException",
                f"The process cannot access the file '{parsed.full}' because it is being used by another process.",
            )
        return parsed, node

    # -- queries ------------------------------------------------------------------------------
    def _lookup(self, path: str) -> tuple[_Node | None, bool]:
        """The node at path (None when missing, or for a path .NET would refuse) and whether the path ends
        with a separator."""
        try:
            parsed = parse_path(path)
        except DotNetError:
            return None, False
        with self.lock:
            return self._walk(parsed), parsed.trailing_separator

    def exists(self, path: str) -> bool:
        """Test-Path -LiteralPath: a file or a directory (False for a path .NET would refuse)."""
        node, trailing = self._lookup(path)
        return node is not None and (node.is_dir or not trailing)

    def is_file(self, path: str) -> bool:
        node, trailing = self._lookup(path)
        return node is not None and not node.is_dir and not trailing

    def read_bytes(self, path: str) -> bytes:
        with self.lock:
            _parsed, node = self._file(path)
            return node.real.read_bytes()

    def size(self, path: str) -> int:
        with self.lock:
            _parsed, node = self._file(path)
            return node.real.stat().st_size

    def sha256(self, path: str) -> str:
        """Lower-case hex digest (Get-FileHash gives upper case; callers compare case-insensitively)."""
        with self.lock:
            _parsed, node = self._file(path)
            digest = hashlib.sha256()
            with node.real.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()

    def listing(self) -> dict[str, int]:
        """Every file: full Windows path (stored case) -> size in bytes, in path order."""
        result: dict[str, int] = {}
        with self.lock:
            stack = [("C:", self._drive)]
            while stack:
                prefix, node = stack.pop()
                for child in node.children.values():
                    name = f"{prefix}\\{child.name}"
                    if child.is_dir:
                        stack.append((name, child))
                    else:
                        result[name] = child.real.stat().st_size
        return dict(sorted(result.items(), key=lambda item: fold(item[0])))

    def directories(self) -> list[str]:
        """Every directory below the drive root (empty ones too): full Windows path, stored case,
        in path order."""
        result: list[str] = []
        with self.lock:
            stack = [("C:", self._drive)]
            while stack:
                prefix, node = stack.pop()
                for child in node.children.values():
                    if child.is_dir:
                        name = f"{prefix}\\{child.name}"
                        result.append(name)
                        stack.append((name, child))
        return sorted(result, key=fold)

    # -- changes ------------------------------------------------------------------------------
    def open_create(self, path: str) -> FileWriter:
        """[System.IO.File]::Create(path): create or truncate the file now, return its handle."""
        parsed = parse_path(path)
        with self.lock:
            if not parsed.parts:
                raise DotNetError(
                    "System.UnauthorizedAccessException", f"Access to the path '{parsed.full}' is denied."
                )
            parent = self._walk(parsed, len(parsed.parts) - 1)
            if parent is None or not parent.is_dir:
                raise DotNetError(
                    "System.IO.DirectoryNotFoundException", f"Could not find a part of the path '{parsed.full}'."
                )
            name = parsed.parts[-1]
            node = parent.children.get(fold(name))
            if node is not None and node.is_dir:
                raise DotNetError(
                    "System.UnauthorizedAccessException", f"Access to the path '{parsed.full}' is denied."
                )
            if parsed.trailing_separator:
                raise HostPathUnsupported(f"File.Create of a path with a trailing separator is not modelled: {path!r}")
            if node is not None and node.open_handles:
                raise DotNetError(
                    "System.IO.IOException",
                    f"The process cannot access the file '{parsed.full}' because it is being used by another process.",
                )
            if node is None:
                node = _Node(name, False, parent.real / name)  # an existing file keeps its name's case
                parent.children[fold(name)] = node
            handle = node.real.open("wb")
            node.open_handles += 1
            return FileWriter(self, node, handle)

    def open_create_seed(self, path: str) -> FileWriter:
        """File.Create after making the parent directories (LABFILE seeding, tests)."""
        parsed = parse_path(path)
        if not parsed.parts or parsed.trailing_separator:
            raise HostPathUnsupported(f"not a file path: {path!r}")
        with self.lock:
            if fold(parsed.drive) != LAB_DRIVE:
                raise HostPathUnsupported(f"the lab host has drive C: only: {path!r}")
            self._make_dirs(WinPath(parsed.drive, parsed.parts[:-1], False))
            return self.open_create(path)

    def make_dirs(self, path: str) -> None:
        """Every missing directory of `path` (Copy-VMFile -CreateFullPath in a Windows guest double)."""
        parsed = parse_path(path)
        with self.lock:
            self._make_dirs(WinPath(parsed.drive, parsed.parts, False))

    def add_file(self, path: str, data: bytes) -> None:
        """Seed a file (LABFILE host.files): parent directories are made as needed."""
        with self.open_create_seed(path) as writer:
            writer.write(data)

    def new_directory(self, path: str, name: str) -> str:
        """New-Item -Path <path> -Name <name> -ItemType Directory (no -Force); returns the FullName of
        the new directory. DotNetError System.IO.IOException when an item of that name exists."""
        trimmed = path if path.endswith((":\\", ":/")) else path.rstrip(" /\\")
        if any(ch in WILDCARDS for ch in trimmed) or any(ch in WILDCARDS for ch in name):
            raise HostPathUnsupported(f"New-Item with wildcard characters is not modelled: {path!r}, {name!r}")
        if name == "" or "\\" in name or "/" in name:
            raise HostPathUnsupported(f"New-Item -Name {name!r} is not a single name: not modelled by the lab")
        composed = (trimmed if trimmed.endswith(("\\", "/")) else trimmed + "\\") + name
        shown = composed.replace("/", "\\")  # FileSystemProvider.NormalizePath
        try:
            parsed = parse_path(composed)
        except DotNetError as exc:
            raise HostPathUnsupported(f"New-Item of a path .NET refuses is not modelled ({exc}): {shown!r}") from exc
        if fold(parsed.drive) != LAB_DRIVE:
            raise HostPathUnsupported(f"the lab host has drive C: only: {shown!r}")
        with self.lock:
            if self._walk(parsed) is not None:
                raise DotNetError("System.IO.IOException", f"An item with the specified name {shown} already exists.")
            node = self._drive
            for part in parsed.parts:
                child = node.children.get(fold(part))
                if child is None:
                    break
                if not child.is_dir:
                    raise HostPathUnsupported(f"New-Item through a file on the way is not modelled: {shown!r}")
                node = child
            self._make_dirs(WinPath(parsed.drive, parsed.parts, False))
        return WinPath(parsed.drive, parsed.parts, False).full

    def _item_to_remove(self, path: str) -> tuple[WinPath, _Node, _Node]:
        """(parsed path, parent, node) for Remove-Item -LiteralPath; ItemNotFoundException when missing."""
        try:
            parsed = parse_path(path)
        except DotNetError as exc:
            raise HostPathUnsupported(f"Remove-Item of a path .NET refuses is not modelled ({exc}): {path!r}") from exc
        if not parsed.parts:
            raise HostPathUnsupported(f"removing the drive root is not modelled by the lab: {path!r}")
        parent = self._walk(parsed, len(parsed.parts) - 1) if parsed.parts else None
        node = parent.children.get(fold(parsed.parts[-1])) if parent is not None and parent.is_dir else None
        if parent is None or node is None or (parsed.trailing_separator and not node.is_dir):
            raise DotNetError(
                "System.Management.Automation.ItemNotFoundException",
                f"Cannot find path '{path}' because it does not exist.",
            )
        return parsed, parent, node

    def _unlink(self, parsed: WinPath, parent: _Node, node: _Node) -> None:
        if node.open_handles:
            raise DotNetError(
                "System.IO.IOException",
                f"Cannot remove item {parsed.full}: The process cannot access the file '{parsed.full}' "
                "because it is being used by another process.",
            )
        os.unlink(node.real)
        del parent.children[fold(node.name)]

    def remove(self, path: str) -> None:
        """Remove-Item -LiteralPath <path> -Force for a file."""
        with self.lock:
            parsed, parent, node = self._item_to_remove(path)
            if node.is_dir:
                raise HostPathUnsupported(f"removing a directory without -Recurse is not modelled by the lab: {path!r}")
            self._unlink(parsed, parent, node)

    def remove_tree(self, path: str) -> None:
        """Remove-Item -LiteralPath <path> -Recurse -Force: a directory with everything in it, or a file."""
        with self.lock:
            parsed, parent, node = self._item_to_remove(path)
            if not node.is_dir:
                self._unlink(parsed, parent, node)
                return
            stack = [node]
            while stack:
                current = stack.pop()
                if current.open_handles:
                    raise HostPathUnsupported(
                        f"Remove-Item -Recurse of a tree holding an open file is not modelled by the lab: {path!r}"
                    )
                stack.extend(current.children.values())
            shutil.rmtree(node.real)
            del parent.children[fold(node.name)]
