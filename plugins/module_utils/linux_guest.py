# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Linux guest sees of Hyper-V integration services, and how to change its half of them.

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
    FCOPY_UIO_KERNEL,
    LINUX_DAEMONS,
    UIO_DRIVER,
    by_key,
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
    """The wish cannot be met; the message names the IC and says what to do."""


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


def _pick_unit(units: dict[str, Unit], candidates: t.Sequence[str], uio: bool) -> Unit | None:
    """The first known candidate; for fcopy, the UIO daemon exactly when the device needs it."""
    ordered = (
        [name for name in candidates if ("uio" in name) == uio]
        if any("uio" in c for c in candidates)
        else list(candidates)
    )
    return next((units[name] for name in ordered if name in units), None)


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
    candidates = [unit for daemon in LINUX_DAEMONS.values() for unit in daemon.units]
    units = systemd_units(run, candidates) if hyperv_guest else {}
    uio_kernel = kernel_tuple(release) >= FCOPY_UIO_KERNEL
    for ic in CATALOG:
        instances = devices.get(ic.vmbus_class_guid, [])
        device, driver = instances[0] if instances else (None, None)
        ic_probe = IcProbe(
            key=ic.key,
            provider=ic.linux_provider,
            offered=bool(instances),
            device=device,
            driver=driver,
            # The tree decides, the version only confirms: a device still bound to hv_utils is served
            # by the in-kernel fcopy driver, whatever the release string says.
            needs_uio=ic.key == "guest_service_interface" and uio_kernel and driver != "hv_utils",
        )
        daemon = LINUX_DAEMONS.get(ic.key)
        if daemon:
            ic_probe.daemon_candidates = daemon.units
            uio = ic_probe.needs_uio or driver == UIO_DRIVER
            ic_probe.daemon = _pick_unit(units, daemon.units, uio)
        result.services[ic.key] = ic_probe
    return result


# --- desired state ----------------------------------------------------------------------------------


@dataclass
class Step:
    description: str
    command: list[str] | None = None  # a command to run
    write: tuple[str, str] | None = None  # (path, text) to write
    remove: str | None = None  # path to delete


@dataclass
class IcPlan:
    key: str
    steps: list[Step] = field(default_factory=list)
    not_offered: bool = False
    note: str | None = None


HOST_HINT = "use hyperv.integration.vm_integration_service on the Hyper-V host"


def plan_ic(probe_: GuestProbe, key: str, wish: dict[str, t.Any], skip_not_offered: bool) -> IcPlan:
    """The steps that bring one IC to ``wish`` ({state, enabled}); none when it is already there."""
    ic = probe_.services[key]
    plan = IcPlan(key)
    state = wish.get("state")
    enabled = wish.get("enabled")
    wants_running = state in ("started", "restarted")

    if ic.provider == "kernel":
        if state == "stopped" and not ic.offered:
            return plan  # the host does not offer it: the kernel side is idle, which is all "stopped" can mean
        if state == "stopped":
            raise GuestStateError(
                "%s is provided by the kernel driver hv_utils and cannot be stopped in the guest; "
                "to turn it off, disable it on the host (%s)" % (key, HOST_HINT)
            )
        if enabled is not None:
            raise GuestStateError("%s has no daemon to enable: it lives in the kernel driver hv_utils" % key)
    if wants_running and not ic.offered:
        if skip_not_offered:
            plan.not_offered = True
            return plan
        raise GuestStateError(
            "%s is not offered by the host to this guest (no VMBus device with class %s); "
            "enable it on the host first (%s), or set skip_not_offered" % (key, by_key(key).vmbus_class_guid, HOST_HINT)
        )
    if ic.provider == "kernel":
        if wants_running and not probe_.modules.get("hv_utils"):
            plan.steps.append(Step("load the kernel module hv_utils", command=["modprobe", "hv_utils"]))
        return plan

    unit = ic.daemon
    if unit is None:
        family = probe_.os_family
        packages = LINUX_DAEMONS[key].packages.get(family)
        hint = ("install %s" % " and ".join(packages)) if packages else "install your distribution's Hyper-V daemons"
        raise GuestStateError(
            "the daemon for %s is not installed (none of the units %s exists); %s"
            % (key, ", ".join(ic.daemon_candidates), hint)
        )
    if unit.masked:
        raise GuestStateError("%s: %s is masked; unmask it first (systemctl unmask %s)" % (key, unit.name, unit.name))
    if wants_running and not ic.needs_uio and ic.driver is None and not probe_.modules.get("hv_utils"):
        # The daemon talks to the kernel through hv_utils (docs/dev/hyperv-facts.md section 3).
        plan.steps.append(Step("load the kernel module hv_utils", command=["modprobe", "hv_utils"]))
    if wants_running and ic.needs_uio and ic.driver != UIO_DRIVER:
        # Linux >= 6.10: the fcopy daemon talks to /dev/uioN through uio_hv_generic
        # (docs/dev/hyperv-facts.md section 3).
        if not probe_.modules.get(UIO_DRIVER):
            plan.steps.append(Step("load %s" % UIO_DRIVER, command=["modprobe", UIO_DRIVER]))
        plan.steps.append(
            Step(
                "bind %s to the fcopy device class" % UIO_DRIVER,
                write=("/sys/bus/vmbus/drivers/%s/new_id" % UIO_DRIVER, by_key(key).vmbus_class_guid),
            )
        )
    if enabled is not None:
        if not unit.can_enable:
            plan.note = "%s is %s: %s" % (
                unit.name,
                unit.unit_file_state,
                "started by udev when the host offers the device; nothing to enable"
                if unit.unit_file_state in ("static", "indirect")
                else "it cannot be enabled",
            )
        elif enabled != unit.enabled:
            verb = "enable" if enabled else "disable"
            plan.steps.append(Step("%s %s" % (verb, unit.name), command=["systemctl", verb, "--", unit.name]))
    if state == "started" and not unit.active:
        plan.steps.append(Step("start %s" % unit.name, command=["systemctl", "start", "--", unit.name]))
    elif state == "stopped" and unit.active:
        plan.steps.append(Step("stop %s" % unit.name, command=["systemctl", "stop", "--", unit.name]))
    elif state == "restarted":
        plan.steps.append(Step("restart %s" % unit.name, command=["systemctl", "restart", "--", unit.name]))
    return plan


def _load_file_text(root: str, keep_hv_sock: bool) -> str:
    """HV_SOCK_LOAD_FILE's lines with or without hv_sock (other lines a user put there are kept)."""
    lines = [
        line
        for line in (_read(_path(root, HV_SOCK_LOAD_FILE)) or "").splitlines()
        if line.split("#", 1)[0].strip().replace("-", "_") != HV_SOCK
    ]
    if keep_hv_sock:
        if not lines:
            lines.append("# Hyper-V sockets (AF_VSOCK over VMBus), written by hyperv.integration")
        lines.append(HV_SOCK)
    return "\n".join(lines) + "\n" if lines else ""


def plan_hv_sock(probe_: GuestProbe, root: str, wanted: bool) -> list[Step]:
    """Steps that make hv_sock loaded now and at boot (``wanted``), or neither."""
    loaded = bool(probe_.modules.get(HV_SOCK))
    builtin = HV_SOCK in probe_.modules_builtin
    sources = probe_.boot_sources.get(HV_SOCK, [])
    steps: list[Step] = []
    if wanted:
        if not loaded:
            steps.append(Step("load the kernel module hv_sock", command=["modprobe", HV_SOCK]))
        if not builtin and not sources:
            steps.append(
                Step(
                    "load hv_sock at boot (%s)" % HV_SOCK_LOAD_FILE,
                    write=(HV_SOCK_LOAD_FILE, _load_file_text(root, keep_hv_sock=True)),
                )
            )
        return steps
    if builtin:
        raise GuestStateError("hv_sock is built into this kernel (modules.builtin); it cannot be unloaded")
    others = [path for path in sources if path != HV_SOCK_LOAD_FILE]
    if others:
        raise GuestStateError(
            "hv_sock is loaded at boot by %s, which this module does not manage; remove it there first"
            % ", ".join(others)
        )
    if sources:
        text = _load_file_text(root, keep_hv_sock=False)
        description = "stop loading hv_sock at boot (%s)" % HV_SOCK_LOAD_FILE
        keeps_modules = any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())
        steps.append(
            Step(description, write=(HV_SOCK_LOAD_FILE, text))
            if keeps_modules
            else Step(description, remove=HV_SOCK_LOAD_FILE)
        )
    if loaded:
        steps.append(Step("unload the kernel module hv_sock", command=["modprobe", "-r", HV_SOCK]))
    return steps
