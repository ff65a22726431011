"""The kernel's side of /dev/vmbus/hv_fcopy for a Linux guest double: Guest Service Interface's file copy,
driven by the host model.

On a Hyper-V guest with a kernel before 6.10, `hv_utils` (drivers/hv/hv_fcopy.c over hv_utils_transport.c)
relays each file copy message of the host (Copy-VMFile) to the user-space daemon through the misc device
/dev/vmbus/hv_fcopy, and relays the daemon's status back. In the lab, Debian's real `hv_fcopy_daemon`
runs in the guest with the preloaded library (tests/lab/linux_image/hvt_standin.c, built for this
device) that connects its open of the device to this object's socket (the guest's
/run/hvlab/hv_fcopy.sock). The transport is hvt_channel.HvtChannel's; this class plays hv_fcopy.c:

- the handshake: the daemon writes its version (an int); version 1 gets the kernel's own version back
  (one u32 the daemon reads), version 0 nothing; any other is refused with EINVAL;
- START_FILE_COPY: ``struct hv_start_fcopy`` with the file and directory names converted from the host's
  UTF-16 to UTF-8 (at most W_MAX_PATH - 1 bytes each, as fcopy_send_data does), the copy flags
  (OVER_WRITE, CREATE_PATH) and the size; WRITE_TO_FILE: ``struct hv_do_fcopy`` (offset, size, at most
  DATA_FRAGMENT bytes); COMPLETE_FCOPY and CANCEL_FCOPY: the header alone;
- the daemon's answer, an int status, is what the host gets (0, HV_E_FAIL, HV_ERROR_ALREADY_EXISTS,
  HV_ERROR_DISK_FULL); no answer within HV_UTIL_TIMEOUT is HV_E_FAIL.

Sizes and values: include/uapi/linux/hyperv.h (Debian 12's 6.1 headers). Facts and sources:
docs/dev/hyperv-facts.md section 9.

``copy_file`` sends one file the way the host's Guest Service Interface does: START, the data in
DATA_FRAGMENT pieces, COMPLETE; CANCEL after a failed piece. How the host splits a destination path
into directory and file name is the lab's assumption (the last ``/``), not a documented fact.

Standard library only.
"""

from __future__ import annotations

import errno
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from . import hvt_channel as hvt
from .hvt_channel import DEFAULT_TIMEOUT, HvtChannel
from .kvp_channel import utf16s_to_utf8s

log = logging.getLogger("hvlab.fcopy_channel")

# include/uapi/linux/hyperv.h
FCOPY_VERSION_0, FCOPY_VERSION_1 = 0, 1
FCOPY_CURRENT_VERSION = FCOPY_VERSION_1
W_MAX_PATH = 260
START_FILE_COPY, WRITE_TO_FILE, COMPLETE_FCOPY, CANCEL_FCOPY = range(4)
OVER_WRITE, CREATE_PATH = 0x1, 0x2
DATA_FRAGMENT = 6 * 1024
HDR = struct.Struct("<I16s16s")  # struct hv_fcopy_hdr (packed)
START = struct.Struct("<I16s16s%ds%dsIQ" % (2 * W_MAX_PATH, 2 * W_MAX_PATH))  # struct hv_start_fcopy
DO_COPY = struct.Struct("<I16s16sIQI%ds" % DATA_FRAGMENT)  # struct hv_do_fcopy
# COMPLETE and CANCEL: fcopy_send_data sends recv_len bytes from the message, the length of the host's
# VMBus packet (vmbuspipe_hdr 8 + icmsg_hdr 20 + hv_fcopy_hdr 36); the daemon reads only the header.
CONTROL_LENGTH = 8 + 20 + HDR.size
HV_S_OK = 0x00000000
HV_E_FAIL = 0x80004005
HV_ERROR_ALREADY_EXISTS = 0x80070050
HV_ERROR_DISK_FULL = 0x80070070


class FcopyError(hvt.HvtError):
    """A file copy request the lab host could not get answered."""


class FcopyNotOffered(FcopyError, hvt.HvtNotOffered):
    """The host does not offer Guest Service Interface to this guest (no device, no channel)."""


class FcopyNotAnswering(FcopyError, hvt.HvtNotAnswering):
    """No file copy daemon is registered on the guest's device, or it did not answer in time."""


@dataclass(frozen=True)
class FcopyAnswer:
    """The status the host gets for one message."""

    status: int

    @property
    def ok(self) -> bool:
        return self.status == HV_S_OK


def _utf8_name(text: str, what: str) -> bytes:
    """The host's UTF-16 name as fcopy_send_data converts it (utf16s_to_utf8s into W_MAX_PATH - 1 bytes)."""
    raw = text.encode("utf-16-le", errors="surrogatepass")
    units = list(struct.unpack("<%dH" % (len(raw) // 2), raw))
    if len(units) >= W_MAX_PATH:
        raise ValueError(f"{what} is {len(units)} UTF-16 units; the host's message holds {W_MAX_PATH - 1} and a NUL")
    return utf16s_to_utf8s([*units, 0], W_MAX_PATH, W_MAX_PATH - 1)


class FcopyChannel(HvtChannel):
    """One guest's file copy device, kernel side (hv_fcopy.c over HvtChannel's transport)."""

    SERVICE = "Guest Service Interface"
    DEVICE = "/dev/vmbus/hv_fcopy"
    MAX_WRITE = 4  # the daemon writes one int: its version, then each status
    Error = FcopyError
    NotOffered = FcopyNotOffered
    NotAnswering = FcopyNotAnswering

    def __init__(self, socket_path: Path, name: str = "fcopy") -> None:
        super().__init__(socket_path, name)
        self._version_unsent = False  # FCOPY_VERSION_1: the kernel's version, sent after the write returns
        self.daemon_version: int | None = None

    # -- host operations ----------------------------------------------------------------------------
    def start_copy(
        self, file_name: str, path_name: str, size: int, flags: int = 0, timeout: float = DEFAULT_TIMEOUT
    ) -> FcopyAnswer:
        """START_FILE_COPY: the daemon opens path_name/file_name (creating the directories with CREATE_PATH,
        replacing a file with OVER_WRITE)."""
        file_utf8, path_utf8 = _utf8_name(file_name, "the file name"), _utf8_name(path_name, "the path")
        message = START.pack(START_FILE_COPY, b"", b"", file_utf8, path_utf8, flags, size)
        return self._ask(message, START_FILE_COPY, timeout)

    def write_data(self, offset: int, data: bytes, timeout: float = DEFAULT_TIMEOUT) -> FcopyAnswer:
        """WRITE_TO_FILE of one fragment at offset."""
        if len(data) > DATA_FRAGMENT:
            raise ValueError(f"a fragment holds at most {DATA_FRAGMENT} bytes, not {len(data)}")
        return self._ask(DO_COPY.pack(WRITE_TO_FILE, b"", b"", 0, offset, len(data), data), WRITE_TO_FILE, timeout)

    def complete(self, timeout: float = DEFAULT_TIMEOUT) -> FcopyAnswer:
        return self._ask(self._control(COMPLETE_FCOPY), COMPLETE_FCOPY, timeout)

    def cancel(self, timeout: float = DEFAULT_TIMEOUT) -> FcopyAnswer:
        """CANCEL_FCOPY: the daemon closes and removes the file it was writing."""
        return self._ask(self._control(CANCEL_FCOPY), CANCEL_FCOPY, timeout)

    def copy_file(
        self, data: bytes, destination: str, *, overwrite: bool, create_path: bool, timeout: float = DEFAULT_TIMEOUT
    ) -> FcopyAnswer:
        """One file, as the host's Guest Service Interface sends it: the first answer that is not HV_S_OK
        (after a failed fragment, CANCEL is sent), else COMPLETE's. ``destination`` is absolute; its last
        ``/`` separates directory and file name (a lab assumption, see the module's docstring)."""
        directory, _slash, name = destination.rpartition("/")
        flags = (OVER_WRITE if overwrite else 0) | (CREATE_PATH if create_path else 0)
        started = self.start_copy(name, directory or "/", len(data), flags, timeout)
        if not started.ok:
            return started
        for offset in range(0, len(data), DATA_FRAGMENT):
            written = self.write_data(offset, data[offset : offset + DATA_FRAGMENT], timeout)
            if not written.ok:
                self.cancel(timeout)
                return written
        return self.complete(timeout)

    @staticmethod
    def _control(operation: int) -> bytes:
        return HDR.pack(operation, b"", b"").ljust(CONTROL_LENGTH, b"\0")

    def _ask(self, message: bytes, operation: int, timeout: float) -> FcopyAnswer:
        answer: FcopyAnswer = self._transact(message, operation, f"operation {operation}", timeout)
        return answer

    # -- hv_fcopy.c ---------------------------------------------------------------------------------
    def _failed(self, transaction: hvt.Transaction, status: int) -> FcopyAnswer:
        return FcopyAnswer(status)

    def _reset(self) -> None:
        self._version_unsent = False

    def _after_write(self, result: int) -> None:
        if result == 0 and self._version_unsent:
            self._version_unsent = False
            # fcopy_handle_handshake: hvutil_transport_send(hvt, &our_ver, sizeof(our_ver))
            self._send_message(struct.pack("<I", FCOPY_CURRENT_VERSION))

    def _on_msg(self, message: bytes) -> int:
        """Under _cond: fcopy_on_msg; 0 or an errno for the daemon's write()."""
        if self._state == hvt.DYING:
            return errno.EBADF
        if len(message) != 4:
            return errno.EINVAL
        (value,) = struct.unpack("<i", message)
        if self._state == hvt.DEVICE_INIT:  # fcopy_handle_handshake
            if value == FCOPY_VERSION_1:
                if self._outmsg_unread:
                    return errno.EFAULT  # hvutil_transport_send: the previous message is not read yet
                self._version_unsent = True
            elif value != FCOPY_VERSION_0:
                log.warning("%s: incompatible daemon (version %s)", self.name, value)
                return errno.EINVAL
            self.daemon_version = value
            self._registered_now()  # hv_poll_channel -> fcopy_poll_wrapper: READY
            log.info("%s: daemon registered (version %s)", self.name, value)
            return 0
        if self._state != hvt.USERSPACE_REQ or self._pending is None:
            return errno.EINVAL  # nothing was sent to the daemon: the answer is spurious
        self._complete(FcopyAnswer(value & 0xFFFFFFFF))
        return 0
