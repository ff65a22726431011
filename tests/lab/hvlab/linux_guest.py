"""Linux guest double: a real Debian systemd guest in a systemd-nspawn container.

The image (tests/lab/linux_image/build.sh, cached in <repo>/.cache/lab-image) is a Debian bookworm
root file system with sshd, python3 and hyperv-daemons, plus the lab's stand-ins for what a
container cannot have (tests/lab/linux_image/README.md). Each guest boots it through its own
overlay, so the image stays read-only and several guests run at once:

    <lab_dir>/linux-guests/<vm id>/
        disk/upper, disk/work   the guest's writable layer: kept while this object lives (a VM's
                                disk survives stop/start), new for each LinuxGuest object
        root/                   mount point of the root overlay (only inside the guest's own mount
                                namespace: nothing is ever mounted on the host)
        run/                    rebuilt at every start (what a reboot resets): the fake VMBus tree
                                (/sys/bus/vmbus), /sys/module layers, /dev/vmbus nodes, daemon states
        console.log             the container's console and systemd-nspawn's messages
    <lab_dir>/linux-guest-ssh/id_ed25519   root's key for every Linux guest of this lab

The host side of the lab (server, host model) talks to a guest only through the methods below:
start, stop, offers_changed, ic_status, heartbeat, inventory_vars, snapshot, and `kvp` (the kernel
side of the guest's /dev/vmbus/hv_kvp, hvlab/kvp_channel.py, on which the host sets, deletes and
enumerates KVP items through the guest's real hv_kvp_daemon). Facts used: docs/dev/hyperv-facts.md
section 3 (VMBus class GUIDs, daemon units), 9 (the KVP device protocol) and 5 (the nspawn recipe).

This module imports only the standard library at its top: it is also run as a script, as the
supervisor process that owns a guest's mount namespace (`_supervise`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import unicodedata
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("hvlab.linux_guest")

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "tests" / "lab" / "linux_image" / "build.sh"
IMAGE_DIR = REPO_ROOT / ".cache" / "lab-image"

# Fixed namespace: instance GUIDs of a VM's VMBus devices are stable across runs.
GUEST_NAMESPACE = uuid.UUID("0c6f4c1e-5d7a-4b8e-a2f3-7e91d04b6a58")
HALT_SIGNAL = signal.SIGRTMIN + 3  # systemd: halt
BOOT_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
SSH_KEY_DIR = "linux-guest-ssh"
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
LISTEN_CONF = "etc/ssh/sshd_config.d/00-hvlab-listen.conf"  # image: ssh.service needs it to start
GUEST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
    "TERM": "dumb",
}


@dataclass(frozen=True)
class VmbusDevice:
    key: str
    class_guid: str  # lower case, no braces (torvalds/linux include/linux/hyperv.h)
    driver: str | None  # VMBus driver bound to it
    node: str | None = None  # /dev/vmbus/<node> while offered (hv_utils' misc devices)
    unit: str | None = None  # Debian 12 daemon unit (hyperv-daemons)


IC_DEVICES: dict[str, VmbusDevice] = {
    d.key: d
    for d in (
        VmbusDevice("heartbeat", "57164f39-9115-4e78-ab55-382f3bd5422d", "hv_utils"),
        VmbusDevice("shutdown", "0e0b6031-5213-4934-818b-38d90ced39db", "hv_utils"),
        VmbusDevice("time_synchronization", "9527e630-d0ae-497b-adce-e80ab0175caf", "hv_utils"),
        VmbusDevice(
            "key_value_pair_exchange",
            "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6",
            "hv_utils",
            "hv_kvp",
            "hv-kvp-daemon.service",
        ),
        VmbusDevice("vss", "35fa2e29-ea23-4236-96ae-3a6ebacba440", "hv_utils", "hv_vss", "hv-vss-daemon.service"),
        # Kernels before 6.10: hv_utils and /dev/vmbus/hv_fcopy (Debian 12 ships 6.1). See fcopy_uio.
        VmbusDevice(
            "guest_service_interface",
            "34d14be3-dee4-41c8-9ae7-6b174977c192",
            "hv_utils",
            "hv_fcopy",
            "hv-fcopy-daemon.service",
        ),
    )
}
# Devices every VM has whatever the ICs (synthetic SCSI controller and network adapter).
OTHER_DEVICES = (
    VmbusDevice("storage", "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f", "hv_storvsc"),
    VmbusDevice("network", "f8615163-df3e-46c5-913f-f2d2f965ed0e", "hv_netvsc"),
)
# /sys/module entries of a Hyper-V guest at boot (name -> modules it uses).
LOADED_MODULES = {"hv_vmbus": (), "hv_utils": ("hv_vmbus",), "hv_netvsc": ("hv_vmbus",), "hv_storvsc": ("hv_vmbus",)}
# Their /proc/modules sizes on Debian 12's 6.1 (the modprobe stand-in uses the same table).
MODULE_SIZES = {"hv_vmbus": 159744, "hv_utils": 57344, "hv_netvsc": 126976, "hv_storvsc": 28672}
MODULE_TABLE = "proc-modules"  # in status_dir: /run/hvlab/proc-modules, bound over /proc/modules at boot
# Misc minors for the stand-in nodes: unassigned in include/linux/miscdevice.h and below the
# dynamic range of current kernels, so opening one fails with ENODEV instead of reaching a device.
MISC_MAJOR = 10
NODE_MINORS = {"hv_kvp": 55, "hv_vss": 56, "hv_fcopy": 57}
# In status_dir (/run/hvlab in the guest): where hvt_standin.c connects the daemons' opens of
# /dev/vmbus/hv_kvp and /dev/vmbus/hv_fcopy.
KVP_SOCKET = "hv_kvp.sock"
FCOPY_SOCKET = "hv_fcopy.sock"
# Each KVP request the host double makes of a guest's daemon waits at most this long (hv_kvp.c gives a
# guest 30 s; the lab's calls read many VMs one after another).
KVP_CALL_TIMEOUT = 5.0
KVP_GUEST_NOT_ANSWERING = "guest_not_answering"  # as vm_kvp_info answers it (protocol doc)


class LinuxGuestError(RuntimeError):
    """A Linux guest double could not be prepared, booted or stopped."""


def guest_hostname(vm_name: str, vm_id: str) -> str:
    """A valid host name from any VM name: ASCII letters and digits, other runs become '-'."""
    folded = unicodedata.normalize("NFKD", vm_name).encode("ascii", "ignore").decode().lower()
    label = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:63].strip("-")
    return label or "vm-" + vm_id[:8]


def _instance_guid(vm_id: str, key: str) -> str:
    return str(uuid.uuid5(GUEST_NAMESPACE, f"{vm_id}/{key}"))


def _modalias(class_guid: str) -> str:
    return "vmbus:" + uuid.UUID(class_guid).bytes_le.hex()  # drivers/hv/vmbus_drv.c: %*phN of the GUID


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process, or None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _proc_stat(int(entry))
            if info and info[0] == pid:
                found.append(int(entry))
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _nspawn_path(path: Path) -> str:
    """systemd-nspawn separates --bind/--overlay paths with ':' and reads backslash escapes."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:")


_key_lock = threading.Lock()


def lab_ssh_key(lab_dir: Path) -> Path:
    """root's key pair for this lab's Linux guests (created once, shared by the lab's guests)."""
    directory = Path(lab_dir) / SSH_KEY_DIR
    key = directory / "id_ed25519"
    with _key_lock:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(directory / ".lock", "w", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (key.exists() and key.with_suffix(".pub").exists()):
                tmp = directory / f".new-{os.getpid()}-{threading.get_ident()}"
                tmp.unlink(missing_ok=True)
                tmp.with_suffix(".pub").unlink(missing_ok=True)
                result = subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hvlab-linux-guest", "-f", str(tmp)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if result.returncode != 0:
                    raise LinuxGuestError(f"ssh-keygen failed: {result.stderr.strip()}")
                os.replace(tmp.with_suffix(".pub"), key.with_suffix(".pub"))
                os.replace(tmp, key)
    return key


_running_guests: weakref.WeakSet[LinuxGuest] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for guest in list(_running_guests):
        with contextlib.suppress(Exception):
            guest.stop()


class LinuxGuest:
    """One Linux VM's guest side: a booted Debian container whose VMBus tree follows the host.

    Call offers_changed() with the ICs the host offers (before start() too: nothing is offered
    until then). fcopy_uio=True shows the VMBus of a kernel >= 6.10 for Guest Service Interface
    (fcopy device bound to no driver, no /dev/vmbus/hv_fcopy); the default is Debian 12's 6.1.
    """

    def __init__(self, vm_name: str, vm_id: str, lab_dir: Path, *, fcopy_uio: bool = False) -> None:
        self.vm_name = vm_name
        self.vm_id = vm_id.lower()
        self.lab_dir = Path(lab_dir).resolve()
        self.dir = self.lab_dir / "linux-guests" / self.vm_id
        self.console_log = self.dir / "console.log"
        self.run_dir = self.dir / "run"
        # Host directories shown in the guest as /sys/bus/vmbus, /dev/vmbus and /run/hvlab (daemon states).
        self.vmbus_dir = self.run_dir / "vmbus"
        self.dev_dir = self.run_dir / "dev-vmbus"
        self.status_dir = self.run_dir / "hvlab"
        self.hostname = guest_hostname(vm_name, self.vm_id)
        # Unique on this machine (nspawn keeps per-machine state under /run/systemd/nspawn).
        self.machine = "hvlab-" + uuid.uuid5(GUEST_NAMESPACE, str(self.dir)).hex[:12]
        self.fcopy_uio = fcopy_uio
        self._lifecycle = threading.RLock()  # start/stop
        self._state = threading.RLock()  # offers and the VMBus tree
        self._offered: frozenset[str] = frozenset()
        self._port: int | None = None
        self._key: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None  # the supervisor (owns the mount namespace)
        self._leader: tuple[int, int] | None = None  # container PID 1 on the host: (pid, start time)
        self._lifeline: int | None = None  # write end: the supervisor halts the guest when it closes
        self._image_lock: int | None = None
        self._tree_live = False
        self._up = False  # reached "running" in this boot
        self._disk_image: str | None = None  # image the guest's disk layer belongs to
        # Here, not at the top: the supervisor runs this file alone.
        from .fcopy_channel import FcopyChannel
        from .kvp_channel import KvpChannel

        self.kvp = KvpChannel(self.status_dir / KVP_SOCKET, name=f"{vm_name} kvp")
        self.fcopy = FcopyChannel(self.status_dir / FCOPY_SOCKET, name=f"{vm_name} fcopy")
        # Each device node whose kernel side the lab plays, with the real daemon on the other end.
        self._channels = {"hv_kvp": self.kvp, "hv_fcopy": self.fcopy}

    # -- for tests ----------------------------------------------------------------------------
    @property
    def pids(self) -> dict[str, int | None]:
        """Host pids of the supervisor, systemd-nspawn and the container's systemd (for tests)."""
        supervisor = self._proc.pid if self._proc else None
        nspawn = self._nspawn_pid()
        return {"supervisor": supervisor, "nspawn": nspawn, "systemd": self._leader[0] if self._leader else None}

    # -- protocol -------------------------------------------------------------------------------
    def start(self) -> None:
        """Build or reuse the image, boot the container, wait for systemd and sshd."""
        with self._lifecycle:
            if self._running():
                return
            self._reap()
            if os.geteuid() != 0:
                raise LinuxGuestError("Linux guest doubles need root (systemd-nspawn, overlay mounts)")
            for tool in ("unshare", "nsenter", "mount", "ssh-keygen"):
                if shutil.which(tool) is None:
                    raise LinuxGuestError(f"Linux guest doubles need {tool!r}, which is not installed")
            rootfs = self._take_image()
            try:
                self._prepare_disk(rootfs)
                self._choose_port()
                with self._state:
                    self._build_runtime()
                self._launch(rootfs)
                self._wait_ready(time.monotonic() + BOOT_TIMEOUT)
            except BaseException as exc:
                details = self._diagnostics()
                self._halt(timeout=5)
                if isinstance(exc, LinuxGuestError):
                    raise LinuxGuestError(f"{exc}\n{details}") from None
                raise
            _running_guests.add(self)
            log.info("linux guest %s (%s) up: ssh root@127.0.0.1 -p %s", self.vm_name, self.hostname, self._port)

    def stop(self) -> None:
        """Halt the container (SIGRTMIN+3 to its systemd), wait, kill if needed."""
        with self._lifecycle:
            self._halt(timeout=STOP_TIMEOUT)
            _running_guests.discard(self)

    def offers_changed(self, offered: frozenset[str]) -> None:
        """The ICs the host offers now: their VMBus devices and /dev/vmbus nodes follow at once."""
        unknown = set(offered) - set(IC_DEVICES)
        if unknown:
            raise ValueError(f"unknown integration service keys: {sorted(unknown)}; known: {sorted(IC_DEVICES)}")
        with self._state:
            before, self._offered = self._offered, frozenset(offered)
            if not self._tree_live:
                return  # applied when the guest starts
            for key in sorted(before - self._offered):
                self._remove_device(IC_DEVICES[key])
            for key in sorted(self._offered - before):
                self._add_device(IC_DEVICES[key])

    # -- the guest half of Key-Value Pair Exchange (hyperv_host.KvpGuest), through the real daemon --
    def _kvp_read(self, pool_reader: Callable[..., Any]) -> tuple[dict[str, str] | None, str | None]:
        from .kvp_channel import KvpError

        try:
            found = pool_reader(timeout=KVP_CALL_TIMEOUT)
        except KvpError as exc:  # KvpNotAnswering, KvpNotOffered: no daemon answered
            log.info("%s: KVP read: %s", self.vm_name, exc)
            return None, KVP_GUEST_NOT_ANSWERING
        if not found.complete:
            return None, KVP_GUEST_NOT_ANSWERING
        return found.as_dict(), None

    def kvp_guest_items(self) -> tuple[dict[str, str] | None, str | None]:
        """GuestExchangeItems: pool 1 as the real hv_kvp_daemon enumerates it to the host."""
        return self._kvp_read(self.kvp.guest_items)

    def kvp_intrinsic_items(self) -> tuple[dict[str, str] | None, str | None]:
        """GuestIntrinsicExchangeItems: the daemon's answers for the AUTO pool."""
        return self._kvp_read(self.kvp.intrinsic_items)

    def kvp_host_items_changed(self, items: dict[str, str]) -> None:
        """Pool 0 becomes `items`: the daemon's own pool is enumerated, then SET for what is new or changed
        and DELETE for what went, as the host's KVP messages reach it. A failure is the guest's business
        (the host's write happened): it is logged, and the next change reconciles again."""
        from .kvp_channel import KVP_POOL_EXTERNAL, KvpError

        try:
            now = self.kvp.enumerate_pool(KVP_POOL_EXTERNAL, timeout=KVP_CALL_TIMEOUT).as_dict()
            for key in [k for k in now if k not in items]:
                self.kvp.delete_item(key, timeout=KVP_CALL_TIMEOUT)
            for key, value in items.items():
                if now.get(key) != value:
                    self.kvp.set_item(key, value, timeout=KVP_CALL_TIMEOUT)
        except KvpError as exc:
            log.info("%s: KVP host items not delivered: %s", self.vm_name, exc)

    def ic_status(self, key: str) -> tuple[str | None, str | None]:
        """The guest's share of an enabled IC's status (host statuses as enum names)."""
        if key not in IC_DEVICES:
            raise ValueError(f"unknown integration service key {key!r}")
        if not self._running():
            return ("LostCommunication" if self._up else "NoContact"), None
        device = IC_DEVICES[key]
        if device.unit is None:
            return "Ok", ("Ok" if key == "heartbeat" else None)
        channel = self._channels.get(device.node or "")
        if channel is not None:  # the real daemon: what the device's kernel side saw
            if channel.registered:
                return "Ok", None
            return ("LostCommunication" if channel.ever_registered else "NoContact"), None
        state = self._daemon_file_state(device.unit)
        if state == "active":
            return "Ok", None
        if (self.status_dir / "daemons" / f"{device.unit}.ever-active").exists():
            return "LostCommunication", None
        return "NoContact", None

    def receive_file(
        self, data: bytes, destination: str, *, overwrite: bool, create_path: bool, source_name: str = ""
    ) -> int:
        """Guest Service Interface's copy of one file, as the host sends it (FcopyChannel.copy_file): the
        status the real hv_fcopy_daemon answered. FcopyError when no daemon answers. The host splits the
        destination itself (the lab: at its last /), so source_name is not used here."""
        return self.fcopy.copy_file(data, destination, overwrite=overwrite, create_path=create_path).status

    def heartbeat(self) -> str:
        if self._running():
            return "OkApplicationsHealthy"
        return "LostCommunication" if self._up else "NoContact"

    def inventory_vars(self) -> dict[str, Any] | None:
        """Ansible connection variables for this guest (its port is chosen on first use)."""
        with self._lifecycle:
            if self._key is None:
                self._key = lab_ssh_key(self.lab_dir)
            if self._port is None:
                self._port = _free_port()
            return {
                "ansible_connection": "ssh",
                "ansible_host": "127.0.0.1",
                "ansible_port": self._port,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self._key),
                "ansible_ssh_common_args": SSH_COMMON_ARGS,
                "ansible_python_interpreter": "/usr/bin/python3",
            }

    def snapshot(self) -> dict[str, Any]:
        running = self._running()
        units = [d.unit for d in IC_DEVICES.values() if d.unit]
        daemons = {unit: "inactive" for unit in units}
        if running:
            result = self._nsenter(["systemctl", "show", "-p", "Id", "-p", "ActiveState", *units], timeout=3)
            shown = {}
            if result is not None and result.returncode == 0:
                for block in result.stdout.strip().split("\n\n"):
                    props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
                    if "Id" in props:
                        shown[props["Id"]] = props.get("ActiveState", "unknown")
            for unit in units:
                daemons[unit] = shown.get(unit) or self._daemon_file_state(unit)
        return {
            "container": "running" if running else "stopped",
            "offered": sorted(self._offered),
            "daemons": daemons,
            "hostname": self.hostname,
            "ssh_port": self._port,
            "machine": self.machine,
        }

    # -- guest commands -------------------------------------------------------------------------
    def run_in_guest(self, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Run a command inside the running container (nsenter), for the lab's own checks."""
        result = self._nsenter(argv, timeout=timeout)
        if result is None:
            raise LinuxGuestError(f"guest {self.vm_name!r} is not running")
        return result

    def _nsenter(self, argv: list[str], timeout: float = 5) -> subprocess.CompletedProcess[str] | None:
        leader = self._leader
        if leader is None or _proc_stat(leader[0]) is None:
            return None
        try:
            return subprocess.run(
                ["nsenter", "-t", str(leader[0]), "-a", "--", *argv],
                env=GUEST_ENV,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout} s")

    # -- image and disk -------------------------------------------------------------------------
    def _take_image(self) -> Path:
        """Build or reuse the image, then hold it (shared lock) so that no rebuild deletes it."""
        log.info("checking the Linux guest image (%s); a first build takes about a minute", IMAGE_DIR)
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT), str(IMAGE_DIR)], capture_output=True, text=True, check=False
        )
        for line in (result.stdout + result.stderr).splitlines():
            log.info("%s", line)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
            raise LinuxGuestError(f"building the Linux guest image failed ({BUILD_SCRIPT}):\n{tail}")
        build_lock = os.open(IMAGE_DIR / ".build.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(build_lock, fcntl.LOCK_SH)
            image_hash = (IMAGE_DIR / "stamp").read_text(encoding="utf-8").strip()
            rootfs = IMAGE_DIR / f"rootfs-{image_hash}"
            lock = os.open(f"{rootfs}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(lock, fcntl.LOCK_SH)
        finally:
            os.close(build_lock)
        if not (rootfs / "usr" / "lib" / "os-release").exists():
            os.close(lock)
            raise LinuxGuestError(f"the Linux guest image {rootfs} is incomplete: remove {IMAGE_DIR} and retry")
        for path in (rootfs, self.dir):
            if any(ch in str(path) for ch in ",:\\\n"):
                os.close(lock)
                raise LinuxGuestError(f"path {path} contains one of , : \\ (overlay mount options cannot hold them)")
        self._image_lock = lock
        return rootfs

    def _prepare_disk(self, rootfs: Path) -> None:
        """The guest's writable layer: new for this object (or a new image), kept across restarts."""
        disk = self.dir / "disk"
        if self._disk_image == rootfs.name and (disk / "upper").is_dir():
            return
        shutil.rmtree(disk, ignore_errors=True)
        upper = disk / "upper"
        (disk / "work").mkdir(parents=True)
        upper.mkdir()
        if self._key is None:
            self._key = lab_ssh_key(self.lab_dir)

        def mkdirs(relative: str) -> Path:
            # Directories of the upper layer take the lower layer's mode, as a copy-up would.
            path = upper
            for part in Path(relative).parts:
                path = path / part
                lower = rootfs / path.relative_to(upper)
                if not path.exists():
                    path.mkdir()
                    path.chmod(stat.S_IMODE(lower.stat().st_mode) if lower.is_dir() else 0o755)
            return path

        mkdirs("etc")
        _write(upper / "etc" / "hostname", self.hostname + "\n")
        hosts = (rootfs / "etc" / "hosts").read_text(encoding="utf-8")
        _write(upper / "etc" / "hosts", hosts + f"127.0.1.1\t{self.hostname}\n")
        _write(upper / "etc" / "machine-id", uuid.uuid4().hex + "\n", 0o444)
        ssh_dir = mkdirs("root/.ssh")
        ssh_dir.chmod(0o700)
        _write(ssh_dir / "authorized_keys", self._key.with_suffix(".pub").read_text(encoding="utf-8"), 0o600)
        mkdirs(str(Path(LISTEN_CONF).parent))
        self._disk_image = rootfs.name

    def _choose_port(self) -> None:
        if self._port is None or not _port_free(self._port):
            self._port = _free_port()
        self._write_listen(self.dir / "disk" / "upper" / LISTEN_CONF)

    def _write_listen(self, path: Path) -> None:
        _write(path, f"# written by the lab (hvlab/linux_guest.py)\nListenAddress 127.0.0.1:{self._port}\n")

    # -- the fake kernel side (host directories bound into the guest) ---------------------------
    def _build_runtime(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        (self.run_dir / "bus-skel" / "vmbus").mkdir(parents=True)  # mount point over the real /sys/bus
        (self.run_dir / "module-upper").mkdir()
        (self.run_dir / "staging").mkdir()
        self.dev_dir.mkdir()
        (self.status_dir / "daemons").mkdir(parents=True)
        (self.vmbus_dir / "devices").mkdir(parents=True)
        _write(self.vmbus_dir / "drivers_autoprobe", "1\n")
        skel = self.run_dir / "module-skel"
        for module, uses in LOADED_MODULES.items():
            directory = skel / module
            (directory / "holders").mkdir(parents=True)
            users = [m for m, deps in LOADED_MODULES.items() if module in deps]
            _write(directory / "initstate", "live\n")
            _write(directory / "refcnt", f"{len(users)}\n")
            for user in users:
                (directory / "holders" / user).symlink_to(f"../../{user}")
            if uses:  # a VMBus driver module
                driver = self.vmbus_dir / "drivers" / module
                driver.mkdir(parents=True)
                (driver / "module").symlink_to(f"../../../../module/{module}")
                _write(driver / "uevent", f"DRIVER={module}\n")
                (directory / "drivers").mkdir()
                (directory / "drivers" / f"vmbus:{module}").symlink_to(f"../../../bus/vmbus/drivers/{module}")
        _write(self.status_dir / MODULE_TABLE, self._module_table(), 0o444)
        for channel in self._channels.values():
            channel.withdraw()
            channel.new_boot()
        for device in OTHER_DEVICES:
            self._add_device(device)
        for key in sorted(self._offered):
            self._add_device(IC_DEVICES[key])
        self._tree_live = True

    @staticmethod
    def _module_table() -> str:
        """/proc/modules at boot: name size refcount holders state address, newest first (the
        address is what a process without CAP_SYSLOG sees)."""
        lines = []
        for module in reversed(LOADED_MODULES):
            users = sorted(m for m, deps in LOADED_MODULES.items() if module in deps)
            used_by = "".join(user + "," for user in users) or "-"
            lines.append(f"{module} {MODULE_SIZES[module]} {len(users)} {used_by} Live 0x0000000000000000\n")
        return "".join(lines)

    def _driver(self, device: VmbusDevice) -> str | None:
        if self.fcopy_uio and device.key == "guest_service_interface":
            return None  # >= 6.10: uio_hv_generic binds it only when told to (new_id)
        return device.driver

    def _node(self, device: VmbusDevice) -> str | None:
        if self.fcopy_uio and device.key == "guest_service_interface":
            return None  # the in-kernel fcopy driver and its node are gone in 6.10
        return device.node

    def _add_device(self, device: VmbusDevice) -> None:
        instance = _instance_guid(self.vm_id, device.key)
        target = self.vmbus_dir / "devices" / instance
        if target.exists():
            return
        driver = self._driver(device)
        staged = self.run_dir / "staging" / instance
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        _write(staged / "class_id", "{%s}\n" % device.class_guid, 0o444)
        _write(staged / "device_id", "{%s}\n" % instance, 0o444)
        _write(staged / "modalias", _modalias(device.class_guid) + "\n", 0o444)
        uevent = (f"DRIVER={driver}\n" if driver else "") + f"MODALIAS={_modalias(device.class_guid)}\n"
        _write(staged / "uevent", uevent)
        if driver:
            # Relative to the real device path; from /sys/bus/vmbus/devices/<id> it reaches the same place.
            (staged / "driver").symlink_to(f"../../../../bus/vmbus/drivers/{driver}")
        staged.rename(target)  # appears whole
        if driver:
            link = self.vmbus_dir / "drivers" / driver / instance
            if not link.is_symlink():
                link.symlink_to(f"../../devices/{instance}")
        node = self._node(device)
        if node in self._channels:
            self._channels[node].offer()  # the kernel side exists before its node appears
        if node:
            self._make_node(node)

    def _remove_device(self, device: VmbusDevice) -> None:
        instance = _instance_guid(self.vm_id, device.key)
        node = self._node(device)
        if node:
            (self.dev_dir / node).unlink(missing_ok=True)
        if node in self._channels:
            self._channels[node].withdraw()  # the service's deinit: the daemon's read fails, its reopen finds no node
        driver = self._driver(device)
        if driver:
            (self.vmbus_dir / "drivers" / driver / instance).unlink(missing_ok=True)
        target = self.vmbus_dir / "devices" / instance
        if target.exists():
            gone = self.run_dir / "staging" / f"{instance}.gone-{time.monotonic_ns()}"
            target.rename(gone)  # disappears whole
            shutil.rmtree(gone, ignore_errors=True)

    def _make_node(self, name: str) -> None:
        """A character device node (misc major, a minor no driver answers); a plain file if the
        minor is in use on this host or mknod is not allowed."""
        staged = self.run_dir / "staging" / f".{name}"
        staged.unlink(missing_ok=True)
        minor = NODE_MINORS[name]
        in_use = False
        with contextlib.suppress(OSError):
            in_use = any(line.split()[0] == str(minor) for line in Path("/proc/misc").read_text().splitlines())
        try:
            if in_use:
                raise PermissionError("misc minor in use")
            os.mknod(staged, 0o600 | stat.S_IFCHR, os.makedev(MISC_MAJOR, minor))
        except OSError:
            _write(staged, "", 0o600)
        staged.rename(self.dev_dir / name)

    def _daemon_file_state(self, unit: str) -> str:
        try:
            return (self.status_dir / "daemons" / unit).read_text(encoding="utf-8").strip() or "inactive"
        except OSError:
            return "inactive"

    # -- the container --------------------------------------------------------------------------
    def _launch(self, rootfs: Path) -> None:
        upper, work = self.dir / "disk" / "upper", self.dir / "disk" / "work"
        merged = self.dir / "root"
        merged.mkdir(exist_ok=True)
        machine_id = ""
        with contextlib.suppress(OSError, ValueError):
            machine_id = str(uuid.UUID((upper / "etc" / "machine-id").read_text(encoding="utf-8").strip()))
        nspawn = [
            "systemd-nspawn",
            "--directory",
            str(merged),
            f"--machine={self.machine}",
            *([f"--uuid={machine_id}"] if machine_id else []),  # else nspawn invents another one
            "--register=no",
            "--keep-unit",
            "--console=pipe",
            "--kill-signal=SIGRTMIN+3",
            "--link-journal=no",
            # The real buses stay; vmbus (a host directory the lab changes live) is bound over them.
            f"--overlay-ro=/sys/bus:{_nspawn_path(self.run_dir / 'bus-skel')}:/sys/bus",
            f"--bind-ro={_nspawn_path(self.vmbus_dir)}:/sys/bus/vmbus",
            # The real modules plus the Hyper-V ones; writable so that the modprobe stand-in works.
            "--overlay=/sys/module:{}:{}:/sys/module".format(
                _nspawn_path(self.run_dir / "module-skel"), _nspawn_path(self.run_dir / "module-upper")
            ),
            f"--bind={_nspawn_path(self.dev_dir)}:/dev/vmbus",
            f"--bind={_nspawn_path(self.status_dir)}:/run/hvlab",
            "--",
            "/lib/systemd/systemd",
        ]
        options = f"lowerdir={rootfs},upperdir={upper},workdir={work}"
        read_end, write_end = os.pipe()
        self._lifeline = write_end
        assert self._image_lock is not None
        with open(self.console_log, "ab") as console:
            console.write(f"\n==== hvlab: booting {self.vm_name!r} as {self.machine} ====\n".encode())
            console.flush()
            self._proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    sys.executable,
                    "-I",
                    str(Path(__file__).resolve()),
                    "supervise",
                    str(read_end),
                    options,
                    str(merged),
                    "--",
                    *nspawn,
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                pass_fds=(read_end, self._image_lock),
                start_new_session=True,
                env=GUEST_ENV,
            )
        os.close(read_end)
        self._up = False

    def _wait_ready(self, deadline: float) -> None:
        while self._leader is None:
            self._check_alive()
            self._leader = self._find_leader()
            if self._leader is None:
                if time.monotonic() > deadline:
                    raise LinuxGuestError("the container's systemd did not appear")
                time.sleep(0.05)
        state = ""
        while True:
            self._check_alive()
            result = self._nsenter(["systemctl", "is-system-running"], timeout=5)
            state = result.stdout.strip() if result is not None else ""
            if state in ("running", "degraded"):
                break
            if state in ("maintenance", "stopping"):
                raise LinuxGuestError(f"the guest's systemd is {state!r}")
            if time.monotonic() > deadline:
                raise LinuxGuestError(f"the guest did not finish booting (systemctl is-system-running: {state!r})")
            time.sleep(0.1)
        attempts = 0
        while not _ssh_banner(self._port or 0):
            self._check_alive()
            failed = self._nsenter(["systemctl", "is-failed", "--quiet", "ssh.service"], timeout=5)
            if failed is not None and failed.returncode == 0 and attempts < 3:
                attempts += 1  # most likely someone took the port since we chose it: choose again
                self._port = _free_port()
                conf = f"ListenAddress 127.0.0.1:{self._port}\n"
                self._nsenter(["sh", "-c", f'printf "%s" "{conf}" > /{LISTEN_CONF}'], timeout=5)
                self._nsenter(["systemctl", "reset-failed", "ssh.service"], timeout=5)
                self._nsenter(["systemctl", "restart", "ssh.service"], timeout=15)
                continue
            if time.monotonic() > deadline:
                raise LinuxGuestError(f"sshd does not answer on 127.0.0.1:{self._port}")
            time.sleep(0.1)
        self._up = True

    def _check_alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            code = self._proc.returncode if self._proc else None
            raise LinuxGuestError(f"the container exited during boot (exit status {code})")

    def _nspawn_pid(self) -> int | None:
        if self._proc is None:
            return None
        for pid in _children(self._proc.pid):
            if _comm(pid) == "systemd-nspawn":
                return pid
        return None

    def _find_leader(self) -> tuple[int, int] | None:
        nspawn = self._nspawn_pid()
        if nspawn is None:
            return None
        for pid in _children(nspawn):
            info = _proc_stat(pid)
            if info and _comm(pid) == "systemd":
                return pid, info[1]
        return None

    def _leader_alive(self) -> bool:
        if self._leader is None:
            return False
        info = _proc_stat(self._leader[0])
        return info is not None and info[1] == self._leader[1]

    def _running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None and self._leader_alive()

    def _halt(self, timeout: float) -> None:
        """Halt, wait, kill what is left; release everything this boot held."""
        proc = self._proc
        with self._state:
            self._tree_live = False
        if proc is not None:
            if self._leader is None:
                self._leader = self._find_leader()
            if proc.poll() is None and self._leader_alive():
                assert self._leader is not None
                os.kill(self._leader[0], HALT_SIGNAL)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("linux guest %s did not halt within %s s: killing it", self.vm_name, timeout)
                if self._leader_alive():
                    assert self._leader is not None
                    os.kill(self._leader[0], signal.SIGKILL)  # ends the container's pid namespace
                nspawn = self._nspawn_pid()
                if nspawn:
                    os.kill(nspawn, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
            deadline = time.monotonic() + 5
            while self._leader_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        for channel in self._channels.values():
            channel.withdraw()  # after the halt: the daemons are gone with their guest
        self._reap()
        self._up = False

    def _reap(self) -> None:
        for fd in (self._lifeline, self._image_lock):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._lifeline = self._image_lock = None
        self._proc = None
        self._leader = None
        with contextlib.suppress(OSError):
            (Path("/run/systemd/nspawn/propagate") / self.machine).rmdir()

    def _diagnostics(self) -> str:
        parts = []
        try:
            lines = self.console_log.read_text(encoding="utf-8", errors="replace").splitlines()
            parts.append(f"console ({self.console_log}), last lines:\n" + "\n".join(lines[-30:]))
        except OSError:
            pass
        for argv in (
            ["systemctl", "--failed", "--no-pager", "--plain"],
            ["journalctl", "-b", "--no-pager", "-q", "-n", "40"],
        ):
            result = self._nsenter(argv, timeout=5)
            if result is not None:
                parts.append(f"{' '.join(argv)}:\n{result.stdout}{result.stderr}")
        return "\n".join(parts)


# -- supervisor: runs as `unshare --mount ... python linux_guest.py supervise ...` -----------------
def _supervise(argv: list[str]) -> int:
    """Mount the guest's root overlay in this (private) mount namespace, run systemd-nspawn, and
    halt the guest if the lab process goes away (the lifeline pipe reaches end of file), however
    it ended. When this process ends, the namespace and with it every mount of the guest go."""
    lifeline, options, merged = int(argv[0]), argv[1], argv[2]
    command = argv[argv.index("--") + 1 :]
    mount = subprocess.run(["mount", "-t", "overlay", "hvlab-guest", "-o", options, merged], check=False)
    if mount.returncode != 0:
        print(f"hvlab supervisor: mounting the root overlay failed ({options})", file=sys.stderr)
        return 125
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watching = True
    while child.poll() is None:
        if not watching:
            time.sleep(0.2)
            continue
        ready, _w, _x = select.select([lifeline], [], [], 0.5)
        if ready and not os.read(lifeline, 64):
            print("hvlab supervisor: the lab process is gone, halting the guest", file=sys.stderr)
            child.send_signal(signal.SIGTERM)  # nspawn passes it on as SIGRTMIN+3 (--kill-signal)
            watching = False
            try:
                child.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                for pid in _children(child.pid):
                    os.kill(pid, signal.SIGKILL)
                child.kill()
    # nspawn leaves this directory behind when /run is not a tmpfs ("we can't allow that").
    for arg in command:
        if arg.startswith("--machine="):
            with contextlib.suppress(OSError):
                (Path("/run/systemd/nspawn/propagate") / arg.split("=", 1)[1]).rmdir()
    return child.returncode


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "supervise":
        sys.exit(_supervise(sys.argv[2:]))
    sys.exit("usage: linux_guest.py supervise LIFELINE_FD OVERLAY_OPTIONS MOUNT_POINT -- COMMAND...")
