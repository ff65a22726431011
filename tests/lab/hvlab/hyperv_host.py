"""In-memory model of one Hyper-V host: its VMs and their integration components (ICs).

All reads and writes go through one lock: an operation (a whole library call) runs as one
critical section, so 20 concurrent connections cannot lose or interleave writes.
Status rules are listed, with their sources, in tests/lab/README.md ("Status rules").
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .catalog import CATALOG, IcDefinition
from .counters import Counters
from .hvsocket import BUILTIN_SERVICES, Change, ServiceRegistry, subkey_guid

log = logging.getLogger("hvlab.host")

# Fixed namespace: VM ids are stable across runs, so tests and logs can name them.
LAB_NAMESPACE = uuid.UUID("5b1f2c8e-7a43-4d1e-9c55-0f3a6e2b9d10")
VM_STATES = ("Running", "Off", "Saved", "Paused")
GUEST_KINDS = ("windows", "linux", "none")
DEFAULT_WINDOWS_IC_VERSION = "10.0.20348"  # Windows Server 2022 guest
KVP_IC_KEY = "key_value_pair_exchange"  # catalog key of the Key-Value Pair Exchange IC
WMI_INVALID_PARAMETER = 32773  # Msvm_VirtualSystemManagementService return value (hyperv-facts section 8)
UP_TO_DATE = "Up to date"  # IntegrationServicesState as the host reports it (docs/dev/hyperv-facts.md section 1)


def fold(name: str) -> str:
    """Key for ordinal case-insensitive comparison (.NET OrdinalIgnoreCase upper-cases char by
    char with simple case mapping: 'ß' stays 'ß', unlike Python's full 'SS')."""
    return "".join(u if len(u := ch.upper()) == 1 else ch for ch in name)


class GuestSide(Protocol):
    """The guest half of one VM, as the host model sees it.

    Life cycle, all from the lab process: constructed while the lab is built; `start()` once when the
    lab starts, then `offers_changed()` once with the initial offer; `offers_changed()` again after
    every IC enable/disable on that VM; `stop()` once at shutdown (it must leave nothing running).
    `ic_status()` and `heartbeat()` are called with the host lock held, for an enabled IC of a
    Running or Paused VM only (the host's own rules cover Off, Saved and disabled ICs): they must be
    quick and must not wait for other threads. `offers_changed()` is called without the host lock
    (it may block, e.g. to rewrite a guest's VMBus tree), one delivery at a time per lab.
    `snapshot()` and `inventory_vars()` are called without the host lock too.
    """

    def ic_status(self, key: str) -> tuple[str | None, str | None]: ...

    def heartbeat(self) -> str: ...

    def offers_changed(self, offered: frozenset[str]) -> None:
        """IC keys the host offers NOW: enabled and the VM Running."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def inventory_vars(self) -> dict[str, Any] | None:
        """Connection host vars for the `guests` inventory group; None if not reachable."""

    def snapshot(self) -> dict[str, Any]:
        """The guest part of `lab state` (vms.NAME.guest)."""


@dataclass
class StaticGuest:
    """Guest side fixed by the LABFILE `guest:` kind (no guest double attached)."""

    kind: str

    def ic_status(self, key: str) -> tuple[str | None, str | None]:
        if self.kind == "none":
            return "NoContact", None  # nothing in the VM answers (lab assumption)
        # Microsoft's example: Heartbeat "OK OK", the others "OK" and no secondary (seed 000).
        return "Ok", ("Ok" if key == "heartbeat" else None)

    def heartbeat(self) -> str:
        return "NoContact" if self.kind == "none" else "OkApplicationsHealthy"

    def offers_changed(self, offered: frozenset[str]) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def inventory_vars(self) -> dict[str, Any] | None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {}

    # KvpGuest: a static guest answers fixed intrinsic items and publishes no guest items; `none` has
    # nothing that answers.
    def kvp_guest_items(self) -> KvpRead:
        if self.kind == "none":
            return None, GUEST_NOT_ANSWERING
        return {}, None

    def kvp_intrinsic_items(self) -> KvpRead:
        if self.kind == "none":
            return None, GUEST_NOT_ANSWERING
        return dict(WINDOWS_INTRINSIC_ITEMS if self.kind == "windows" else LINUX_INTRINSIC_ITEMS), None

    def kvp_host_items_changed(self, items: dict[str, str]) -> None:
        pass


# -- Key-Value Pair Exchange: the guest's half, as the host model calls it ----------------------------
# What a guest answers for one pool: (items, None) when it answered, (None, reason) when it did not.
# Reasons (protocol doc section 9, `guest_items_unavailable`): "no_component" (the VM has no running
# KVP device the host could ask) and "guest_not_answering" (nothing in the guest answered: no daemon,
# no integration services, a timeout). The host itself decides "vm_not_running", "kvp_missing" and
# "kvp_disabled" before it asks the guest at all.
KvpRead = tuple[dict[str, str] | None, str | None]
GUEST_NOT_ANSWERING = "guest_not_answering"
# Intrinsic items a Windows Server 2022 guest reports (names: msvm-kvpexchangedataitem.md, the table
# under Name; values: the lab's own, fixed until the Windows guest double keeps its own).
WINDOWS_INTRINSIC_ITEMS = {
    "FullyQualifiedDomainName": "win-guest.lab.test",
    "OSName": "Windows Server 2022 Datacenter",
    "OSVersion": "10.0.20348",
    "CSDVersion": "",
    "OSMajorVersion": "10",
    "OSMinorVersion": "0",
    "OSBuildNumber": "20348",
    "OSPlatformId": "2",
    "ServicePackMajor": "0",
    "ServicePackMinor": "0",
    "SuiteMask": "400",
    "ProductType": "3",
    "OSEditionId": "8",
    "ProcessorArchitecture": "9",
    "IntegrationServicesVersion": "10.0.20348.1",
    "NetworkAddressIPv4": "192.0.2.10",
    "NetworkAddressIPv6": "2001:db8::10",
    "RDPAddressIPv4": "192.0.2.10",
    "RDPAddressIPv6": "2001:db8::10",
}
# The intrinsic items Linux's hv_kvp_daemon reports (hyperv-facts section 8, "Intrinsic items").
LINUX_INTRINSIC_ITEMS = {
    "FullyQualifiedDomainName": "linux-guest.lab.test",
    "IntegrationServicesVersion": "3.1",
    "NetworkAddressIPv4": "192.0.2.20",
    "NetworkAddressIPv6": "2001:db8::20",
    "OSBuildNumber": "6.1.0-28-amd64",
    "OSName": "Debian GNU/Linux",
    "OSMajorVersion": "12",
    "OSMinorVersion": "",
    "OSVersion": "6.1.0",
    "ProcessorArchitecture": "x86_64",
}


@runtime_checkable
class KvpGuest(Protocol):
    """The guest half of Key-Value Pair Exchange (a GuestSide that has it; hyperv-facts section 8).

    Called WITHOUT the host lock (a real guest may take seconds to answer, the Linux double asks the
    real hv_kvp_daemon), and only for a Running VM whose KVP IC is enabled: the host decides the other
    cases itself. Each call must end within its own bound (no unbounded wait).

    - `kvp_guest_items()`: what guest software published (Windows: `Virtual Machine\\Guest`; Linux:
      pool 1, `KVP_POOL_GUEST`), as the host's `GuestExchangeItems` shows them.
    - `kvp_intrinsic_items()`: the guest's intrinsic items (Windows: `Virtual Machine\\Auto`; Linux:
      the daemon's answers for `KVP_POOL_AUTO`), as `GuestIntrinsicExchangeItems` shows them.
    - `kvp_host_items_changed(items)`: the host's items for this VM NOW (key -> value), after a
      vm_kvp_set call changed them on a Running VM with the IC enabled (Windows: `Virtual
      Machine\\External`; Linux: pool 0, `KVP_POOL_EXTERNAL`, through the daemon's SET/DELETE).
      Failures are the guest's business: the host's write already happened.
    """

    def kvp_guest_items(self) -> KvpRead: ...

    def kvp_intrinsic_items(self) -> KvpRead: ...

    def kvp_host_items_changed(self, items: dict[str, str]) -> None: ...


@dataclass
class IntegrationService:
    definition: IcDefinition
    enabled: bool
    # Clock time (HyperVHost.clock) until which the guest has not answered this IC since it was last
    # enabled: its status is NoContact until then (LABFILE guest_answer_delay). 0: no wait.
    answers_at: float = 0.0

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def guid(self) -> str:
        return self.definition.guid


@dataclass
class VirtualMachine:
    name: str
    id: str  # lower case, like VMId.ToString()
    state: str
    guest_kind: str
    guest: GuestSide
    integration_services_version: str | None
    integration_services_state: str | None
    services: dict[str, IntegrationService] = field(default_factory=dict)  # host order
    guest_answer_delay: float = 0.0  # seconds from an IC's enabling until the guest answers it
    offers_dirty: bool = True  # the guest has not been told the current offer yet
    # Key-Value Pair Exchange: HostExchangeItems of the VM's settings (key -> value, keys exact), and
    # whether the guest has not been told the current ones yet.
    kvp_host_items: dict[str, str] = field(default_factory=dict)
    kvp_dirty: bool = False


@dataclass
class VmSpec:
    """One `vms:` entry of the LABFILE, already validated."""

    name: str
    state: str
    guest: str
    integration_services: dict[str, bool | None]  # None: the VM lacks this IC
    integration_services_version: str | None = None
    integration_services_state: str | None = None
    version_given: bool = False
    state_given: bool = False
    guest_services: dict[str, dict[str, str]] = field(default_factory=dict)  # windows: name -> overrides
    guest_answer_delay: float = 0.0  # seconds (LABFILE; the host-level value when the VM gives none)
    kvp_host_items: dict[str, str] = field(default_factory=dict)  # LABFILE: host items at lab start


class HyperVHost:
    def __init__(self, name: str, language: str, counters: Counters) -> None:
        self.name = name
        self.language = language
        self.counters = counters
        self.lock = threading.RLock()
        self.clock = time.monotonic  # for guest_answer_delay; tests may replace it
        # Serializes offers_changed() deliveries (never held together with `lock` while a guest
        # is being called), so a guest always ends with the newest offer.
        self._offers_lock = threading.Lock()
        self._offers_closed = False
        self.vms: list[VirtualMachine] = []
        self._by_name: dict[str, list[VirtualMachine]] = {}
        # The GuestCommunicationServices registry key (docs/dev/hyperv-facts.md section 4): subkey -> ElementName.
        self.hvsocket = ServiceRegistry(BUILTIN_SERVICES)
        self.files: Any = None  # the host's file system (hvlab.host_files.HostFiles), set by the Lab

    # -- building -----------------------------------------------------------------------------
    def add_vm(self, spec: VmSpec) -> VirtualMachine:
        same = [vm for vm in self._by_name.get(fold(spec.name), []) if vm.name == spec.name]
        seed = f"{self.name}/{spec.name}" + (f"/{len(same) + 1}" if same else "")
        vm_id = str(uuid.uuid5(LAB_NAMESPACE, seed))
        version = spec.integration_services_version
        if not spec.version_given and spec.guest == "windows":
            version = DEFAULT_WINDOWS_IC_VERSION
        ic_state = spec.integration_services_state
        if not spec.state_given:
            ic_state = UP_TO_DATE if version else None
        vm = VirtualMachine(spec.name, vm_id, spec.state, spec.guest, StaticGuest(spec.guest), version, ic_state)
        vm.guest_answer_delay = spec.guest_answer_delay
        vm.kvp_host_items = dict(spec.kvp_host_items)
        # A running guest gets the host items of its VM's settings when its KVP channel comes up: the
        # lab's start delivers them (server.Lab.start -> flush_kvp).
        vm.kvp_dirty = bool(vm.kvp_host_items)
        for definition in CATALOG:
            wish = spec.integration_services.get(definition.key, definition.default_enabled)
            if wish is not None:
                vm.services[definition.key] = IntegrationService(definition, wish)
        self.vms.append(vm)
        self._by_name.setdefault(fold(spec.name), []).append(vm)
        return vm

    def add_hvsocket_services(self, entries: dict[str, str | None]) -> None:
        """LABFILE `hvsocket_services` (validated): add these subkeys. An entry for the GUID of a
        built-in one replaces it (spelling and ElementName); a name already there gets the new value."""
        with self.lock:
            for key, name in entries.items():
                guid = subkey_guid(key)
                old = self.hvsocket.find(guid) if guid is not None else self.hvsocket.find_name(key)
                if old is not None:
                    self.hvsocket.apply(Change("remove", old))
                self.hvsocket.apply(Change("create", key, name))

    # -- reading ------------------------------------------------------------------------------
    def find(self, name: str) -> list[VirtualMachine]:
        """Exact name, ordinal case-insensitive, no wildcards (protocol doc section 3)."""
        return list(self._by_name.get(fold(name), []))

    def ic_name(self, ic: IntegrationService) -> str:
        return ic.definition.names[self.language]

    def ic_id(self, vm: VirtualMachine, ic: IntegrationService) -> str:
        return f"Microsoft:{vm.id.upper()}\\{ic.guid}"  # docs/dev/hyperv-facts.md section 1

    def service_by_guid(self, vm: VirtualMachine, guid: str) -> IntegrationService | None:
        wanted = guid.strip().strip("{}").upper()
        for ic in vm.services.values():
            if ic.guid == wanted:
                return ic
        return None

    def offered(self, vm: VirtualMachine) -> frozenset[str]:
        """IC keys the host offers the guest now: enabled ICs of a Running VM."""
        if vm.state != "Running":
            return frozenset()
        return frozenset(ic.key for ic in vm.services.values() if ic.enabled)

    def awaiting_guest(self, ic: IntegrationService) -> bool:
        """Whether the IC was enabled less than the VM's guest_answer_delay ago: the guest's side of it
        has not connected yet (real Hyper-V reports NoContact until it does)."""
        return ic.answers_at > 0 and self.clock() < ic.answers_at

    def guest_status(self, vm: VirtualMachine, ic: IntegrationService) -> tuple[str | None, str | None]:
        """The guest's contribution to an enabled IC's status on a running or paused VM."""
        if self.awaiting_guest(ic):
            return "NoContact", None  # "not yet been contacted" (README, Status rules)
        return vm.guest.ic_status(ic.key)

    def ic_status(self, vm: VirtualMachine, ic: IntegrationService) -> tuple[str | None, str | None]:
        """(PrimaryOperationalStatus, SecondaryOperationalStatus) as enum names or None."""
        if vm.state in ("Off", "Saved"):
            return None, None  # nothing runs: the host reports no status (lab assumption for Saved)
        if not ic.enabled:
            return "Ok", None  # seed 000: disabled Guest Service Interface shows "False OK"
        return self.guest_status(vm, ic)  # Paused: as Running (lab assumption)

    def heartbeat(self, vm: VirtualMachine) -> str | None:
        """Get-VM .Heartbeat as its enum name; None when the VM is off (docs/dev/hyperv-facts.md section 1)."""
        if vm.state in ("Off", "Saved"):
            return None
        if vm.state == "Paused":
            return "Paused"  # lab assumption
        hb = vm.services.get("heartbeat")
        if hb is None or not hb.enabled:
            return "Disabled"
        if self.awaiting_guest(hb):
            return "NoContact"
        return vm.guest.heartbeat()

    # -- writing ------------------------------------------------------------------------------
    def set_enabled(self, vm: VirtualMachine, ic: IntegrationService, enabled: bool) -> bool:
        """Enable-/Disable-VMIntegrationService. Counts a write only when something changed."""
        with self.lock:
            if ic.enabled == enabled:
                return False
            ic.enabled = enabled
            # The guest answers a newly enabled IC after guest_answer_delay seconds (0: at once).
            ic.answers_at = self.clock() + vm.guest_answer_delay if enabled and vm.guest_answer_delay > 0 else 0.0
            vm.offers_dirty = True
            self.counters.add("writes")
            return True

    # -- Key-Value Pair Exchange (docs/dev/hyperv-facts.md section 8) ------------------------------
    def kvp_enabled(self, vm: VirtualMachine) -> bool | None:
        """Enabled of the VM's Key-Value Pair Exchange IC; None when the VM has none."""
        ic = vm.services.get(KVP_IC_KEY)
        return None if ic is None else ic.enabled

    def kvp_write(self, vm: VirtualMachine, method: str, key: str, value: str) -> int:
        """AddKvpItems, ModifyKvpItems or RemoveKvpItems of one host item: the method's return value.
        Never more forgiving than a host: Add on an existing key answers 32773 (containers/libhvee#193);
        Modify and Remove of a missing key fail too (the class pages say they fail; which code is not
        documented, the lab answers 32773). A write is counted only when something changed."""
        with self.lock:
            present = key in vm.kvp_host_items
            if (method == "AddKvpItems" and not present) or (method == "ModifyKvpItems" and present):
                vm.kvp_host_items[key] = value
            elif method == "RemoveKvpItems" and present:
                del vm.kvp_host_items[key]
            else:
                return WMI_INVALID_PARAMETER
            vm.kvp_dirty = True
            self.counters.add("writes")
            log.info("host %s: VM %r %s %r", self.name, vm.name, method, key)
            return 0

    def kvp_guest_read(
        self, vm: VirtualMachine, state: str, enabled: bool | None
    ) -> tuple[dict[str, str] | None, dict[str, str] | None, str | None]:
        """(guest items, intrinsic items, None) from a Running VM with the IC enabled, or (None, None,
        reason); `state` and `enabled` as the caller read them. Call it WITHOUT the host lock: the guest
        may take a while (KvpGuest)."""
        with self.lock:
            guest, kind = vm.guest, vm.guest_kind
        if state != "Running":
            return None, None, "vm_not_running"
        if enabled is None:
            return None, None, "kvp_missing"
        if not enabled:
            return None, None, "kvp_disabled"
        if not isinstance(guest, KvpGuest):
            # A guest double without the hook yet: Windows answers the fixed set, others nothing.
            if kind == "windows":
                return {}, dict(WINDOWS_INTRINSIC_ITEMS), None
            return None, None, GUEST_NOT_ANSWERING
        intrinsic, reason = guest.kvp_intrinsic_items()
        if intrinsic is None or not intrinsic:
            # The library decides "not answering" on empty intrinsic items, so the lab does too.
            return None, None, reason or GUEST_NOT_ANSWERING
        items, reason = guest.kvp_guest_items()
        if items is None:
            # The host still shows the intrinsic items; GuestExchangeItems then holds nothing, and the
            # library reads that as no guest items (it cannot tell): the lab answers what it would.
            log.warning("guest of VM %r: guest items not read (%s); answered as none", vm.name, reason)
            items = {}
        return dict(items), dict(intrinsic), None

    def flush_kvp(self) -> None:
        """Tell each guest whose host items changed what they are now (KvpGuest.kvp_host_items_changed),
        when its VM is Running with the IC enabled. Call it without holding `lock`."""
        with self.lock:
            pending = []
            for vm in self.vms:
                if vm.kvp_dirty:
                    vm.kvp_dirty = False
                    if vm.state == "Running" and self.kvp_enabled(vm) and isinstance(vm.guest, KvpGuest):
                        pending.append((vm, dict(vm.kvp_host_items)))
        for vm, items in pending:
            try:
                assert isinstance(vm.guest, KvpGuest)
                vm.guest.kvp_host_items_changed(items)
            except Exception:  # a broken guest double must not fail the host call that wrote
                log.exception("guest of VM %r: kvp_host_items_changed failed", vm.name)

    def write_hvsocket(self, change: Change) -> None:
        """One real write to GuestCommunicationServices (a subkey created, renamed or removed)."""
        with self.lock:
            self.hvsocket.apply(change)
            self.counters.add("writes")
            log.info("host %s: registry %s %r (ElementName %r)", self.name, change.kind, change.key, change.name)

    def flush_offers(self) -> None:
        """Tell every guest whose offer changed what the host offers now (GuestSide.offers_changed).
        Call it without holding `lock`: the guest may block. The offer is read after taking
        `_offers_lock`, so of two racing flushes the later one delivers the newer offer."""
        with self._offers_lock:
            if self._offers_closed:
                return
            with self.lock:
                pending = [(vm, self.offered(vm)) for vm in self.vms if vm.offers_dirty]
                for vm, _offer in pending:
                    vm.offers_dirty = False
            for vm, offer in pending:
                try:
                    vm.guest.offers_changed(offer)
                except Exception:  # a broken guest double must not fail the host call that wrote
                    log.exception("guest of VM %r (%s): offers_changed(%s) failed", vm.name, vm.id, sorted(offer))

    def close_offers(self) -> None:
        """No more offers_changed() calls (the lab is stopping its guests); waits for one under way."""
        with self._offers_lock:
            self._offers_closed = True

    # -- reporting ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The `vms` part of `lab state` (DESIGN.md "Lab contract"), plus ids and details.
        Guest snapshots are taken after the host lock is released (a guest double may be slow)."""
        with self.lock:
            vms: dict[str, Any] = {}
            guests: list[tuple[dict[str, Any], VirtualMachine]] = []
            now = self.clock()
            for vm in self.vms:
                key = vm.name if vm.name not in vms else f"{vm.name}#{vm.id}"
                services = {}
                for ic in vm.services.values():
                    primary, secondary = self.ic_status(vm, ic)
                    services[ic.key] = {
                        "enabled": ic.enabled,
                        "primary_status": primary,
                        "secondary_status": secondary,
                        "name": self.ic_name(ic),
                        "id": self.ic_id(vm, ic),
                        # seconds until the guest answers this newly enabled IC (guest_answer_delay)
                        "answers_in": round(max(0.0, ic.answers_at - now), 3) if ic.answers_at else 0.0,
                    }
                vms[key] = {
                    "name": vm.name,
                    "id": vm.id,
                    "state": vm.state,
                    "guest_kind": vm.guest_kind,
                    "guest_answer_delay": vm.guest_answer_delay,
                    "heartbeat": self.heartbeat(vm),
                    "integration_services_version": vm.integration_services_version,
                    "integration_services_state": vm.integration_services_state,
                    "integration_services": services,
                    "kvp_host_items": dict(vm.kvp_host_items),
                }
                guests.append((vms[key], vm))
            result = {
                "vms": vms,
                "hvsocket_services": self.hvsocket.services(),
                "hvsocket_registry": [
                    {"key": key, "service_id": subkey_guid(key), "name": name} for key, name in self.hvsocket.entries()
                ],
            }
        for entry, vm in guests:
            try:
                guest = dict(vm.guest.snapshot())
            except Exception as exc:  # state must stay readable when a guest double is broken
                log.exception("guest of VM %r: snapshot() failed", vm.name)
                guest = {"error": repr(exc)}
            guest.pop("kind", None)
            entry["guest"] = {"kind": vm.guest_kind, **guest}
        return result
