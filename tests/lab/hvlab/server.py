"""The lab process started (detached) by `lab up`: builds the model from the LABFILE, serves the
WinRM endpoints (the host's and one per Windows guest) and the control endpoint, starts the guest
doubles, writes DIR/inventory.yml and DIR/lab.json (the readiness signal `lab up` waits for), and
runs until `lab down` asks it to stop."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from . import control, labfile, wsman
from .counters import Counters, total
from .faults import FaultSet
from .host_files import DotNetError, HostFiles, HostPathUnsupported
from .hyperv_host import GuestSide, HyperVHost, VirtualMachine, VmSpec
from .hyperv_ops import HostOperations
from .protocol import Dispatcher
from .ssh_gateway import SshGateway
from .windows_guest import GuestOperations, WindowsGuest

log = logging.getLogger("hvlab")
INFO_FILE = "lab.json"
CREDENTIALS_FILE = "credentials.json"
INVENTORY_FILE = "inventory.yml"
WINDOWS_GUEST_FILES_DIR = "windows-guest-files"  # under the lab dir: each Windows guest double's disk, by VM id
HOST_FILES_DIR = "host-files"  # under the lab dir: the Hyper-V host's file system (made again at each start)
# A VM name that is a good ansible host name is used as is; others become guest-<id prefix>.
INVENTORY_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
LinuxGuestFactory = Callable[[str, str, Path], GuestSide]
AUTO: Any = object()  # Lab(linux_guest=AUTO): use hvlab.linux_guest.LinuxGuest when it imports


def load_linux_guest() -> LinuxGuestFactory:
    """hvlab.linux_guest.LinuxGuest(vm_name, vm_id, lab_dir). Imported when a lab needs Linux guests;
    a broken module fails the lab loudly instead of leaving its Linux VMs silently static."""
    module = importlib.import_module(f"{__package__}.linux_guest")
    return module.LinuxGuest


def inventory_name(vm: VirtualMachine, taken: set[str]) -> str:
    """The VM name when it is a plain host name, else guest-<first 8 hex of the VM id>; a name
    already taken (the host's, an earlier guest's) falls back the same way, then to the whole id."""
    candidates = [f"guest-{vm.id[:8]}", f"guest-{vm.id}"]
    if INVENTORY_NAME_RE.fullmatch(vm.name):
        candidates.insert(0, vm.name)
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free inventory name for VM {vm.name!r} ({vm.id})")  # ids are unique


def _raise_fd_limit(needed: int) -> None:
    """One listening socket per Windows guest: make room for them (soft limit up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Lab:
    def __init__(
        self,
        spec: labfile.LabSpec,
        username: str,
        password: str,
        lab_dir: Path | None = None,
        linux_guest: LinuxGuestFactory | None = AUTO,
    ) -> None:
        """`lab_dir`: where guest doubles keep their files (DIR of `lab up`; a temporary directory,
        removed at stop, when None and one is needed). `linux_guest`: factory for Running Linux
        VMs; AUTO tries hvlab.linux_guest, None keeps every Linux VM static."""
        self.username = username
        self.password = password
        counters = Counters()
        self.host = HyperVHost(spec.host_name, spec.language, counters)
        vms = [(self.host.add_vm(vm_spec), vm_spec) for vm_spec in spec.vms]
        self.host.add_hvsocket_services(spec.hvsocket_services)
        self.host_faults = FaultSet(spec.faults)
        self._lab_dir = lab_dir
        self._temp_dir: Path | None = None
        self.host_files = HostFiles(self.guest_dir() / HOST_FILES_DIR, username)
        for index, seed in enumerate(spec.host_files):
            try:
                with self.host_files.open_create_seed(seed.path) as writer:
                    for chunk in seed.chunks():
                        writer.write(chunk)
            except (DotNetError, HostPathUnsupported) as exc:
                raise ValueError(f"host.files[{index}]: {seed.path!r}: {exc}") from exc
        self.host.files = self.host_files
        operations = HostOperations(self.host, self.host_faults)
        backend = Dispatcher(
            operations.table(),
            operations.before_call,
            where=f"the Hyper-V host {spec.host_name}",
            language_mode=operations.language_mode,
            host_files=self.host_files,
            counters=counters,
        )
        # Endpoints by inventory name: the host's, then one per Windows guest (own counters, no faults).
        self.endpoints: dict[str, wsman.Endpoint] = {
            spec.host_name: wsman.Endpoint(
                spec.host_name, "hyperv_host", backend, self.host_faults, counters, username, password
            ),
        }
        self.inventory_names: dict[str, str] = {}  # VM id -> inventory name, every VM with a guest
        self.listener: wsman.Listener | None = None
        self.connection = spec.connection
        self.ssh: SshGateway | None = None
        self._started: list[VirtualMachine] = []
        self._stopped = False
        factory = load_linux_guest() if linux_guest is AUTO else linux_guest
        taken = {spec.host_name}
        for vm, vm_spec in vms:
            if vm.guest_kind == "none":
                continue
            name = inventory_name(vm, taken)
            taken.add(name)
            self.inventory_names[vm.id] = name
            if vm.guest_kind == "windows":
                self._add_windows_guest(vm, vm_spec, name)
            elif vm.state == "Running" and factory is not None:
                vm.guest = factory(vm.name, vm.id, self.guest_dir())
        self.started = time.time()

    def _add_windows_guest(self, vm: VirtualMachine, vm_spec: VmSpec, name: str) -> None:
        counters = Counters()
        guest = WindowsGuest(
            vm.name,
            self.host.language,
            self.host.lock,
            counters,
            lambda: vm.state == "Running",
            vm_spec.guest_services,
            host_name=self.host.name,
        )
        # The guest's disk, for what Guest Service Interface copies into it (a Windows file system, as the host's).
        guest.files_root = self.guest_dir() / WINDOWS_GUEST_FILES_DIR / vm.id
        backend = Dispatcher(
            GuestOperations(guest).table(),
            where=f"the Windows guest {name} (VM {vm.name!r}; host operations go to {self.host.name})",
        )
        vm.guest = guest
        self.endpoints[name] = wsman.Endpoint(
            name,
            "windows_guest",
            backend,
            FaultSet(),
            counters,
            self.username,
            self.password,
            reachable=guest.is_running,
            vm_name=vm.name,
        )

    def guest_dir(self) -> Path:
        if self._lab_dir is None:
            self._temp_dir = self._temp_dir or Path(tempfile.mkdtemp(prefix="hvlab-"))
            return self._temp_dir
        return self._lab_dir

    def winrm_vars(self, port: int) -> dict[str, Any]:
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": port,
            "ansible_connection": "winrm",
            "ansible_winrm_transport": "basic",
            "ansible_winrm_scheme": "http",
            "ansible_user": self.username,
            "ansible_password": self.password,
            "ansible_shell_type": "powershell",
            "ansible_winrm_server_cert_validation": "ignore",
        }

    def psrp_vars(self, port: int) -> dict[str, Any]:
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": port,
            "ansible_connection": "psrp",
            "ansible_psrp_protocol": "http",
            "ansible_psrp_auth": "basic",
            "ansible_psrp_cert_validation": "ignore",
            "ansible_psrp_message_encryption": "never",  # Basic over http: pypsrp refuses to encrypt with it
            "ansible_user": self.username,
            "ansible_password": self.password,
            "ansible_shell_type": "powershell",
        }

    def connection_vars(self, name: str) -> dict[str, Any]:
        """How the inventory reaches endpoint `name` (host.connection: the host and its Windows guests)."""
        if self.connection == "ssh":
            assert self.ssh is not None
            return self.ssh.inventory_vars(name)
        port = self.endpoints[name].port
        return self.psrp_vars(port) if self.connection == "psrp" else self.winrm_vars(port)

    def start(self) -> None:
        """Serve every endpoint, start every guest double, then tell each guest what the host
        offers it. On failure, whatever was started is stopped again before the error goes on."""
        _raise_fd_limit(len(self.endpoints) + 1024)
        self.listener = wsman.Listener(list(self.endpoints.values()))
        self.listener.start()
        try:
            if self.connection == "ssh":
                self.ssh = SshGateway(self.guest_dir(), list(self.endpoints.values()))
                self.ssh.start()
            for vm in self.host.vms:
                if isinstance(vm.guest, WindowsGuest):
                    vm.guest.connection = self.connection_vars(self.inventory_names[vm.id])
            for vm in self.host.vms:
                self._started.append(vm)  # stopped again even if start() raises half-way
                vm.guest.start()
            self.host.flush_offers()  # once at start: every VM's offer is still undelivered
            self.host.flush_kvp()  # and the host items the LABFILE gives, to guests that run the IC
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.ssh is not None:
            self.ssh.stop()
        if self.listener is not None:
            self.listener.stop()
        self.host.close_offers()  # no offers_changed() once guests are being stopped
        for vm in reversed(self._started):
            try:
                vm.guest.stop()
            except Exception:  # stop the others anyway
                log.exception("guest of VM %r: stop() failed", vm.name)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def state(self) -> dict[str, Any]:
        model = self.host.snapshot()
        for vm in model["vms"].values():
            vm["inventory_name"] = self.inventory_names.get(vm["id"])
        endpoints = {name: ep.snapshot() for name, ep in self.endpoints.items()}
        for name, endpoint in endpoints.items():
            endpoint["connection"] = self.connection
            endpoint["ssh_port"] = self.ssh.ports.get(name) if self.ssh is not None else None
        host_ep = self.endpoints[self.host.name]
        return {
            "vms": model["vms"],
            "hvsocket_services": model["hvsocket_services"],
            "hvsocket_registry": model["hvsocket_registry"],
            "counters": total([ep["counters"] for ep in endpoints.values()]),
            "host": {
                "name": self.host.name,
                "language": self.host.language,
                "url": host_ep.url,
                "counters": host_ep.counters.snapshot(),
                "files": self.host_files.listing(),
            },
            "endpoints": endpoints,
            "lab": {"pid": os.getpid(), "started": self.started},
        }

    def inventory(self, username: str, password: str) -> dict[str, Any]:
        host_vars = self.connection_vars(self.host.name)
        if self.connection != "ssh":  # ssh logs in with the lab's key as the account the lab runs as
            host_vars.update(ansible_user=username, ansible_password=password)
        groups: dict[str, dict[str, Any]] = {"windows": {}, "linux": {}}
        for vm in self.host.vms:
            name = self.inventory_names.get(vm.id)
            if name is None:
                continue
            try:
                connection = vm.guest.inventory_vars()
            except Exception:
                log.exception("guest of VM %r: inventory_vars() failed; left out of the inventory", vm.name)
                connection = None
            if connection is not None:
                groups[vm.guest_kind][name] = {**connection, "hyperv_host": self.host.name, "hyperv_vm_name": vm.name}
        return {
            "all": {
                "children": {
                    "hyperv_hosts": {"hosts": {self.host.name: host_vars}},
                    "guests": {
                        "children": {
                            "windows_guests": {"hosts": groups["windows"]},
                            "linux_guests": {"hosts": groups["linux"]},
                        }
                    },
                }
            }
        }


def _write_private(path: Path, text: str) -> None:
    """Write atomically (readers never see half a file), readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def serve(labfile_path: str, directory: str, launch_id: str) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = Path(directory)
    try:
        spec = labfile.load(labfile_path)
    except labfile.LabfileError as exc:
        print(f"lab up: {exc}", file=sys.stderr, flush=True)
        return 2
    credentials = json.loads((root / CREDENTIALS_FILE).read_text(encoding="utf-8"))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        lab = Lab(spec, credentials["username"], credentials["password"], lab_dir=root)
        lab.start()  # stops what it started when it fails
    except Exception as exc:
        log.exception("the lab could not start")
        print(f"lab up: the lab could not start: {exc!r}", file=sys.stderr, flush=True)
        return 1
    try:
        return _run(lab, labfile_path, spec, root, credentials, launch_id, stop)
    finally:
        lab.stop()


def _run(
    lab: Lab,
    labfile_path: str,
    spec: labfile.LabSpec,
    root: Path,
    credentials: dict[str, str],
    launch_id: str,
    stop: threading.Event,
) -> int:
    token = secrets.token_hex(16)
    ctl = control.start(token, lab.state, stop.set)
    try:
        inventory = yaml.safe_dump(
            lab.inventory(credentials["username"], credentials["password"]), sort_keys=False, allow_unicode=True
        )
        _write_private(root / INVENTORY_FILE, "# Written by tests/lab/lab up; valid while this lab runs.\n" + inventory)
        info = {
            "launch_id": launch_id,
            "pid": os.getpid(),
            "labfile": str(Path(labfile_path).resolve()),
            "control_url": f"http://127.0.0.1:{ctl.server_address[1]}",
            "control_token": token,
            "endpoints": {name: ep.url for name, ep in lab.endpoints.items()},
            "inventory": str(root / INVENTORY_FILE),
        }
        _write_private(root / INFO_FILE, json.dumps(info, indent=2, ensure_ascii=False))
        log.info(
            "lab ready: host %s (%s, %d VMs, %d Windows guest endpoints) at %s",
            spec.host_name,
            spec.language,
            len(spec.vms),
            len(lab.endpoints) - 1,
            lab.endpoints[spec.host_name].url,
        )
        while not stop.wait(0.5):
            pass
        log.info("stopping")
    finally:
        ctl.shutdown()
        ctl.server_close()
    lab.stop()
    try:
        if json.loads((root / INFO_FILE).read_text(encoding="utf-8")).get("launch_id") == launch_id:
            (root / INFO_FILE).unlink()
    except (OSError, ValueError):
        pass
    log.info("stopped")
    return 0
