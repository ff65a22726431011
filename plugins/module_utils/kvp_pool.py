# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Linux guest's Key-Value Pair Exchange pool files, read and written the way hv_kvp_daemon does.

Internal to this collection: not a public API, it may change without notice.

Facts (docs/dev/hyperv-facts.md section 3, "KVP pool files", and section 8):
- ``/var/lib/hyperv/.kvp_pool_N`` is a bare array of 2560-byte records: a 512-byte key field, then a
  2048-byte value field, each UTF-8 and ended by a NUL; nothing else is in the file.
- The daemon takes an fcntl write lock over the whole file (F_SETLKW, F_WRLCK, start 0, length 0) on a
  descriptor it keeps open, both to read a pool and to rewrite it; it rewrites in place (truncate, write).
  Replacing the file by rename would slip past that lock, so this module rewrites in place too.
- The kernel hands the daemon keys and values with their NUL counted (at most 511 and 2047 bytes of text),
  and the daemon's in-place update leaves stale bytes after the NUL: a field ends at its first NUL.
- The daemon looks a key up from the first record on: with a key in two records, the first one counts.
- cloud-init appends to pool 1 under flock(2), which does not meet fcntl locks on Linux: a writer here
  takes both, so neither the daemon nor cloud-init sees a half-written file.

Runs on the guest (Python 3.8 and later): standard library only.
"""

from __future__ import annotations

import fcntl
import os
import typing as t
from dataclasses import dataclass, field

KEY_FIELD = 512  # HV_KVP_EXCHANGE_MAX_KEY_SIZE, include/uapi/linux/hyperv.h
VALUE_FIELD = 2048  # HV_KVP_EXCHANGE_MAX_VALUE_SIZE
RECORD_SIZE = KEY_FIELD + VALUE_FIELD
# One byte of each field is the terminating NUL: the kernel never gives the daemon more text than this.
MAX_KEY_BYTES = KEY_FIELD - 1
MAX_VALUE_BYTES = VALUE_FIELD - 1
# What the kernel passes on when the host enumerates a pool: it converts to UTF-16 and stops at
# (field / 2) - 2 code units (drivers/hv/hv_kvp.c, kvp_respond_to_host). Longer text reaches the host cut.
HOST_MAX_KEY_UTF16 = KEY_FIELD // 2 - 2
HOST_MAX_VALUE_UTF16 = VALUE_FIELD // 2 - 2
# What an item must fit to reach every kind of guest, and the host, whole (docs/dev/hyperv-facts.md
# section 8, "Size limits"). The PowerShell libraries are sent these (vm_kvp_set, guest_kvp_set) and
# check them; they do not state them again.
ITEM_LIMITS = {
    "key_units": HOST_MAX_KEY_UTF16,
    "key_bytes": MAX_KEY_BYTES,
    "value_units": HOST_MAX_VALUE_UTF16,
    "value_bytes": MAX_VALUE_BYTES,
}

POOL_DIR = "/var/lib/hyperv"
POOL_EXTERNAL = 0  # host -> guest: the host's items (Add-/ModifyKvpItems), written by the daemon
POOL_GUEST = 1  # guest -> host: items the guest publishes; written by guest software, read by the daemon
POOL_AUTO = 2  # intrinsic items; the daemon answers them from live data, the file stays unused
POOL_AUTO_EXTERNAL = 3  # host -> guest: the host's own parameters (HostName, VirtualMachineName, ...)
POOL_AUTO_INTERNAL = 4  # reserved by the protocol; nothing known writes it
POOL_NAMES = {
    POOL_EXTERNAL: "external",
    POOL_GUEST: "guest",
    POOL_AUTO: "auto",
    POOL_AUTO_EXTERNAL: "auto_external",
    POOL_AUTO_INTERNAL: "auto_internal",
}

Items = t.Dict[str, str]  # noqa: UP006 (typing alias: this line runs on the guest, maybe Python 3.8)


class KvpPoolError(Exception):
    """A pool cannot be read or written, or an item does not fit; the message names the key or file."""


@dataclass
class PoolChanges:
    """What a set or remove did (or, in check mode, would do) to one pool file."""

    path: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    before: Items = field(default_factory=dict)
    after: Items = field(default_factory=dict)
    # Bytes that change although no item does: duplicate records dropped, a cut-off tail record.
    rewritten: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rewritten)


def pool_path(pool: int, root: str = "") -> str:
    if pool not in POOL_NAMES:
        raise KvpPoolError("there is no KVP pool %r: pools are numbered 0 to 4" % (pool,))
    return os.path.join(root or "/", POOL_DIR.lstrip("/"), ".kvp_pool_%d" % pool)


def _field_text(raw: bytes) -> str:
    # The first NUL ends the text; what follows it can be left over from a longer earlier value.
    end = raw.find(b"\0")
    # "replace": a record written by someone else never makes the whole pool unreadable.
    return (raw if end < 0 else raw[:end]).decode("utf-8", errors="replace")


def decode_records(data: bytes) -> list[tuple[str, str]]:
    """Every whole record in file order; a cut-off tail is ignored, as the daemon's fread ignores it."""
    records = []
    for offset in range(0, len(data) - RECORD_SIZE + 1, RECORD_SIZE):
        record = data[offset : offset + RECORD_SIZE]
        records.append((_field_text(record[:KEY_FIELD]), _field_text(record[KEY_FIELD:])))
    return records


def _items(records: t.Iterable[tuple[str, str]]) -> Items:
    items: Items = {}
    for key, value in records:
        if key and key not in items:  # the first record of a key is the one the daemon finds
            items[key] = value
    return items


def _shown(key: object) -> str:
    # Messages name the key, cut short: a key that is too long would otherwise fill the message.
    text = repr(key)
    return text if len(text) <= 80 else "%s... (%d characters)" % (text[:60], len(text) - 2)


def _utf8_size(key: str, what: str, text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: no UTF-8 for them, so no record either
        raise KvpPoolError("KVP key %s: the %s is not valid Unicode text" % (_shown(key), what)) from None


def check_unicode(key: str, value: str) -> None:
    """Raise KvpPoolError if the key or the value holds a lone surrogate, which no UTF-8 text can carry."""
    _utf8_size(key, "key", key)
    _utf8_size(key, "value", value)


def check_item(key: str, value: str) -> None:
    """Raise KvpPoolError unless the pool can hold the item exactly (sizes in UTF-8 bytes)."""
    if not isinstance(key, str) or not isinstance(value, str):
        raise KvpPoolError("KVP key %s: key and value must be strings" % _shown(key))
    if not key:
        raise KvpPoolError("a KVP key must not be empty")
    for what, text in (("key", key), ("value", value)):
        if "\0" in text:
            raise KvpPoolError(
                "KVP key %s: the %s contains a NUL character, which would end it early" % (_shown(key), what)
            )
    key_bytes = _utf8_size(key, "key", key)
    if key_bytes > MAX_KEY_BYTES:
        raise KvpPoolError(
            "KVP key %s is %d bytes in UTF-8; a key holds at most %d bytes (a %d-byte field ended by a NUL)"
            % (_shown(key), key_bytes, MAX_KEY_BYTES, KEY_FIELD)
        )
    value_bytes = _utf8_size(key, "value", value)
    if value_bytes > MAX_VALUE_BYTES:
        raise KvpPoolError(
            "the value of KVP key %s is %d bytes in UTF-8; a value holds at most %d bytes "
            "(a %d-byte field ended by a NUL)" % (_shown(key), value_bytes, MAX_VALUE_BYTES, VALUE_FIELD)
        )


def _xml_text(text: str) -> bool:
    """Whether XML 1.0 can hold every character (its Char production: no control character but tab, LF and
    CR, no lone surrogate), as .NET's XmlConvert.VerifyXmlChars checks on the host's side."""
    for ch in text:
        code = ord(ch)
        if not (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000):
            return False
    return True


def check_host_limits(key: str, value: str) -> None:
    """Raise KvpPoolError if the host would not receive the item whole (for items the host reads: pool 1).

    The host hands guest items out as CIM-XML (docs/dev/hyperv-facts.md section 8), so text XML 1.0
    cannot hold is refused too."""
    for what, text in (("key", key), ("value", value)):
        if not _xml_text(text):
            raise KvpPoolError(
                "KVP key %s: the %s holds a character the host cannot carry (XML 1.0 allows no control "
                "character but tab, LF and CR, and no lone surrogate)" % (_shown(key), what)
            )
    key_units = len(key.encode("utf-16-le", errors="surrogatepass")) // 2
    if key_units > HOST_MAX_KEY_UTF16:
        raise KvpPoolError(
            "KVP key %s is %d UTF-16 code units; the guest's kernel passes at most %d to the host (%d bytes)"
            % (_shown(key), key_units, HOST_MAX_KEY_UTF16, HOST_MAX_KEY_UTF16 * 2)
        )
    value_units = len(value.encode("utf-16-le", errors="surrogatepass")) // 2
    if value_units > HOST_MAX_VALUE_UTF16:
        raise KvpPoolError(
            "the value of KVP key %s is %d UTF-16 code units; the guest's kernel passes at most %d to the host "
            "(%d bytes)" % (_shown(key), value_units, HOST_MAX_VALUE_UTF16, HOST_MAX_VALUE_UTF16 * 2)
        )


def encode_record(key: str, value: str) -> bytes:
    check_item(key, value)
    key_raw = key.encode("utf-8")
    value_raw = value.encode("utf-8")
    return key_raw + b"\0" * (KEY_FIELD - len(key_raw)) + value_raw + b"\0" * (VALUE_FIELD - len(value_raw))


class _LockedPool:
    """One descriptor, locked the daemon's way (fcntl, whole file) and cloud-init's way (flock).

    Every read and write goes through that one descriptor: closing any other descriptor of the same file
    in this process would drop the fcntl lock (fcntl(2), "Advisory record locking").
    """

    def __init__(self, path: str, write: bool) -> None:
        self.path = path
        self.write = write
        self.fd = -1

    def __enter__(self) -> _LockedPool:
        flags = (os.O_RDWR | os.O_CREAT) if self.write else os.O_RDONLY
        try:
            self.fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
            # LOCK_EX: F_SETLKW with F_WRLCK over the whole file, as kvp_acquire_lock; a reader takes
            # F_RDLCK, which the daemon's F_WRLCK excludes just the same and needs no write access.
            fcntl.lockf(self.fd, fcntl.LOCK_EX if self.write else fcntl.LOCK_SH)
            fcntl.flock(self.fd, fcntl.LOCK_EX if self.write else fcntl.LOCK_SH)
        except OSError as exc:
            self.close()
            raise KvpPoolError(
                "cannot %s KVP pool %s: %s" % ("write" if self.write else "read", self.path, exc)
            ) from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases both locks
            self.fd = -1

    def read(self) -> bytes:
        chunks: list[bytes] = []
        offset = 0
        while True:
            chunk = os.pread(self.fd, 1 << 16, offset)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            offset += len(chunk)

    def replace(self, data: bytes) -> None:
        # Write, then cut: a crash part-way leaves old records at the end rather than records lost.
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(self.fd, view[offset:], offset)
        os.ftruncate(self.fd, len(data))
        os.fsync(self.fd)


def read_pool(path: str) -> Items:
    """The items of one pool file in file order, each key as the daemon finds it; {} if there is no file."""
    if not os.path.exists(path):
        return {}
    with _LockedPool(path, write=False) as pool:
        return _items(decode_records(pool.read()))


def _raw_records(data: bytes) -> list[tuple[str, bytes]]:
    # Records kept as they are, byte for byte: only the records of keys being changed are rebuilt.
    whole = len(data) - len(data) % RECORD_SIZE
    return [(_field_text(data[i : i + KEY_FIELD]), data[i : i + RECORD_SIZE]) for i in range(0, whole, RECORD_SIZE)]


def _rewrite(
    path: str,
    check_mode: bool,
    plan: t.Callable[[list[tuple[str, bytes]], PoolChanges], list[tuple[str, bytes]]],
) -> PoolChanges:
    if not os.path.exists(path):
        # An absent pool reads as empty; it is created only to hold records, and never in check mode.
        planned = PoolChanges(path=path)
        new_records = plan([], planned)
        if check_mode or not new_records:
            planned.after = _items((key, _field_text(raw[KEY_FIELD:])) for key, raw in new_records)
            return planned
    changes = PoolChanges(path=path)
    with _LockedPool(path, write=not check_mode) as pool:
        data = pool.read()
        records = _raw_records(data)
        changes.before = _items((key, _field_text(raw[KEY_FIELD:])) for key, raw in records)
        new_records = plan(records, changes)
        changes.after = _items((key, _field_text(raw[KEY_FIELD:])) for key, raw in new_records)
        new_data = b"".join(pair[1] for pair in new_records)
        changes.rewritten = new_data != data
        if changes.rewritten and not check_mode:
            pool.replace(new_data)
    return changes


def set_items(path: str, items: t.Mapping[str, str], check_mode: bool = False) -> PoolChanges:
    """Give each key its value, one record per key; new keys go at the end, in the order given.

    Every item is checked before the file is opened, so an item that does not fit writes nothing.
    """
    encoded = {}
    for key, value in items.items():
        encoded[key] = encode_record(key, value)

    def plan(records: list[tuple[str, bytes]], changes: PoolChanges) -> list[tuple[str, bytes]]:
        current = _items((key, _field_text(raw[KEY_FIELD:])) for key, raw in records)
        result = []
        placed = set()
        for key, raw in records:
            if key not in encoded:
                result.append((key, raw))
            elif key not in placed:  # a later duplicate of a key being set is dropped
                placed.add(key)
                if current[key] == items[key]:
                    result.append((key, raw))
                else:
                    result.append((key, encoded[key]))
                    changes.updated.append(key)
        for key in encoded:
            if key not in placed:
                result.append((key, encoded[key]))
                changes.added.append(key)
        return result

    return _rewrite(path, check_mode, plan)


def remove_items(path: str, keys: t.Iterable[str], check_mode: bool = False) -> PoolChanges:
    """Remove every record of each key; keys that are absent are not an error."""
    doomed = set(keys)

    def plan(records: list[tuple[str, bytes]], changes: PoolChanges) -> list[tuple[str, bytes]]:
        result = []
        for key, raw in records:
            if key in doomed and key:
                if key not in changes.removed:
                    changes.removed.append(key)
            else:
                result.append((key, raw))
        return result

    return _rewrite(path, check_mode, plan)
