"""The kernel's side of /dev/vmbus/hv_kvp for a Linux guest double, driven by the host model.

On a Hyper-V guest, `hv_utils` (drivers/hv/hv_kvp.c over hv_utils_transport.c) relays each KVP
request of the host to the user-space daemon through the misc device /dev/vmbus/hv_kvp, one
`struct hv_kvp_msg` at a time, and relays the daemon's answer back. In the lab, Debian's real
`hv_kvp_daemon` runs in the guest with a preloaded library (tests/lab/linux_image/kvp_standin.c) that
turns its open of the device into a connection to this object's socket (the guest's
/run/hvlab/hv_kvp.sock). This object plays hv_kvp.c: the registration handshake, one transaction at a
time, the UTF-16/UTF-8 conversions and sizes, the 30 s answer timeout, the reset when the daemon
closes the device, and the error codes the host gets. Facts and sources: docs/dev/hyperv-facts.md
section 9.

The host model calls set_item, delete_item, get_item, enumerate_pool (guest_items, intrinsic_items)
and ip_info. Each returns what the real daemon answered, as the host would see it; a guest with no
registered daemon (not started, stopped, crashed) raises KvpNotAnswering after the call's timeout,
and a withdrawn service raises KvpNotOffered. Nothing here waits without a bound.

Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("hvlab.kvp_channel")

# include/uapi/linux/hyperv.h
HV_KVP_EXCHANGE_MAX_KEY_SIZE = 512
HV_KVP_EXCHANGE_MAX_VALUE_SIZE = 2048
KVP_OP_REGISTER = 4  # legacy daemon: errors passed as an empty key
KVP_OP_REGISTER1 = 100
KVP_OP_GET, KVP_OP_SET, KVP_OP_DELETE, KVP_OP_ENUMERATE, KVP_OP_GET_IP_INFO, KVP_OP_SET_IP_INFO = range(6)
KVP_POOL_EXTERNAL, KVP_POOL_GUEST, KVP_POOL_AUTO, KVP_POOL_AUTO_EXTERNAL, KVP_POOL_AUTO_INTERNAL = range(5)
KVP_POOL_COUNT = 5
REG_SZ, REG_U32, REG_U64 = 1, 4, 8
HV_S_OK = 0x00000000
HV_E_FAIL = 0x80004005
HV_S_CONT = 0x80070103
HV_GUID_NOTFOUND = 0x80041002
MAX_ADAPTER_ID_SIZE = 128  # UTF-16 units
MAX_IP_ADDR_SIZE = 1024
MAX_GATEWAY_SIZE = 512
HV_DRV_VERSION = b"3.1"  # drivers/hv/hv_kvp.c: what kvp_register() tells the daemon

# struct hv_kvp_msg (packed; the body union is 4-aligned, hence 7432 and not 7430 bytes)
MSG_SIZE = 7432
OFF_VALUE_TYPE, OFF_KEY_SIZE, OFF_VALUE_SIZE, OFF_KEY, OFF_VALUE = 4, 8, 12, 16, 528  # kvp_set / kvp_get
OFF_DELETE_KEY_SIZE, OFF_DELETE_KEY = 4, 8  # kvp_delete
OFF_ENUM_INDEX, OFF_ENUM_KEY, OFF_ENUM_VALUE = 4, 20, 532  # kvp_enum_data
OFF_REGISTER_VERSION = 4  # kvp_register
# kvp_ip_val (struct hv_kvp_ipaddr_value): field -> (offset, size in UTF-16 units)
IP_FIELDS = {
    "adapter_id": (4, MAX_ADAPTER_ID_SIZE),
    "ip_addr": (262, MAX_IP_ADDR_SIZE),
    "sub_net": (2310, MAX_IP_ADDR_SIZE),
    "gate_way": (4358, MAX_GATEWAY_SIZE),
    "dns_addr": (5382, MAX_IP_ADDR_SIZE),
}
OFF_ADDR_FAMILY, OFF_DHCP_ENABLED = 260, 261

HV_UTIL_TIMEOUT = 30.0  # drivers/hv/hyperv_vmbus.h: the kernel answers HV_E_FAIL after this long
DEFAULT_TIMEOUT = 10.0  # a host call's own bound (waiting for a daemon, then for its answer)

# Frames on the socket (kvp_standin.c): header {u32 kind; s32 value} + payload.
FRAME = struct.Struct("=Ii")
OPEN_RESULT, MESSAGE, WRITE_RESULT, WRITE, READ_DONE = 1, 2, 3, 4, 5


class KvpError(RuntimeError):
    """A KVP request the lab host could not get answered."""


class KvpNotOffered(KvpError):
    """The host does not offer Key-Value Pair Exchange to this guest (no device, no channel)."""


class KvpNotAnswering(KvpError):
    """No KVP daemon is registered on the guest's device, or it did not answer in time."""


@dataclass(frozen=True)
class KvpAnswer:
    """What the host gets back for one request: the ICMSG status and, for GET and ENUMERATE, the
    key and value (decoded from the UTF-16 the kernel produced)."""

    status: int
    key: str | None = None
    value: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == HV_S_OK


@dataclass(frozen=True)
class KvpEnumeration:
    """A pool enumerated from index 0 until the first answer that is not HV_S_OK (the host stops
    there). end_status HV_S_CONT means "no more items"; anything else is a failure."""

    pool: int
    items: list[tuple[str, str]]
    end_status: int

    @property
    def complete(self) -> bool:
        return self.end_status == HV_S_CONT

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)


@dataclass(frozen=True)
class KvpIpInfo:
    """The answer to KVP_OP_GET_IP_INFO for one adapter (strings as the daemon wrote them)."""

    status: int
    adapter_id: str = ""
    addr_family: int = 0
    dhcp_enabled: bool = False
    ip_addr: str = ""
    sub_net: str = ""
    gate_way: str = ""
    dns_addr: str = ""


# -- fs/nls/nls_base.c, as hv_kvp.c uses them ------------------------------------------------------
def _utf32_to_utf8(u: int, maxout: int) -> bytes | int:
    """utf32_to_utf8: the bytes, or -EILSEQ / -EOVERFLOW (does not fit in maxout)."""
    if u > 0x10FFFF or (u & 0xFFFFF800) == 0xD800:
        return -errno.EILSEQ
    limits = (0x7F, 0x7FF, 0xFFFF, 0x1FFFFF)
    for size, limit in enumerate(limits, start=1):
        if size > maxout:
            break
        if u <= limit:
            return chr(u).encode("utf-8")
    return -errno.EOVERFLOW


def utf16s_to_utf8s(units: list[int], inlen: int, maxout: int) -> bytes:
    """The kernel's UTF-16 to UTF-8 conversion: stops at a NUL, at inlen units or when a character no
    longer fits in maxout bytes; unpaired surrogates are skipped."""
    out = bytearray()
    i = 0
    while inlen > 0 and maxout > 0 and i < len(units):
        u = units[i]
        if u == 0:
            break
        i += 1
        inlen -= 1
        if u > 0x7F:
            if (u & 0xF800) == 0xD800:
                if u & 0x400:
                    continue  # a lone low surrogate
                if inlen <= 0 or i >= len(units):
                    break
                v = units[i]
                if (v & 0xF800) != 0xD800 or not (v & 0x400):
                    continue
                u = 0x10000 + ((u & 0x3FF) << 10) + (v & 0x3FF)
                i += 1
                inlen -= 1
            encoded = _utf32_to_utf8(u, maxout)
            if isinstance(encoded, int):
                if encoded == -errno.EILSEQ:
                    continue
                break  # does not fit any more
            out += encoded
            maxout -= len(encoded)
        else:
            out.append(u)
            maxout -= 1
    return bytes(out)


# utf8_table: (cmask, cval, lmask, lval) for sequences of 1 to 6 bytes
_UTF8_TABLE = (
    (0x80, 0x00, 0x7F, 0),
    (0xE0, 0xC0, 0x7FF, 0x80),
    (0xF0, 0xE0, 0xFFFF, 0x800),
    (0xF8, 0xF0, 0x1FFFFF, 0x10000),
    (0xFC, 0xF8, 0x3FFFFFF, 0x200000),
    (0xFE, 0xFC, 0x7FFFFFFF, 0x4000000),
)


def _utf8_to_utf32(data: bytes, start: int, inlen: int) -> tuple[int, int]:
    """utf8_to_utf32: (size, code point), size < 0 on error."""
    c0 = data[start]
    value = c0
    for nc, (cmask, cval, lmask, lval) in enumerate(_UTF8_TABLE, start=1):
        if (c0 & cmask) == cval:
            value &= lmask
            if value < lval or value > 0x10FFFF or (value & 0xFFFFF800) == 0xD800:
                return -errno.EILSEQ, 0
            return nc, value
        if inlen <= nc:
            return -errno.EOVERFLOW, 0
        c = (data[start + nc] ^ 0x80) & 0xFF
        if c & 0xC0:
            return -errno.EILSEQ, 0
        value = (value << 6) | c
    return -errno.EILSEQ, 0


def utf8s_to_utf16s(data: bytes, maxout: int) -> list[int] | None:
    """The kernel's UTF-8 to UTF-16 conversion of a C string (strlen of data): the units, or None
    (-EINVAL) for an invalid sequence; stops when maxout units are used."""
    text = data.split(b"\0", 1)[0]
    inlen = len(text)
    units: list[int] = []
    pos = 0
    while inlen > 0 and maxout > 0 and pos < len(text):
        if text[pos] & 0x80:
            size, u = _utf8_to_utf32(text, pos, inlen)
            if size < 0:
                return None
            pos += size
            inlen -= size
            if u >= 0x10000:
                if maxout < 2:
                    break
                u -= 0x10000
                units += [0xD800 | ((u >> 10) & 0x3FF), 0xDC00 | (u & 0x3FF)]
                maxout -= 2
            else:
                units.append(u)
                maxout -= 1
        else:
            units.append(text[pos])
            pos += 1
            inlen -= 1
            maxout -= 1
    return units


def _units(text: str) -> list[int]:
    raw = text.encode("utf-16-le", "surrogatepass")
    return list(struct.unpack(f"<{len(raw) // 2}H", raw))


def _decode_units(units: list[int]) -> str:
    return struct.pack(f"<{len(units)}H", *units).decode("utf-16-le", "surrogatepass")


def _host_string(text: str, limit_bytes: int, what: str) -> tuple[list[int], int]:
    """A string as the host puts it in its message: UTF-16 with a terminating NUL; (units, size in
    bytes). The host's field holds limit_bytes: anything longer cannot be sent at all."""
    units = [*_units(text), 0]
    if 2 * len(units) > limit_bytes:
        raise ValueError(
            f"{what} is {len(units) - 1} UTF-16 units long; the host's KVP message holds at most "
            f"{limit_bytes // 2 - 1} plus the terminating NUL (include/uapi/linux/hyperv.h)"
        )
    return units, 2 * len(units)


def _put_key(message: bytearray, key: tuple[list[int], int], data_at: int, size_at: int) -> None:
    """The host's key (_host_string's units and size) in the message as hv_kvp.c puts it: UTF-8, at most
    511 bytes, its size counting the NUL."""
    units, size = key
    utf8 = utf16s_to_utf8s(units, size, HV_KVP_EXCHANGE_MAX_KEY_SIZE - 1)
    message[data_at : data_at + len(utf8)] = utf8
    struct.pack_into("<I", message, size_at, len(utf8) + 1)


def _cstring(message: bytes, offset: int) -> bytes:
    return message[offset:].split(b"\0", 1)[0]


@dataclass
class _Transaction:
    op: int
    pool: int
    deadline: float  # the kernel's own timeout (HV_UTIL_TIMEOUT)
    done: threading.Event = field(default_factory=threading.Event)
    answer: KvpAnswer | KvpIpInfo | None = None
    failure: KvpError | None = None


# hv_kvp.c's kvp_transaction.state (drivers/hv/hyperv_vmbus.h, enum hvutil_device_state)
DEVICE_INIT, READY, USERSPACE_REQ, DYING = "device_init", "ready", "userspace_req", "dying"


class KvpChannel:
    """One guest's KVP device, kernel side. offer() while the host offers the service (before the
    node appears), withdraw() when it stops (after the node went)."""

    def __init__(self, socket_path: Path, name: str = "kvp") -> None:
        self.socket_path = Path(socket_path)
        self.name = name
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._state = DYING  # not offered
        self._dm_reg_value = 0
        self._register_unread = False  # kvp_register() sent, daemon has not read it yet
        self._outmsg_unread = False  # hvt->outmsg: a message waits for the daemon's read()
        self._pending: _Transaction | None = None
        self._ever_registered = False
        self.lic_version_sent = HV_DRV_VERSION.decode()

    # -- state for the guest double ---------------------------------------------------------------
    @property
    def offered(self) -> bool:
        with self._cond:
            return self._listener is not None

    @property
    def registered(self) -> bool:
        """A daemon has the device open and completed the handshake (kvp_register_done)."""
        with self._cond:
            return self._state in (READY, USERSPACE_REQ)

    @property
    def ever_registered(self) -> bool:
        """A daemon registered at some point since new_boot()."""
        with self._cond:
            return self._ever_registered

    def new_boot(self) -> None:
        with self._cond:
            self._ever_registered = False

    def offer(self) -> None:
        """hv_kvp_init + hv_kvp_init_transport: listen for the daemon's open."""
        with self._cond:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
            try:
                self.socket_path.unlink(missing_ok=True)
                self._bind(listener)
                os.chmod(self.socket_path, 0o600)
                listener.listen(4)
            except BaseException:
                listener.close()
                raise
            self._listener = listener
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            self._state = DEVICE_INIT
            self._thread = threading.Thread(target=self._serve, name=f"hvlab-{self.name}", daemon=True)
            self._thread.start()

    def withdraw(self) -> None:
        """hv_kvp_deinit: the service is gone; the daemon's next read/write fails with EBADF and its
        next open finds no device. A pending host request ends with KvpNotOffered."""
        with self._cond:
            thread = self._thread
            if self._listener is None:
                return
            self._state = DYING
            self._fail_pending(KvpNotOffered(f"{self.name}: the host withdrew Key-Value Pair Exchange"))
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._cond:
            for sock in (self._conn, self._listener):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            self._conn = self._listener = None
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._wake_r = self._wake_w = -1
            self._thread = None
            self._register_unread = self._outmsg_unread = False
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self.socket_path.unlink()

    def _bind(self, listener: socket.socket) -> None:
        path = str(self.socket_path)
        if len(path.encode()) < 100:
            listener.bind(path)
            return
        # sun_path holds 108 bytes: reach a long directory through /proc/self/fd.
        dir_fd = os.open(self.socket_path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            listener.bind(f"/proc/self/fd/{dir_fd}/{self.socket_path.name}")
        finally:
            os.close(dir_fd)

    # -- host operations ----------------------------------------------------------------------------
    def set_item(
        self, key: str, value: str | int, pool: int = KVP_POOL_EXTERNAL, timeout: float = DEFAULT_TIMEOUT
    ) -> KvpAnswer:
        """Host to guest (Msvm_KvpExchangeDataItem with source 0 is pool 0): KVP_OP_SET. A str goes
        as REG_SZ, an int as REG_U32 (or REG_U64 when it needs 64 bits), as the kernel knows them."""
        key_units = _host_string(key, HV_KVP_EXCHANGE_MAX_KEY_SIZE, "the key")  # checked before the value
        message = self._message(KVP_OP_SET, pool)
        if isinstance(value, str):
            value_units, value_size = _host_string(value, HV_KVP_EXCHANGE_MAX_VALUE_SIZE, "the value")
            utf8 = utf16s_to_utf8s(value_units, value_size, HV_KVP_EXCHANGE_MAX_VALUE_SIZE - 1)
        elif isinstance(value, int) and 0 <= value < 2**64:
            utf8 = str(value).encode()  # "%u" / "%llu"
        else:
            raise ValueError(f"a KVP value is a string or an unsigned integer below 2**64, not {value!r}")
        message[OFF_VALUE : OFF_VALUE + len(utf8)] = utf8
        struct.pack_into("<I", message, OFF_VALUE_SIZE, len(utf8) + 1)
        _put_key(message, key_units, OFF_KEY, OFF_KEY_SIZE)
        return self._answer(self._transact(KVP_OP_SET, pool, message, timeout))

    def delete_item(self, key: str, pool: int = KVP_POOL_EXTERNAL, timeout: float = DEFAULT_TIMEOUT) -> KvpAnswer:
        """KVP_OP_DELETE: HV_S_OK when the daemon removed it, HV_S_CONT when it had no such key."""
        message = self._message(KVP_OP_DELETE, pool)
        _put_key(
            message, _host_string(key, HV_KVP_EXCHANGE_MAX_KEY_SIZE, "the key"), OFF_DELETE_KEY, OFF_DELETE_KEY_SIZE
        )
        return self._answer(self._transact(KVP_OP_DELETE, pool, message, timeout))

    def get_item(self, key: str, pool: int, timeout: float = DEFAULT_TIMEOUT) -> KvpAnswer:
        """KVP_OP_GET: the daemon looks the key up in that pool's file. hv_kvp.c sends it a
        value_size of 0 and reads the answer's value at the enumerate layout's offset, so a found
        key comes back HV_S_OK with an empty value (docs/dev/hyperv-facts.md section 9)."""
        message = self._message(KVP_OP_GET, pool)
        _put_key(message, _host_string(key, HV_KVP_EXCHANGE_MAX_KEY_SIZE, "the key"), OFF_KEY, OFF_KEY_SIZE)
        return self._answer(self._transact(KVP_OP_GET, pool, message, timeout))

    def enumerate_index(self, pool: int, index: int, timeout: float = DEFAULT_TIMEOUT) -> KvpAnswer:
        """KVP_OP_ENUMERATE of one index."""
        message = self._message(KVP_OP_ENUMERATE, pool)
        struct.pack_into("<I", message, OFF_ENUM_INDEX, index)
        return self._answer(self._transact(KVP_OP_ENUMERATE, pool, message, timeout))

    def enumerate_pool(self, pool: int, timeout: float = DEFAULT_TIMEOUT, limit: int = 100_000) -> KvpEnumeration:
        """Index 0, 1, ... until an answer is not HV_S_OK, as the host iterates (hyperv.h)."""
        items: list[tuple[str, str]] = []
        for index in range(limit):
            answer = self.enumerate_index(pool, index, timeout)
            if not answer.ok:
                return KvpEnumeration(pool, items, answer.status)
            items.append((answer.key or "", answer.value or ""))
        raise KvpError(f"{self.name}: pool {pool} still answering after {limit} items")

    def guest_items(self, timeout: float = DEFAULT_TIMEOUT) -> KvpEnumeration:
        """Guest to host items (pool 1, what guest tools write to /var/lib/hyperv/.kvp_pool_1)."""
        return self.enumerate_pool(KVP_POOL_GUEST, timeout)

    def intrinsic_items(self, timeout: float = DEFAULT_TIMEOUT) -> KvpEnumeration:
        """The daemon's intrinsic items: enumerating the AUTO pool (FullyQualifiedDomainName, OSName...)."""
        return self.enumerate_pool(KVP_POOL_AUTO, timeout)

    def ip_info(self, adapter_id: str, timeout: float = DEFAULT_TIMEOUT) -> KvpIpInfo:
        """KVP_OP_GET_IP_INFO for the adapter whose MAC address (upper case, colons, as the daemon
        compares it with /sys/class/net/*/address) is adapter_id."""
        units, _size = _host_string(adapter_id, 2 * MAX_ADAPTER_ID_SIZE, "the adapter id")
        message = self._message(KVP_OP_GET_IP_INFO, KVP_POOL_AUTO)
        utf8 = utf16s_to_utf8s(units, MAX_ADAPTER_ID_SIZE, MAX_ADAPTER_ID_SIZE)  # process_ib_ipinfo
        offset = IP_FIELDS["adapter_id"][0]
        message[offset : offset + len(utf8)] = utf8
        answer = self._transact(KVP_OP_GET_IP_INFO, KVP_POOL_AUTO, message, timeout)
        if not isinstance(answer, KvpIpInfo):
            raise KvpError(f"{self.name}: unexpected answer {answer!r}")
        return answer

    # -- one transaction ------------------------------------------------------------------------------
    @staticmethod
    def _message(op: int, pool: int) -> bytearray:
        if not 0 <= pool < KVP_POOL_COUNT:
            raise ValueError(f"KVP pool {pool} does not exist (0 to {KVP_POOL_COUNT - 1})")
        message = bytearray(MSG_SIZE)  # kvp_send_key: kzalloc, then operation and pool
        message[0], message[1] = op, pool
        return message

    @staticmethod
    def _answer(answer: KvpAnswer | KvpIpInfo) -> KvpAnswer:
        if not isinstance(answer, KvpAnswer):
            raise KvpError(f"unexpected answer {answer!r}")
        return answer

    def _transact(self, op: int, pool: int, message: bytearray, timeout: float) -> KvpAnswer | KvpIpInfo:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._listener is None:
                    raise KvpNotOffered(f"{self.name}: the host does not offer Key-Value Pair Exchange")
                if self._state == READY and self._pending is None and not self._outmsg_unread:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    if self._state == DEVICE_INIT:
                        raise KvpNotAnswering(
                            f"{self.name}: the KVP daemon is not answering: no daemon has registered on "
                            f"/dev/vmbus/hv_kvp within {timeout:g} s"
                        )
                    raise KvpNotAnswering(
                        f"{self.name}: the KVP daemon is not answering: an earlier request is still "
                        f"pending after {timeout:g} s"
                    )
                self._cond.wait(left)
            transaction = _Transaction(op, pool, time.monotonic() + HV_UTIL_TIMEOUT)
            self._pending = transaction
            self._state = USERSPACE_REQ
            if not self._send_message(bytes(message)):
                # kvp_send_key: hvutil_transport_send failed -> HV_E_FAIL to the host
                self._pending = None
                self._state = READY
                return KvpAnswer(HV_E_FAIL)
        self._poke()
        if not transaction.done.wait(max(0.0, deadline - time.monotonic())):
            raise KvpNotAnswering(
                f"{self.name}: the KVP daemon is not answering: no answer to operation {op} on pool {pool} "
                f"within {timeout:g} s (the kernel gives it {HV_UTIL_TIMEOUT:g} s, then answers HV_E_FAIL)"
            )
        if transaction.failure is not None:
            raise transaction.failure
        assert transaction.answer is not None
        return transaction.answer

    def _fail_pending(self, failure: KvpError | None, status: int = HV_E_FAIL) -> None:
        """Under _cond: end the pending transaction with an error status (kvp_respond_to_host(NULL,
        status)) or, for a withdrawn service, with failure."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if failure is not None:
            pending.failure = failure
        elif pending.op == KVP_OP_GET_IP_INFO:
            pending.answer = KvpIpInfo(status)
        else:
            pending.answer = KvpAnswer(status)
        pending.done.set()
        self._cond.notify_all()

    # -- the device (runs in the channel's thread) ----------------------------------------------------
    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            if self._wake_w >= 0:
                os.write(self._wake_w, b"x")

    def _send_frame(self, conn: socket.socket, kind: int, value: int, payload: bytes = b"") -> bool:
        try:
            with self._send_lock:
                conn.sendmsg([FRAME.pack(kind, value), payload])
            return True
        except OSError:
            return False

    def _send_message(self, message: bytes) -> bool:
        """Under _cond: hvutil_transport_send in CHARDEV mode."""
        conn = self._conn
        if conn is None or self._outmsg_unread:
            return False  # no daemon (-EINVAL) / previous message not read (-EFAULT)
        if not self._send_frame(conn, MESSAGE, 0, message):
            return False
        self._outmsg_unread = True
        return True

    def _serve(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._state == DYING:
                        return
                    listener, conn, wake = self._listener, self._conn, self._wake_r
                    pending = self._pending
                if listener is None:
                    return
                timeout = None if pending is None else max(0.0, pending.deadline - time.monotonic())
                readable, _w, _x = select.select([s for s in (listener, conn, wake) if s is not None], [], [], timeout)
                if wake in readable:
                    with contextlib.suppress(OSError):
                        os.read(wake, 64)
                if conn is not None and conn in readable:
                    self._receive(conn)  # first: a closed device is released before a new open
                if listener in readable:
                    self._accept(listener)
                self._check_timeout()
        except Exception:  # the lab must not hang on a bug here: log it, fail what waits
            log.exception("%s: KVP channel thread failed", self.name)
            with self._cond:
                self._fail_pending(KvpError(f"{self.name}: the lab's KVP channel failed (see the lab log)"))

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _addr = listener.accept()
        except OSError:
            return
        # The previous opener may have closed the device just before: release it first, as the
        # kernel does at close(), so that a restarted daemon is not refused.
        while True:
            with self._cond:
                current = self._conn
            if current is None or not select.select([current], [], [], 0)[0]:
                break
            self._receive(current)
        with self._cond:
            if self._conn is not None or self._state == DYING:
                # hvt_op_open: the device is open already (or going away)
                busy = errno.EBUSY if self._state != DYING else errno.EBADF
                self._send_frame(conn, OPEN_RESULT, busy)
                conn.close()
                return
            self._conn = conn
            self._state = DEVICE_INIT
            self._register_unread = self._outmsg_unread = False
            self._send_frame(conn, OPEN_RESULT, 0)
        log.info("%s: daemon opened the device", self.name)

    def _receive(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(FRAME.size + MSG_SIZE + 4096)
        except OSError:
            data = b""
        if len(data) < FRAME.size:
            self._release()
            return
        kind, _value = FRAME.unpack_from(data)
        payload = data[FRAME.size :]
        with self._cond:
            if kind == READ_DONE:
                self._on_read()
            elif kind == WRITE:
                result = self._on_msg(payload)
                self._send_frame(conn, WRITE_RESULT, result)
                if result == 0 and self._register_unread:
                    # kvp_register(): queued while the daemon's write() is still in progress
                    reply = bytearray(MSG_SIZE)
                    reply[0] = self._dm_reg_value
                    reply[OFF_REGISTER_VERSION : OFF_REGISTER_VERSION + len(HV_DRV_VERSION)] = HV_DRV_VERSION
                    if not self._send_message(bytes(reply)):
                        self._register_unread = False
            else:
                log.warning("%s: unknown frame kind %s from the guest", self.name, kind)

    def _release(self) -> None:
        """hvt_op_release: the daemon closed the device (or died): kvp_on_reset."""
        with self._cond:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
            self._register_unread = self._outmsg_unread = False
            self._fail_pending(None, HV_E_FAIL)
            if self._state != DYING:
                self._state = DEVICE_INIT
            self._cond.notify_all()
        log.info("%s: daemon closed the device", self.name)

    def _on_read(self) -> None:
        """Under _cond: the daemon read the message (hvt->on_read)."""
        self._outmsg_unread = False
        if self._register_unread:
            self._register_unread = False
            self._state = READY  # kvp_register_done -> kvp_poll_wrapper
            self._ever_registered = True
            log.info("%s: daemon registered (version %s)", self.name, self._dm_reg_value)
        self._cond.notify_all()

    def _on_msg(self, message: bytes) -> int:
        """Under _cond: kvp_on_msg; returns 0 or an errno for the daemon's write()."""
        if self._state == DYING:
            return errno.EBADF
        if len(message) < MSG_SIZE:
            return errno.EINVAL
        if self._state == DEVICE_INIT:  # kvp_handle_handshake
            if self._register_unread:
                return errno.EFAULT  # kvp_register -> hvutil_transport_send: previous message not read
            operation = message[0]
            if operation not in (KVP_OP_REGISTER, KVP_OP_REGISTER1):
                log.warning("%s: incompatible daemon (operation %s)", self.name, operation)
                return errno.EINVAL
            self._dm_reg_value = operation
            self._register_unread = True
            return 0
        pending = self._pending
        if self._state != USERSPACE_REQ or pending is None:
            return errno.EINVAL  # "We didn't send anything to userspace so the reply is spurious"
        if self._dm_reg_value == KVP_OP_REGISTER:
            error = HV_S_CONT if message[OFF_ENUM_KEY] == 0 else HV_S_OK
        else:
            error = struct.unpack_from("<I", message, 0)[0]
        self._pending = None
        self._state = READY
        pending.answer = self._respond_to_host(pending, message, error)
        pending.done.set()
        self._cond.notify_all()
        return 0

    def _check_timeout(self) -> None:
        """kvp_timeout_func: no answer within HV_UTIL_TIMEOUT -> HV_E_FAIL; a late answer is spurious."""
        with self._cond:
            pending = self._pending
            if pending is not None and time.monotonic() >= pending.deadline:
                log.warning("%s: daemon did not answer within %s s", self.name, HV_UTIL_TIMEOUT)
                self._fail_pending(None, HV_E_FAIL)
                self._state = READY if self._conn is not None else DEVICE_INIT

    @staticmethod
    def _respond_to_host(pending: _Transaction, message: bytes, error: int) -> KvpAnswer | KvpIpInfo:
        """kvp_respond_to_host: what goes back to the host for the daemon's answer."""
        if pending.op == KVP_OP_GET_IP_INFO:
            if error:
                return KvpIpInfo(error)
            fields: dict[str, str] = {}
            for name, (offset, maxout) in IP_FIELDS.items():  # process_ob_ipinfo
                units = utf8s_to_utf16s(_cstring(message, offset), maxout)
                if units is None:
                    return KvpIpInfo(HV_E_FAIL)
                fields[name] = _decode_units(units)
            return KvpIpInfo(
                HV_S_OK,
                adapter_id=fields["adapter_id"],
                addr_family=message[OFF_ADDR_FAMILY],
                dhcp_enabled=bool(message[OFF_DHCP_ENABLED]),
                ip_addr=fields["ip_addr"],
                sub_net=fields["sub_net"],
                gate_way=fields["gate_way"],
                dns_addr=fields["dns_addr"],
            )
        if error:
            return KvpAnswer(error)
        if pending.op in (KVP_OP_SET, KVP_OP_DELETE, KVP_OP_SET_IP_INFO):
            return KvpAnswer(HV_S_OK)
        key: str | None = None
        if pending.op != KVP_OP_GET:  # GET keeps the host's key; ENUMERATE gets the daemon's
            key_units = utf8s_to_utf16s(_cstring(message, OFF_ENUM_KEY), HV_KVP_EXCHANGE_MAX_KEY_SIZE // 2 - 2)
            if key_units is None:
                return KvpAnswer(HV_E_FAIL)
            key = _decode_units(key_units)
        # copy_value: read at kvp_enum_data's value, for GET too
        value_units = utf8s_to_utf16s(_cstring(message, OFF_ENUM_VALUE), HV_KVP_EXCHANGE_MAX_VALUE_SIZE // 2 - 2)
        if value_units is None:
            return KvpAnswer(HV_E_FAIL)
        return KvpAnswer(HV_S_OK, key, _decode_units(value_units))
