"""The Hyper-V host's SFTP subsystem over the lab's ssh (the part of Windows OpenSSH's sftp-server that
ansible's ssh put_file meets), on the host's modelled file system (hvlab/host_files.py).

ansible.builtin.ssh sends a file to a Windows host with OpenSSH's `sftp` client in batch mode (`put SRC
DEST`), DEST being the Windows path with `/` separators and a leading `/` before the drive
(`/C:/Users/...`: ssh.py `_escape_win_path`), as Windows OpenSSH's sftp-server reads paths. What that
client sends for one `put` (draft-ietf-secsh-filexfer-02, version 3): INIT; REALPATH "." (its working
directory); STAT of DEST (is it a directory?); OPEN with WRITE|CREAT|TRUNC; WRITEs in order; CLOSE.
Those are answered; anything else is SSH_FX_OP_UNSUPPORTED with a message saying the lab does not model
it, so a test never passes on a request nobody answered. Writes must come in order (the client sends
them so); a gap is refused.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from .host_files import DotNetError, HostPathUnsupported

if TYPE_CHECKING:
    from .counters import Counters
    from .host_files import FileWriter, HostFiles

log = logging.getLogger("hvlab.sftp")

# Packet types and status codes (draft-ietf-secsh-filexfer-02 sections 3 and 7).
INIT, VERSION, OPEN, CLOSE, WRITE, LSTAT, FSTAT, REALPATH, STAT = 1, 2, 3, 4, 6, 7, 8, 16, 17
STATUS, HANDLE, NAME, ATTRS = 101, 102, 104, 105
OK, NO_SUCH_FILE, PERMISSION_DENIED, FAILURE, BAD_MESSAGE, OP_UNSUPPORTED = 0, 2, 3, 4, 5, 8
PF_WRITE, PF_CREAT, PF_TRUNC = 0x02, 0x08, 0x10
ATTR_SIZE, ATTR_PERMISSIONS = 0x01, 0x04
S_IFDIR, S_IFREG = 0o040000, 0o100000
DRIVE_PATH = re.compile(r"^/([A-Za-z]:)(/.*)?$")


class _Packet:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u32(self) -> int:
        (value,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        (value,) = struct.unpack_from(">Q", self.data, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> bytes:
        size = self.u32()
        value = self.data[self.pos : self.pos + size]
        if len(value) != size:
            raise ValueError("truncated string")
        self.pos += size
        return value


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _attrs(size: int | None, is_dir: bool) -> bytes:
    flags = ATTR_PERMISSIONS | (ATTR_SIZE if size is not None else 0)
    out = struct.pack(">I", flags)
    if size is not None:
        out += struct.pack(">Q", size)
    return out + struct.pack(">I", (S_IFDIR | 0o755) if is_dir else (S_IFREG | 0o644))


@dataclass
class _Handle:
    path: str
    writer: FileWriter
    offset: int = 0


class SftpSession:
    """One sftp-server process: packets in from ``stream_in``, answers out to ``stream_out``."""

    def __init__(self, files: HostFiles, counters: Counters, stream_in: BinaryIO, stream_out: BinaryIO) -> None:
        self.files = files
        self.counters = counters
        self.stream_in = stream_in
        self.stream_out = stream_out
        self.handles: dict[bytes, _Handle] = {}
        self._next = 0

    # -- paths ----------------------------------------------------------------------------------
    def home(self) -> str:
        """The working directory the client starts in: the account's profile, as Windows sshd sets it."""
        return "/" + self.files.temp_path().split("\\AppData\\", 1)[0].replace("\\", "/")

    @staticmethod
    def windows_path(path: str) -> str | None:
        """`/C:/a/b` -> `C:\\a\\b`; None for a path with no drive (nothing the client sends here)."""
        match = DRIVE_PATH.match(path)
        if match is None:
            return None
        return match.group(1) + (match.group(2) or "/").replace("/", "\\")

    # -- loop -----------------------------------------------------------------------------------
    def serve(self) -> None:
        try:
            while True:
                header = self._read(4)
                if header is None:
                    return
                (size,) = struct.unpack(">I", header)
                body = self._read(size)
                if body is None or not body:
                    return
                self._handle(body[0], _Packet(body[1:]))
        finally:
            for handle in self.handles.values():
                handle.writer.close()  # a client that went away leaves no open handle

    def _read(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = self.stream_in.read(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _send(self, kind: int, payload: bytes) -> None:
        self.stream_out.write(struct.pack(">IB", len(payload) + 1, kind) + payload)
        self.stream_out.flush()

    def _status(self, request_id: int, code: int, message: str) -> None:
        self._send(STATUS, struct.pack(">II", request_id, code) + _string(message.encode()) + _string(b"en"))

    def _handle(self, kind: int, packet: _Packet) -> None:
        if kind == INIT:
            self._send(VERSION, struct.pack(">I", 3))
            return
        request_id = packet.u32()
        try:
            if kind == REALPATH:
                self._realpath(request_id, packet.string().decode("utf-8"))
            elif kind in (STAT, LSTAT):
                self._stat(request_id, packet.string().decode("utf-8"))
            elif kind == OPEN:
                self._open(request_id, packet)
            elif kind == WRITE:
                self._write(request_id, packet)
            elif kind == CLOSE:
                self._close(request_id, packet.string())
            else:
                log.warning("sftp: request type %d is not modelled", kind)
                self._status(request_id, OP_UNSUPPORTED, f"hyperv.integration lab: SFTP request {kind} is not modelled")
        except (ValueError, UnicodeDecodeError, struct.error) as exc:
            self._status(request_id, BAD_MESSAGE, f"hyperv.integration lab: malformed SFTP request: {exc}")

    def _realpath(self, request_id: int, path: str) -> None:
        resolved = self.home() if path in ("", ".") else path
        if self.windows_path(resolved) is None:
            self._status(request_id, OP_UNSUPPORTED, f"hyperv.integration lab: REALPATH of {path!r} is not modelled")
            return
        self._send(NAME, struct.pack(">II", request_id, 1) + _string(resolved.encode()) * 2 + _attrs(None, True))

    def _stat(self, request_id: int, path: str) -> None:
        windows = self.windows_path(path)
        if windows is None:
            self._status(request_id, NO_SUCH_FILE, "No such file")
            return
        if self.files.is_file(windows):
            self._send(ATTRS, struct.pack(">I", request_id) + _attrs(self.files.size(windows), False))
        elif self.files.exists(windows):
            self._send(ATTRS, struct.pack(">I", request_id) + _attrs(None, True))
        else:
            self._status(request_id, NO_SUCH_FILE, "No such file")

    def _open(self, request_id: int, packet: _Packet) -> None:
        path = packet.string().decode("utf-8")
        flags = packet.u32()
        windows = self.windows_path(path)
        if windows is None or flags & ~(PF_WRITE | PF_CREAT | PF_TRUNC) or not flags & PF_WRITE:
            self._status(
                request_id,
                OP_UNSUPPORTED,
                f"hyperv.integration lab: OPEN {path!r} with flags {flags:#x} is not modelled",
            )
            return
        try:
            writer = self.files.open_create(windows)
        except DotNetError as exc:
            code = PERMISSION_DENIED if "Unauthorized" in exc.type else NO_SUCH_FILE
            self._status(request_id, code, exc.message)
            return
        except HostPathUnsupported as exc:
            self._status(request_id, OP_UNSUPPORTED, f"hyperv.integration lab: {exc}")
            return
        self._next += 1
        handle = b"%d" % self._next
        self.handles[handle] = _Handle(windows, writer)
        self._send(HANDLE, struct.pack(">I", request_id) + _string(handle))

    def _write(self, request_id: int, packet: _Packet) -> None:
        handle = self.handles.get(packet.string())
        offset = packet.u64()
        data = packet.string()
        if handle is None:
            self._status(request_id, FAILURE, "invalid handle")
            return
        if offset != handle.offset:
            self._status(
                request_id, OP_UNSUPPORTED, f"hyperv.integration lab: a write at {offset} after {handle.offset} bytes"
            )
            return
        handle.writer.write(data)
        handle.offset += len(data)
        self._status(request_id, OK, "Success")

    def _close(self, request_id: int, raw: bytes) -> None:
        handle = self.handles.pop(raw, None)
        if handle is None:
            self._status(request_id, FAILURE, "invalid handle")
            return
        handle.writer.close()
        self.counters.add("put_files")
        self.counters.add("put_file_bytes", handle.offset)
        log.info("sftp: %s written (%d bytes)", handle.path, handle.offset)
        self._status(request_id, OK, "Success")
