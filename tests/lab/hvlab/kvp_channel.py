"""The kernel's side of /dev/vmbus/hv_kvp for a Linux guest double, driven by the host model.

On a Hyper-V guest, `hv_utils` (drivers/hv/hv_kvp.c over hv_utils_transport.c) relays each KVP
request of the host to the user-space daemon through the misc device /dev/vmbus/hv_kvp, one
`struct hv_kvp_msg` at a time, and relays the daemon's answer back. In the lab, Debian's real
`hv_kvp_daemon` runs in the guest with a preloaded library (tests/lab/linux_image/hvt_standin.c) that
turns its open of the device into a connection to this object's socket (the guest's
/run/hvlab/hv_kvp.sock). The transport is hvt_channel.HvtChannel's (hv_utils_transport.c); this class
plays hv_kvp.c: the registration handshake, the messages, the UTF-16/UTF-8 conversions and sizes, and
the error codes the host gets. Facts and sources: docs/dev/hyperv-facts.md
section 9.

The host model calls set_item, delete_item, get_item, enumerate_pool (guest_items, intrinsic_items)
and ip_info. Each returns what the real daemon answered, as the host would see it; a guest with no
registered daemon (not started, stopped, crashed) raises KvpNotAnswering after the call's timeout,
and a withdrawn service raises KvpNotOffered. Nothing here waits without a bound.

Standard library only.
"""

from __future__ import annotations

import errno
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from .hvt_channel import (
    DEFAULT_TIMEOUT,
    DEVICE_INIT,
    DYING,
    HV_E_FAIL,
    USERSPACE_REQ,
    HvtChannel,
    HvtError,
    HvtNotAnswering,
    HvtNotOffered,
    Transaction,
)

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


class KvpError(HvtError):
    """A KVP request the lab host could not get answered."""


class KvpNotOffered(KvpError, HvtNotOffered):
    """The host does not offer Key-Value Pair Exchange to this guest (no device, no channel)."""


class KvpNotAnswering(KvpError, HvtNotAnswering):
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


@dataclass(frozen=True)
class _Request:
    op: int
    pool: int


class KvpChannel(HvtChannel):
    """One guest's KVP device, kernel side (hv_kvp.c over HvtChannel's transport)."""

    SERVICE = "Key-Value Pair Exchange"
    DEVICE = "/dev/vmbus/hv_kvp"
    MAX_WRITE = MSG_SIZE
    Error = KvpError
    NotOffered = KvpNotOffered
    NotAnswering = KvpNotAnswering

    def __init__(self, socket_path: Path, name: str = "kvp") -> None:
        super().__init__(socket_path, name)
        self._dm_reg_value = 0
        self._register_unread = False  # kvp_register() queued, daemon has not read it yet
        self.lic_version_sent = HV_DRV_VERSION.decode()

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
        return self._answer(self._ask(KVP_OP_SET, pool, message, timeout))

    def delete_item(self, key: str, pool: int = KVP_POOL_EXTERNAL, timeout: float = DEFAULT_TIMEOUT) -> KvpAnswer:
        """KVP_OP_DELETE: HV_S_OK when the daemon removed it, HV_S_CONT when it had no such key."""
        message = self._message(KVP_OP_DELETE, pool)
        _put_key(
            message, _host_string(key, HV_KVP_EXCHANGE_MAX_KEY_SIZE, "the key"), OFF_DELETE_KEY, OFF_DELETE_KEY_SIZE
        )
        return self._answer(self._ask(KVP_OP_DELETE, pool, message, timeout))

    def get_item(self, key: str, pool: int, timeout: float = DEFAULT_TIMEOUT) -> KvpAnswer:
        """KVP_OP_GET: the daemon looks the key up in that pool's file. hv_kvp.c sends it a
        value_size of 0 and reads the answer's value at the enumerate layout's offset, so a found
        key comes back HV_S_OK with an empty value (docs/dev/hyperv-facts.md section 9)."""
        message = self._message(KVP_OP_GET, pool)
        _put_key(message, _host_string(key, HV_KVP_EXCHANGE_MAX_KEY_SIZE, "the key"), OFF_KEY, OFF_KEY_SIZE)
        return self._answer(self._ask(KVP_OP_GET, pool, message, timeout))

    def enumerate_index(self, pool: int, index: int, timeout: float = DEFAULT_TIMEOUT) -> KvpAnswer:
        """KVP_OP_ENUMERATE of one index."""
        message = self._message(KVP_OP_ENUMERATE, pool)
        struct.pack_into("<I", message, OFF_ENUM_INDEX, index)
        return self._answer(self._ask(KVP_OP_ENUMERATE, pool, message, timeout))

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
        answer = self._ask(KVP_OP_GET_IP_INFO, KVP_POOL_AUTO, message, timeout)
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

    def _ask(self, op: int, pool: int, message: bytearray, timeout: float) -> KvpAnswer | KvpIpInfo:
        answer: KvpAnswer | KvpIpInfo = self._transact(
            bytes(message), _Request(op, pool), f"operation {op} on pool {pool}", timeout
        )
        return answer

    # -- hv_kvp.c -----------------------------------------------------------------------------------
    def _failed(self, transaction: Transaction, status: int) -> KvpAnswer | KvpIpInfo:
        """kvp_respond_to_host(NULL, status)."""
        if transaction.request.op == KVP_OP_GET_IP_INFO:
            return KvpIpInfo(status)
        return KvpAnswer(status)

    def _reset(self) -> None:
        self._register_unread = False

    def _after_write(self, result: int) -> None:
        if result == 0 and self._register_unread:
            # kvp_register(): queued while the daemon's write() is still in progress
            reply = bytearray(MSG_SIZE)
            reply[0] = self._dm_reg_value
            reply[OFF_REGISTER_VERSION : OFF_REGISTER_VERSION + len(HV_DRV_VERSION)] = HV_DRV_VERSION
            if not self._send_message(bytes(reply)):
                self._register_unread = False

    def _after_read(self) -> None:
        if self._register_unread:
            self._register_unread = False
            self._registered_now()  # kvp_register_done -> kvp_poll_wrapper
            log.info("%s: daemon registered (version %s)", self.name, self._dm_reg_value)

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
        self._complete(self._respond_to_host(pending.request, message, error))
        return 0

    @staticmethod
    def _respond_to_host(pending: _Request, message: bytes, error: int) -> KvpAnswer | KvpIpInfo:
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
