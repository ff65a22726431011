"""The kernel's side of one hv_utils character device (/dev/vmbus/hv_kvp, /dev/vmbus/hv_fcopy) for a Linux
guest double: the transport both services share (drivers/hv/hv_utils_transport.c in CHARDEV mode).

In the lab, Debian's real daemon runs in the guest with a preloaded library
(tests/lab/linux_image/hvt_standin.c, built once per device) that turns its open of the device into a
connection to this object's socket in the guest's /run/hvlab. This module plays hv_utils_transport.c:
one opener at a time (EBUSY for a second), one message queued for the daemon at a time (it must read
it before the next is sent), every write handed to the service's on_msg callback whose result the
write returns, the reset when the daemon closes the device, EBADF once the service is withdrawn. The
service's own protocol (its handshake, its messages, the answers the host gets) is a subclass's:
kvp_channel.KvpChannel (hv_kvp.c), fcopy_channel.FcopyChannel (hv_fcopy.c). Facts and sources:
docs/dev/hyperv-facts.md section 9.

One host request at a time, as the services' kernel sides keep one transaction: a subclass's host
operation builds its message and calls ``_transact``, which waits (bounded) for a registered daemon,
sends the message, and waits (bounded) for the answer the subclass's ``_on_msg`` completes; the kernel's
own HV_UTIL_TIMEOUT ends a transaction the daemon never answers. Nothing here waits without a bound.

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
from typing import Any

log = logging.getLogger("hvlab.hvt_channel")

HV_E_FAIL = 0x80004005
HV_UTIL_TIMEOUT = 30.0  # drivers/hv/hyperv_vmbus.h: the kernel answers HV_E_FAIL after this long
DEFAULT_TIMEOUT = 10.0  # a host call's own bound (waiting for a daemon, then for its answer)

# Frames on the socket (hvt_standin.c): header {u32 kind; s32 value} + payload.
FRAME = struct.Struct("=Ii")
OPEN_RESULT, MESSAGE, WRITE_RESULT, WRITE, READ_DONE = 1, 2, 3, 4, 5

# enum hvutil_device_state (drivers/hv/hyperv_vmbus.h), as the services keep it
DEVICE_INIT, READY, USERSPACE_REQ, DYING = "device_init", "ready", "userspace_req", "dying"


class HvtError(RuntimeError):
    """A request the lab host could not get answered."""


class HvtNotOffered(HvtError):
    """The host does not offer the service to this guest (no device, no channel)."""


class HvtNotAnswering(HvtError):
    """No daemon is registered on the guest's device, or it did not answer in time."""


@dataclass
class Transaction:
    request: Any  # what the subclass needs to turn the daemon's answer into the host's
    deadline: float  # the kernel's own timeout (HV_UTIL_TIMEOUT)
    done: threading.Event = field(default_factory=threading.Event)
    answer: Any = None
    failure: HvtError | None = None


class HvtChannel:
    """One guest's device, kernel side. offer() while the host offers the service (before the node
    appears), withdraw() when it stops (after the node went).

    A subclass sets SERVICE, DEVICE and MAX_WRITE, its exception classes, and implements ``_on_msg``
    (the service's on_msg callback, under ``_cond``) and ``_failed(transaction, status)`` (the answer
    the host gets when the kernel ends a transaction with an error status). It may override
    ``_after_write`` and ``_after_read`` (a handshake reply queued after the daemon's write returned, a
    registration completed by the daemon's read) and ``_reset`` (state the service drops with the
    daemon)."""

    SERVICE = "the service"
    DEVICE = "/dev/vmbus/hv_?"
    MAX_WRITE = 4096  # the largest write the daemon makes
    Error: type[HvtError] = HvtError
    NotOffered: type[HvtNotOffered] = HvtNotOffered
    NotAnswering: type[HvtNotAnswering] = HvtNotAnswering

    def __init__(self, socket_path: Path, name: str) -> None:
        self.socket_path = Path(socket_path)
        self.name = name
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._state = DYING  # not offered
        self._outmsg_unread = False  # hvt->outmsg: a message waits for the daemon's read()
        self._pending: Transaction | None = None
        self._ever_registered = False

    # -- state for the guest double ---------------------------------------------------------------
    @property
    def offered(self) -> bool:
        with self._cond:
            return self._listener is not None

    @property
    def registered(self) -> bool:
        """A daemon has the device open and completed the handshake."""
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
        """The service's init and hvutil_transport_init: listen for the daemon's open."""
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
        """The service's deinit: the daemon's next read/write fails with EBADF and its next open finds no
        device. A pending host request ends with NotOffered."""
        with self._cond:
            thread = self._thread
            if self._listener is None:
                return
            self._state = DYING
            self._fail_pending(self.NotOffered(f"{self.name}: the host withdrew {self.SERVICE}"))
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
            self._outmsg_unread = False
            self._reset()
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

    # -- one transaction ------------------------------------------------------------------------------
    def _transact(self, message: bytes, request: Any, what: str, timeout: float) -> Any:
        """Send one host request to the daemon and wait for the answer the subclass's _on_msg gives.
        ``what`` names the request in messages."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._listener is None:
                    raise self.NotOffered(f"{self.name}: the host does not offer {self.SERVICE}")
                if self._state == READY and self._pending is None and not self._outmsg_unread:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    if self._state == DEVICE_INIT:
                        raise self.NotAnswering(
                            f"{self.name}: the {self.SERVICE} daemon is not answering: no daemon has registered "
                            f"on {self.DEVICE} within {timeout:g} s"
                        )
                    raise self.NotAnswering(
                        f"{self.name}: the {self.SERVICE} daemon is not answering: an earlier request is still "
                        f"pending after {timeout:g} s"
                    )
                self._cond.wait(left)
            transaction = Transaction(request, time.monotonic() + HV_UTIL_TIMEOUT)
            self._pending = transaction
            self._state = USERSPACE_REQ
            if not self._send_message(message):
                # hvutil_transport_send failed -> HV_E_FAIL to the host
                self._pending = None
                self._state = READY
                return self._failed(transaction, HV_E_FAIL)
        self._poke()
        if not transaction.done.wait(max(0.0, deadline - time.monotonic())):
            raise self.NotAnswering(
                f"{self.name}: the {self.SERVICE} daemon is not answering: no answer to {what} within {timeout:g} s "
                f"(the kernel gives it {HV_UTIL_TIMEOUT:g} s, then answers HV_E_FAIL)"
            )
        if transaction.failure is not None:
            raise transaction.failure
        return transaction.answer

    def _complete(self, answer: Any) -> None:
        """Under _cond: the pending transaction gets ``answer``; the device is READY again."""
        pending, self._pending = self._pending, None
        self._state = READY
        if pending is not None:
            pending.answer = answer
            pending.done.set()
        self._cond.notify_all()

    def _fail_pending(self, failure: HvtError | None, status: int = HV_E_FAIL) -> None:
        """Under _cond: end the pending transaction with an error status (the host gets it) or, for a
        withdrawn service, with failure."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if failure is not None:
            pending.failure = failure
        else:
            pending.answer = self._failed(pending, status)
        pending.done.set()
        self._cond.notify_all()

    # -- what a service defines --------------------------------------------------------------------
    def _on_msg(self, message: bytes) -> int:
        """Under _cond: the service's on_msg for one write of the daemon; 0 or an errno."""
        raise NotImplementedError

    def _failed(self, transaction: Transaction, status: int) -> Any:
        """The host's answer when the kernel ends ``transaction`` with ``status`` (no daemon answer)."""
        raise NotImplementedError

    def _after_write(self, result: int) -> None:
        """Under _cond, after the daemon's write returned ``result``: a reply the service queued."""

    def _after_read(self) -> None:
        """Under _cond, after the daemon read the queued message."""

    def _reset(self) -> None:
        """Under _cond: the daemon closed the device, or the service went: drop its registration."""

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
            log.exception("%s: channel thread failed", self.name)
            with self._cond:
                self._fail_pending(
                    self.Error(f"{self.name}: the lab's {self.SERVICE} channel failed (see the lab log)")
                )

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
            self._outmsg_unread = False
            self._reset()
            self._send_frame(conn, OPEN_RESULT, 0)
        log.info("%s: daemon opened the device", self.name)

    def _receive(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(FRAME.size + self.MAX_WRITE + 4096)
        except OSError:
            data = b""
        if len(data) < FRAME.size:
            self._release()
            return
        kind, _value = FRAME.unpack_from(data)
        payload = data[FRAME.size :]
        with self._cond:
            if kind == READ_DONE:
                self._outmsg_unread = False
                self._after_read()
                self._cond.notify_all()
            elif kind == WRITE:
                result = self._on_msg(payload)
                self._send_frame(conn, WRITE_RESULT, result)
                self._after_write(result)
            else:
                log.warning("%s: unknown frame kind %s from the guest", self.name, kind)

    def _release(self) -> None:
        """hvt_op_release: the daemon closed the device (or died): the service's on_reset."""
        with self._cond:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
            self._outmsg_unread = False
            self._reset()
            self._fail_pending(None, HV_E_FAIL)
            if self._state != DYING:
                self._state = DEVICE_INIT
            self._cond.notify_all()
        log.info("%s: daemon closed the device", self.name)

    def _check_timeout(self) -> None:
        """The service's timeout work: no answer within HV_UTIL_TIMEOUT -> HV_E_FAIL; a late answer is
        spurious."""
        with self._cond:
            pending = self._pending
            if pending is not None and time.monotonic() >= pending.deadline:
                log.warning("%s: daemon did not answer within %s s", self.name, HV_UTIL_TIMEOUT)
                self._fail_pending(None, HV_E_FAIL)
                self._state = READY if self._conn is not None else DEVICE_INIT

    def _registered_now(self) -> None:
        """Under _cond: the handshake is complete (READY)."""
        self._state = READY
        self._ever_registered = True
        self._cond.notify_all()
