"""kvp_pool against pool files made in tmp_path: records built here with struct (not with the writer under
test), the daemon's fcntl lock held by another process, the size limits, text that must travel untouched."""

from __future__ import annotations

import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.hyperv.integration.plugins.module_utils import kvp_pool as kvp

# struct's own padding, independent of kvp_pool's encoder: 512 then 2048 bytes, NULs after the text.
RECORD = struct.Struct("512s2048s")


def record(key: str | bytes, value: str | bytes) -> bytes:
    key_raw = key.encode("utf-8") if isinstance(key, str) else key
    value_raw = value.encode("utf-8") if isinstance(value, str) else value
    return RECORD.pack(key_raw, value_raw)


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = Path(kvp.pool_path(kvp.POOL_GUEST, root=str(tmp_path)))
    path.parent.mkdir(parents=True)
    return path


def test_sizes_and_paths(tmp_path: Path) -> None:
    assert RECORD.size == kvp.RECORD_SIZE == 2560
    assert (kvp.MAX_KEY_BYTES, kvp.MAX_VALUE_BYTES) == (511, 2047)
    assert (kvp.HOST_MAX_KEY_UTF16, kvp.HOST_MAX_VALUE_UTF16) == (254, 1022)
    assert kvp.pool_path(0) == "/var/lib/hyperv/.kvp_pool_0"
    assert kvp.pool_path(4, root=str(tmp_path)) == str(tmp_path / "var/lib/hyperv/.kvp_pool_4")
    with pytest.raises(kvp.KvpPoolError, match="pools are numbered 0 to 4"):
        kvp.pool_path(5)


def test_absent_pool_reads_empty_and_is_not_created(pool: Path) -> None:
    assert kvp.read_pool(str(pool)) == {}
    assert not kvp.remove_items(str(pool), ["a"]).changed
    assert not kvp.set_items(str(pool), {}).changed
    assert not pool.exists()


def test_read_hand_built_records(pool: Path) -> None:
    pool.write_bytes(
        record("first", "1")
        + record("Grüße/名前", "värde ✓ 🚀")
        # the daemon's in-place update of a longer value: the first NUL ends the text, the rest is stale
        + record("stale", b"new\0old-and-longer")
        + record("first", "the daemon never finds this one")
        + record("", "a record without a key")
        + record("full", b"x" * 2048)  # no NUL at all: the field is the whole text
        + record("tail", "cut off")[:1000]  # a partial record at the end, as fread leaves it
    )
    items = kvp.read_pool(str(pool))
    assert items == {"first": "1", "Grüße/名前": "värde ✓ 🚀", "stale": "new", "full": "x" * 2048}
    assert list(items) == ["first", "Grüße/名前", "stale", "full"]


def test_set_writes_records_byte_for_byte(pool: Path) -> None:
    changes = kvp.set_items(str(pool), {"b": "2", "a": "ünï"})
    assert changes.changed and changes.added == ["b", "a"] and changes.after == {"b": "2", "a": "ünï"}
    assert pool.read_bytes() == record("b", "2") + record("a", "ünï")
    assert oct(pool.stat().st_mode & 0o777) == "0o644"
    # rewritten in place: the daemon keeps this inode open and locks it, a renamed-in file would escape it
    inode = pool.stat().st_ino
    kvp.set_items(str(pool), {"b": "changed"})
    kvp.remove_items(str(pool), ["a"])
    assert pool.stat().st_ino == inode and pool.read_bytes() == record("b", "changed")


def test_set_is_idempotent_and_writes_nothing_the_second_time(pool: Path) -> None:
    kvp.set_items(str(pool), {"k": "v", "other": "x"})
    before = pool.stat()
    changes = kvp.set_items(str(pool), {"k": "v"})
    assert not changes.changed and changes.before == changes.after == {"k": "v", "other": "x"}
    assert pool.stat().st_mtime_ns == before.st_mtime_ns


def test_update_keeps_place_and_leaves_other_records_untouched(pool: Path) -> None:
    untouched = record("stale", b"new\0old-and-longer")
    pool.write_bytes(record("a", "1") + untouched + record("c", "3"))
    changes = kvp.set_items(str(pool), {"a": "one", "d": "4"})
    assert (changes.updated, changes.added, changes.removed) == (["a"], ["d"], [])
    assert pool.read_bytes() == record("a", "one") + untouched + record("c", "3") + record("d", "4")


def test_duplicates_set_keeps_one_remove_drops_all(pool: Path) -> None:
    pool.write_bytes(record("k", "first") + record("x", "1") + record("k", "second"))
    changes = kvp.set_items(str(pool), {"k": "first"})
    assert changes.changed and not changes.updated and changes.rewritten  # the duplicate went
    assert pool.read_bytes() == record("k", "first") + record("x", "1")

    pool.write_bytes(record("k", "first") + record("x", "1") + record("k", "second"))
    changes = kvp.remove_items(str(pool), ["k"])
    assert changes.removed == ["k"] and changes.after == {"x": "1"}
    assert pool.read_bytes() == record("x", "1")


def test_remove(pool: Path) -> None:
    kvp.set_items(str(pool), {"a": "1", "b": "2", "c": "3"})
    changes = kvp.remove_items(str(pool), ["b", "absent"])
    assert changes.removed == ["b"] and changes.before == {"a": "1", "b": "2", "c": "3"}
    assert pool.read_bytes() == record("a", "1") + record("c", "3")
    before = pool.stat().st_mtime_ns
    assert not kvp.remove_items(str(pool), ["b", "absent"]).changed
    assert pool.stat().st_mtime_ns == before


def test_check_mode_computes_and_writes_nothing(pool: Path) -> None:
    changes = kvp.set_items(str(pool), {"a": "1"}, check_mode=True)
    assert changes.changed and changes.added == ["a"] and changes.after == {"a": "1"}
    assert not pool.exists()

    pool.write_bytes(record("a", "1") + record("b", "2"))
    data = pool.read_bytes()
    assert kvp.set_items(str(pool), {"a": "new", "c": "3"}, check_mode=True).after == {"a": "new", "b": "2", "c": "3"}
    assert kvp.remove_items(str(pool), ["b"], check_mode=True).removed == ["b"]
    assert pool.read_bytes() == data


@pytest.mark.parametrize(
    "value",
    [
        "$(touch /tmp/kvp-pwned) `id` ${HOME}",
        'it\'s "quoted" \\ back\\slashed',
        "line one\nline two\r\n\ttabbed",
        "",
        "é" * 1023,  # 2046 bytes: near the limit, in two-byte letters
        "🚀" * 511 + "abc",  # 2047 bytes exactly
        "<xml attr='1'>&amp;</xml>",
    ],
)
def test_values_round_trip_exactly(pool: Path, value: str) -> None:
    kvp.set_items(str(pool), {"key $(x) 'q'": value})
    assert kvp.read_pool(str(pool)) == {"key $(x) 'q'": value}
    assert pool.read_bytes() == record("key $(x) 'q'", value)


def test_limits_are_utf8_bytes_and_checked_before_any_write(pool: Path) -> None:
    kvp.set_items(str(pool), {"k" * 511: "v" * 2047})  # the largest item that fits
    data = pool.read_bytes()

    with pytest.raises(
        kvp.KvpPoolError, match=r"KVP key 'kkk.*\(512 characters\) is 512 bytes in UTF-8; a key holds at most 511 bytes"
    ):
        kvp.set_items(str(pool), {"k" * 512: ""})
    # 1024 characters, 2048 bytes: characters are not the measure
    with pytest.raises(kvp.KvpPoolError, match=r"value of KVP key 'wide' is 2048 bytes in UTF-8.* at most 2047 bytes"):
        kvp.set_items(str(pool), {"good": "fine", "wide": "é" * 1024})
    with pytest.raises(kvp.KvpPoolError, match="at most 511 bytes"):
        kvp.set_items(str(pool), {"ключ" * 64: "x"})  # 256 characters, 512 bytes
    assert pool.read_bytes() == data  # "good" was not written either

    with pytest.raises(kvp.KvpPoolError) as long_key:
        kvp.set_items(str(pool), {"k" * 5000: ""})
    assert "(5000 characters)" in str(long_key.value) and len(str(long_key.value)) < 300
    with pytest.raises(kvp.KvpPoolError, match="is not valid Unicode text"):
        kvp.set_items(str(pool), {"k": "lone \udc80 surrogate"})
    with pytest.raises(kvp.KvpPoolError, match="must not be empty"):
        kvp.set_items(str(pool), {"": "x"})
    with pytest.raises(kvp.KvpPoolError, match="NUL character"):
        kvp.set_items(str(pool), {"k": "a\0b"})
    other = pool.parent / ".kvp_pool_0"
    with pytest.raises(kvp.KvpPoolError):
        kvp.set_items(str(other), {"a": "1", "b": "x" * 5000})
    assert not other.exists()


def test_host_limits_count_utf16_units() -> None:
    kvp.check_host_limits("k" * 254, "v" * 1022)
    kvp.check_host_limits("🚀" * 127, "")  # astral characters are two units each
    with pytest.raises(kvp.KvpPoolError, match=r"255 UTF-16 code units.* at most 254"):
        kvp.check_host_limits("🚀" * 127 + "k", "")
    with pytest.raises(kvp.KvpPoolError, match=r"1023 UTF-16 code units.* at most 1022"):
        kvp.check_host_limits("k", "v" * 1023)


# Another process takes the daemon's lock exactly as kvp_acquire_lock does: fcntl F_SETLKW, F_WRLCK,
# SEEK_SET, start 0, length 0 (the whole file), on a descriptor opened O_RDWR; or cloud-init's flock.
HOLDER = r"""
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
if sys.argv[2] == "fcntl":
    fcntl.fcntl(fd, fcntl.F_SETLKW, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
else:
    fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""

# Tries the daemon's lock without waiting: prints "free" or "busy".
PROBE = r"""
import errno, fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    print("free")
except OSError as exc:
    print("busy" if exc.errno in (errno.EAGAIN, errno.EACCES) else exc)
"""


def _hold_lock(path: Path, kind: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    ready = select.select([holder.stdout], [], [], 10)[0]
    assert ready and holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.parametrize("kind", ["fcntl", "flock"])
@pytest.mark.parametrize("operation", ["set", "remove", "read"])
def test_waits_for_the_lock_holder(pool: Path, kind: str, operation: str) -> None:
    pool.write_bytes(record("a", "1"))
    results: list[object] = []
    calls = {
        "set": lambda: kvp.set_items(str(pool), {"a": "2"}),
        "remove": lambda: kvp.remove_items(str(pool), ["a"]),
        "read": lambda: kvp.read_pool(str(pool)),
    }
    holder = _hold_lock(pool, kind)
    try:
        worker = threading.Thread(target=lambda: results.append(calls[operation]()), daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(0.6)
        assert worker.is_alive() and not results, "did not wait for the %s lock" % kind
        assert pool.read_bytes() == record("a", "1")
        assert holder.stdin is not None
        holder.stdin.close()  # the holder exits, its lock goes
        worker.join(10)
        assert not worker.is_alive() and results
        assert time.monotonic() - started >= 0.6
    finally:
        holder.kill()
        holder.wait(10)
    if operation == "read":
        assert results == [{"a": "1"}]
    else:
        assert pool.read_bytes() == (record("a", "2") if operation == "set" else b"")


def test_holds_the_daemons_lock_while_it_works(pool: Path) -> None:
    pool.write_bytes(record("a", "1"))

    def probe() -> str:
        return subprocess.run(
            [sys.executable, "-c", PROBE, str(pool)], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()

    assert probe() == "free"
    with kvp._LockedPool(str(pool), write=True):
        assert probe() == "busy"
    with kvp._LockedPool(str(pool), write=False):
        assert probe() == "busy"  # a reader's F_RDLCK keeps the daemon's F_WRLCK out too
    assert probe() == "free"


def test_unreadable_pool_names_the_file(pool: Path) -> None:
    pool.mkdir()  # a directory where the file should be
    with pytest.raises(kvp.KvpPoolError, match=r"cannot write KVP pool .*\.kvp_pool_1"):
        kvp.set_items(str(pool), {"a": "1"})
