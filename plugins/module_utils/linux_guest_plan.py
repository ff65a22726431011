# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps that bring a Linux guest's half of the integration services to a wish, from its probe.

Facts: docs/dev/hyperv-facts.md section 3. Nothing here runs anything: linux_guest_apply carries the
steps out. Internal to this collection: not a public API.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import LINUX_DAEMONS, UIO_DRIVER, by_key
from ansible_collections.hyperv.integration.plugins.module_utils.linux_guest_probe import (
    HV_SOCK,
    HV_SOCK_LOAD_FILE,
    GuestProbe,
    GuestStateError,
    _path,
    _read,
)


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
