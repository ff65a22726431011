# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Linux guest sees of Hyper-V integration services: one probe of its VMBus devices, kernel
modules, daemons and time source. Internal to this collection: not a public API.

Facts (docs/dev/hyperv-facts.md section 3): a VMBus device with an IC's class GUID exists only while the host
offers that IC; heartbeat, shutdown and time synchronization live in the kernel driver hv_utils; KVP,
VSS and fcopy also need a user-space daemon whose unit name differs by distribution, and several of
those units are static (started by udev when the device appears). Everything here is detected at
run time, never guessed from the distribution's name alone.

``root`` prefixes every path, so unit tests can probe fixture trees; ``run`` runs a command.
"""

from __future__ import annotations

import os
import re
import typing as t
from dataclasses import dataclass, field

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import (
    CATALOG,
    LINUX_DAEMONS,
    UIO_DRIVER,
    daemon_units,
    needs_uio,
)

# typing aliases, not list[str]: this line runs on the target, which may have Python 3.8.
Runner = t.Callable[[t.List[str]], t.Tuple[int, str, str]]  # noqa: UP006

VMBUS_DEVICES = "/sys/bus/vmbus/devices"
HV_SOCK = "hv_sock"
# Where this collection has hv_sock loaded at boot: modules-load.d(5), read by systemd-modules-load.
HV_SOCK_LOAD_FILE = "/etc/modules-load.d/hv_sock.conf"
SYS_MODULE = "/sys/module"
UNIT_FILE_ACTIVATION = {
    "enabled": "enabled",
    "enabled-runtime": "enabled",
    "static": "udev",  # no [Install] section: started by udev when the host offers the device
    "indirect": "udev",
    "disabled": "manual",
    "masked": "masked",
}


class GuestStateError(Exception):
    """The wish cannot be met, or the guest cannot be read; the message names the IC and says what to do."""


@dataclass
class Unit:
    name: str
    active_state: str  # active, inactive, failed, activating, ...
    unit_file_state: str  # enabled, disabled, static, masked, ...
    masked: bool = False

    @property
    def active(self) -> bool:
        # "activating" is left out: a unit that crash-loops sits in activating/auto-restart.
        return self.active_state in ("active", "reloading")

    @property
    def can_enable(self) -> bool:
        return self.unit_file_state in ("enabled", "enabled-runtime", "disabled")

    @property
    def enabled(self) -> bool:
        return self.unit_file_state in ("enabled", "enabled-runtime")


@dataclass
class IcProbe:
    key: str
    provider: str  # kernel | daemon
    offered: bool
    device: str | None  # VMBus instance GUID of the IC's device
    driver: str | None  # driver bound to that device
    daemon: Unit | None = None
    daemon_candidates: tuple[str, ...] = ()
    needs_uio: bool = False  # fcopy on Linux >= 6.10

    def as_dict(self) -> dict[str, t.Any]:
        daemon = None
        if self.provider == "daemon":
            daemon = {
                "installed": self.daemon is not None,
                "unit": self.daemon.name if self.daemon else None,
                "active": bool(self.daemon and self.daemon.active),
                "active_state": self.daemon.active_state if self.daemon else None,
                "unit_file_state": self.daemon.unit_file_state if self.daemon else None,
                "activation": UNIT_FILE_ACTIVATION.get(self.daemon.unit_file_state, self.daemon.unit_file_state)
                if self.daemon
                else None,
            }
        return {
            "key": self.key,
            "provider": self.provider,
            "offered": self.offered,
            "device": self.device,
            "driver": self.driver,
            "driver_bound": self.driver is not None,
            "daemon": daemon,
        }


@dataclass
class GuestProbe:
    hyperv_guest: bool
    kernel: str
    os_family: str
    modules: dict[str, bool]
    services: dict[str, IcProbe] = field(default_factory=dict)
    ptp_hyperv: bool = False
    modules_at_boot: dict[str, bool] = field(default_factory=dict)
    modules_builtin: list[str] = field(default_factory=list)
    boot_sources: dict[str, list[str]] = field(default_factory=dict)  # module -> files loading it at boot

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "hyperv_guest": self.hyperv_guest,
            "kernel": self.kernel,
            "os_family": self.os_family,
            "modules": self.modules,
            "modules_at_boot": self.modules_at_boot,
            "modules_builtin": self.modules_builtin,
            "time_source": {"ptp_hyperv": self.ptp_hyperv},
            "integration_services": [self.services[ic.key].as_dict() for ic in CATALOG if ic.key in self.services],
        }


def _path(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def kernel_tuple(release: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def os_family(root: str) -> str:
    """debian, ubuntu, redhat, suse, archlinux or the os-release ID, from /etc/os-release."""
    fields: dict[str, str] = {}
    for line in (_read(_path(root, "/etc/os-release")) or "").splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip()] = value.strip().strip('"')
    words = [fields.get("ID", ""), *fields.get("ID_LIKE", "").split()]
    for word in words:
        if word == "ubuntu":
            return "ubuntu"
    for word in words:
        if word in ("debian",):
            return "debian"
        if word in ("rhel", "fedora", "centos", "azurelinux", "mariner"):
            return "redhat"
        if word.startswith(("suse", "opensuse", "sles")):
            return "suse"
        if word == "arch":
            return "archlinux"
    return words[0] or "unknown"


# Where systemd-modules-load and Debian's /etc/modules name modules to load at boot (modules-load.d(5)).
MODULES_LOAD_DIRS = (
    "/etc/modules-load.d",
    "/run/modules-load.d",
    "/usr/local/lib/modules-load.d",
    "/usr/lib/modules-load.d",
    "/lib/modules-load.d",
)


def module_boot_sources(root: str, names: t.Sequence[str]) -> dict[str, list[str]]:
    """For each module name, the files (guest paths) that have it loaded at boot."""
    files = ["/etc/modules"]
    for folder in MODULES_LOAD_DIRS:
        try:
            files.extend("%s/%s" % (folder, n) for n in sorted(os.listdir(_path(root, folder))) if n.endswith(".conf"))
        except OSError:
            continue
    found: dict[str, list[str]] = {name: [] for name in names}
    for path in files:
        for line in (_read(_path(root, path)) or "").splitlines():
            word = line.split("#", 1)[0].strip()
            if word and not word.startswith(";"):
                module = word.split()[0].replace("-", "_")
                if module in found and path not in found[module]:
                    found[module].append(path)
    return found


def builtin_modules(root: str, release: str) -> set[str]:
    """Modules built into the running kernel (modules.builtin, as kmod reads it)."""
    for folder in ("/lib/modules", "/usr/lib/modules"):
        text = _read(_path(root, "%s/%s/modules.builtin" % (folder, release)))
        if text is not None:
            return {
                os.path.basename(line.strip())[: -len(".ko")].replace("-", "_")
                for line in text.splitlines()
                if line.strip().endswith(".ko")
            }
    return set()


def vmbus_devices(root: str) -> dict[str, list[tuple[str, str | None]]]:
    """class GUID (lower case) -> [(instance GUID, bound driver or None)]."""
    found: dict[str, list[tuple[str, str | None]]] = {}
    base = _path(root, VMBUS_DEVICES)
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return found
    for name in names:
        class_id = _read(os.path.join(base, name, "class_id"))
        if not class_id:
            continue
        driver_link = os.path.join(base, name, "driver")
        driver = os.path.basename(os.readlink(driver_link)) if os.path.islink(driver_link) else None
        found.setdefault(class_id.strip("{}").lower(), []).append((name, driver))
    return found


def systemd_units(run: Runner, names: t.Sequence[str]) -> dict[str, Unit]:
    """The units among ``names`` that systemd knows, keyed by the name asked for (one systemctl call).

    ``systemctl show`` prints one block per name, in order, even for unknown ones; pairing blocks with
    names by position keeps aliases working (Id would be the unit's primary name).
    """
    if not names:
        return {}
    rc, out, err = run(["systemctl", "show", "--property=Id,LoadState,ActiveState,UnitFileState", "--", *names])
    if rc != 0:
        raise GuestStateError(
            "cannot ask systemd about the Hyper-V daemons (systemctl show failed: %s); this module needs "
            "systemd" % (err or out).strip()
        )
    units: dict[str, Unit] = {}
    for name, block in zip(names, out.strip().split("\n\n")):  # noqa: B905 - strict= needs Python 3.10
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        load = props.get("LoadState")
        if load in ("loaded", "masked"):
            units[name] = Unit(
                name, props.get("ActiveState", ""), props.get("UnitFileState", ""), masked=load == "masked"
            )
    return units


def _pick_unit(units: dict[str, Unit], candidates: t.Sequence[str]) -> Unit | None:
    """The first candidate systemd knows."""
    return next((units[name] for name in candidates if name in units), None)


def probe(root: str, run: Runner, release: str) -> GuestProbe:
    """Everything the guest sees, in one pass: VMBus devices, modules, daemons, time source."""
    hyperv_guest = os.path.isdir(_path(root, VMBUS_DEVICES))
    builtin = builtin_modules(root, release)
    # A built-in module has no /sys/module entry unless it has parameters: modules.builtin says it is there.
    modules = {
        name: name in builtin or os.path.isdir(_path(root, "%s/%s" % (SYS_MODULE, name)))
        for name in ("hv_vmbus", "hv_utils", HV_SOCK, UIO_DRIVER)
    }
    boot_sources = module_boot_sources(root, (HV_SOCK,))
    result = GuestProbe(
        hyperv_guest=hyperv_guest,
        kernel=release,
        os_family=os_family(root),
        modules=modules,
        ptp_hyperv=os.path.exists(_path(root, "/dev/ptp_hyperv")),
        # hv_sock (Hyper-V sockets) must be loaded now and at boot for AF_VSOCK over VMBus
        # (docs/dev/hyperv-facts.md section 3).
        modules_at_boot={name: bool(paths) for name, paths in boot_sources.items()},
        modules_builtin=sorted(name for name in modules if name in builtin),
        boot_sources=boot_sources,
    )
    devices = vmbus_devices(root)
    candidates: list[str] = []
    for daemon in LINUX_DAEMONS.values():
        candidates.extend(name for name in daemon.units + daemon.uio_units if name not in candidates)
    units = systemd_units(run, candidates) if hyperv_guest else {}
    kernel = kernel_tuple(release)
    for ic in CATALOG:
        instances = devices.get(ic.vmbus_class_guid, [])
        device, driver = instances[0] if instances else (None, None)
        ic_probe = IcProbe(
            key=ic.key,
            provider=ic.linux_provider,
            offered=bool(instances),
            device=device,
            driver=driver,
            needs_uio=needs_uio(ic.key, kernel, driver),
        )
        if ic.key in LINUX_DAEMONS:
            ic_probe.daemon_candidates = daemon_units(ic.key, ic_probe.needs_uio or driver == UIO_DRIVER)
            ic_probe.daemon = _pick_unit(units, ic_probe.daemon_candidates)
        result.services[ic.key] = ic_probe
    return result
