"""The lab's kernel side of /dev/vmbus/hv_kvp (hvlab/kvp_channel.py) against a scripted daemon speaking
the stand-in library's framing (tests/lab/linux_image/hvt_standin.c): the rules of drivers/hv/hv_kvp.c
and hv_utils_transport.c that the real daemon never breaks (docs/dev/hyperv-facts.md section 9). No
guest, no root."""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hvlab import hvt_channel, kvp_channel
from hvlab.hvt_channel import FRAME, HV_E_FAIL, MESSAGE, OPEN_RESULT, READ_DONE, WRITE, WRITE_RESULT
from hvlab.kvp_channel import (
    HV_S_CONT,
    HV_S_OK,
    KVP_OP_ENUMERATE,
    KVP_OP_REGISTER,
    KVP_OP_REGISTER1,
    KVP_OP_SET,
    MSG_SIZE,
    KvpAnswer,
    KvpChannel,
    KvpNotAnswering,
    KvpNotOffered,
)
from labclient import wait_for


class Daemon:
    """One opener of the device, as the preloaded library frames it."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(5)
        self.sock.connect(str(path))
        self.open_result = self.frame(OPEN_RESULT)[0]

    def frame(self, kind: int) -> tuple[int, bytes]:
        data = self.sock.recv(FRAME.size + MSG_SIZE + 64)
        assert data, "the channel closed the device"
        got, value = FRAME.unpack_from(data)
        assert got == kind, (got, kind)
        return value, data[FRAME.size :]

    def write(self, message: bytes) -> int:
        self.sock.sendmsg([FRAME.pack(WRITE, len(message)), message])
        return self.frame(WRITE_RESULT)[0]

    def read(self) -> bytes:
        _value, payload = self.frame(MESSAGE)
        self.sock.send(FRAME.pack(READ_DONE, len(payload)))
        return payload

    def register(self, op: int = KVP_OP_REGISTER1) -> bytes:
        message = bytearray(MSG_SIZE)
        message[0] = op
        assert self.write(bytes(message)) == 0
        return self.read()

    def close(self) -> None:
        self.sock.close()


def answer(op: int = KVP_OP_SET, error: int = HV_S_OK, key: bytes = b"", value: bytes = b"") -> bytes:
    message = bytearray(MSG_SIZE)
    struct.pack_into("<I", message, 0, error)
    message[20 : 20 + len(key)] = key  # kvp_enum_data.data.key
    message[532 : 532 + len(value)] = value  # kvp_enum_data.data.value
    return bytes(message)


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[KvpChannel]:
    chan = KvpChannel(tmp_path / "hv_kvp.sock", name="test")
    chan.offer()
    yield chan
    chan.withdraw()


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_registration_handshake(channel: KvpChannel) -> None:
    daemon = Daemon(channel.socket_path)
    assert daemon.open_result == 0
    assert daemon.write(b"\x64" * 100) == errno.EINVAL  # shorter than struct hv_kvp_msg
    bad = bytearray(MSG_SIZE)
    bad[0] = 7
    assert daemon.write(bytes(bad)) == errno.EINVAL  # "incompatible daemon"
    assert not channel.registered
    reply = daemon.register()
    assert len(reply) == MSG_SIZE and reply[0] == KVP_OP_REGISTER1
    assert reply[4:8] == b"3.1\0"  # HV_DRV_VERSION in kvp_register.version
    wait_for("registered", lambda: channel.registered)
    assert daemon.write(answer()) == errno.EINVAL  # nothing was asked: spurious
    daemon.close()
    wait_for("released", lambda: not channel.registered)
    assert channel.ever_registered


def test_second_opener_is_busy_and_a_reopen_after_close_is_not(channel: KvpChannel) -> None:
    first = Daemon(channel.socket_path)
    first.register()
    second = Daemon(channel.socket_path)
    assert second.open_result == errno.EBUSY
    first.close()
    third = Daemon(channel.socket_path)  # immediately: the close is released first
    assert third.open_result == 0
    third.register()
    wait_for("registered", lambda: channel.registered)


def test_set_request_as_the_kernel_builds_it(channel: KvpChannel) -> None:
    daemon = Daemon(channel.socket_path)
    daemon.register()
    wait_for("registered", lambda: channel.registered)
    thread, result = in_thread(lambda: channel.set_item("Schlüssel", "Wert $(x)", pool=0))
    request = daemon.read()
    assert (request[0], request[1]) == (KVP_OP_SET, 0)
    key_size, value_size = struct.unpack_from("<II", request, 8)
    assert request[16 : 16 + key_size] == "Schlüssel".encode() + b"\0"
    assert key_size == len("Schlüssel".encode()) + 1
    assert request[528 : 528 + value_size] == b"Wert $(x)\0"
    assert daemon.write(answer(error=HV_S_CONT)) == 0
    thread.join(5)
    assert result == [KvpAnswer(HV_S_CONT)]


def test_enumerate_answer_conversions(channel: KvpChannel) -> None:
    daemon = Daemon(channel.socket_path)
    daemon.register()
    wait_for("registered", lambda: channel.registered)
    thread, result = in_thread(lambda: channel.enumerate_index(1, 0))
    request = daemon.read()
    assert (request[0], request[1], struct.unpack_from("<I", request, 4)[0]) == (KVP_OP_ENUMERATE, 1, 0)
    daemon.write(answer(KVP_OP_ENUMERATE, key="Grüße 🙂".encode(), value=b"x" * 2000))
    thread.join(5)
    assert result == [KvpAnswer(HV_S_OK, "Grüße 🙂", "x" * 1022)]  # (2048 / 2) - 2 units back
    thread, result = in_thread(lambda: channel.enumerate_index(1, 1))
    daemon.read()
    daemon.write(answer(KVP_OP_ENUMERATE, key=b"bad \xff utf-8", value=b"v"))
    thread.join(5)
    assert result == [KvpAnswer(HV_E_FAIL)]  # utf8s_to_utf16s failed


def test_legacy_daemon_reports_errors_by_an_empty_key(channel: KvpChannel) -> None:
    daemon = Daemon(channel.socket_path)
    assert daemon.register(KVP_OP_REGISTER)[0] == KVP_OP_REGISTER
    wait_for("registered", lambda: channel.registered)
    thread, result = in_thread(lambda: channel.enumerate_index(0, 5))
    daemon.read()
    daemon.write(answer(KVP_OP_ENUMERATE, error=HV_S_OK))
    thread.join(5)
    assert result == [KvpAnswer(HV_S_CONT)]


def test_no_daemon_and_no_service_are_explicit(channel: KvpChannel, tmp_path: Path) -> None:
    with pytest.raises(KvpNotAnswering, match="no daemon has registered"):
        channel.set_item("k", "v", timeout=0.3)
    daemon = Daemon(channel.socket_path)
    daemon.register()
    wait_for("registered", lambda: channel.registered)
    with pytest.raises(KvpNotAnswering, match="no answer"):
        channel.set_item("k", "v", timeout=0.3)  # never answered
    assert daemon.frame(MESSAGE)[1][0] == KVP_OP_SET  # it was sent
    channel.withdraw()
    assert daemon.sock.recv(64) == b""  # the device is gone: the daemon's read fails
    with pytest.raises(KvpNotOffered):
        channel.set_item("k", "v", timeout=0.3)
    idle = KvpChannel(tmp_path / "never-offered.sock")
    with pytest.raises(KvpNotOffered):
        idle.enumerate_pool(1)


def test_daemon_gone_mid_request_answers_fail(channel: KvpChannel) -> None:
    daemon = Daemon(channel.socket_path)
    daemon.register()
    wait_for("registered", lambda: channel.registered)
    thread, result = in_thread(lambda: channel.delete_item("k", timeout=5))
    daemon.read()
    daemon.close()  # kvp_on_reset
    thread.join(5)
    assert result == [KvpAnswer(HV_E_FAIL)]


def test_kernel_timeout_then_a_late_answer_is_spurious(channel: KvpChannel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hvt_channel, "HV_UTIL_TIMEOUT", 0.3)  # the transport keeps the kernel timeout
    daemon = Daemon(channel.socket_path)
    daemon.register()
    wait_for("registered", lambda: channel.registered)
    thread, result = in_thread(lambda: channel.set_item("k", "v", timeout=5))
    daemon.read()
    thread.join(5)
    assert result == [KvpAnswer(HV_E_FAIL)]  # kvp_timeout_func
    assert daemon.write(answer()) == errno.EINVAL


def test_host_limits() -> None:
    channel = KvpChannel(Path("/nonexistent/hv_kvp.sock"))
    with pytest.raises(ValueError, match="at most 255"):
        channel.set_item("k" * 256, "v")
    with pytest.raises(ValueError, match="at most 1023"):
        channel.set_item("k", "v" * 1024)
    with pytest.raises(ValueError, match="pool 5 does not exist"):
        channel.set_item("k", "v", pool=5)


def test_long_socket_paths_are_bound(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    channel = KvpChannel(deep / "hv_kvp.sock")
    channel.offer()
    try:
        assert (deep / "hv_kvp.sock").is_socket()
    finally:
        channel.withdraw()
    assert not (deep / "hv_kvp.sock").exists()


def test_kernel_string_conversions() -> None:
    # fs/nls/nls_base.c behaviour the channel relies on.
    units = [*kvp_channel._units("a€🙂"), 0]
    assert kvp_channel.utf16s_to_utf8s(units, len(units) * 2, 511) == "a€🙂".encode()
    assert kvp_channel.utf16s_to_utf8s(units, 100, 4) == "a€".encode()  # 🙂 no longer fits: stop
    assert kvp_channel.utf16s_to_utf8s([0xDC00, 0x41, 0], 6, 10) == b"A"  # lone low surrogate skipped
    assert kvp_channel.utf8s_to_utf16s("a€🙂".encode(), 10) == kvp_channel._units("a€🙂")
    assert kvp_channel.utf8s_to_utf16s(b"\xff", 10) is None  # invalid UTF-8: -EINVAL (HV_E_FAIL)
    assert kvp_channel.utf8s_to_utf16s(b"ab\0cd", 10) == [0x61, 0x62]
