"""Windows guest double: the vmic* services of one Windows VM (docs/dev/hyperv-facts.md section 2) and the
guest library's operations on them (protocol doc section 7). Each Windows VM has its own WinRM
endpoint whose backend runs these operations; the host model asks the same object for the guest
half of the VM's IC statuses (hyperv_host.GuestSide), so stopping vmicvss in the guest changes what
Get-VMIntegrationService reports on the host.

The guest shares the host's lock: a guest write and a host read never interleave.
Status rules and their sources: tests/lab/README.md ("Status rules").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import SERVICE_FOR_IC, START_MODES, WINDOWS_SERVICES, WindowsServiceDefinition
from .counters import Counters
from .fcopy_channel import HV_E_FAIL, HV_ERROR_ALREADY_EXISTS
from .host_files import DotNetError, HostFiles
from .hvsocket import registry_fold
from .hyperv_host import WINDOWS_INTRINSIC_ITEMS
from .protocol import XML_CHARACTERS, LibraryCall, NotRecognised, Operation, OperationError, kvp_limits, xml_chars_ok

# Win32_ComputerSystem of a Hyper-V VM, and the library's verdict on it (Get-ComputerIdentity).
COMPUTER = {"manufacturer": "Microsoft Corporation", "model": "Virtual Machine", "hyperv_guest": True}
# The key every time_provider answer names (the library's $TimeProviderName).
TIME_PROVIDER_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\W32Time\\TimeProviders\\VMICTimeProvider"
SERVICE_COMMAND_EXCEPTION = "Microsoft.PowerShell.Commands.ServiceCommandException"
WANTED_STATES = ("started", "stopped", "restarted")
# What a non-administrator gets when opening an HKLM\SYSTEM key for writing (RegistryKey.OpenSubKey).
REGISTRY_ACCESS_DENIED = ("System.Security.SecurityException", "Requested registry access is not allowed.")
TIME_PROVIDER_VALUES = (0, 1)  # time_provider_enabled: the REG_DWORD to write


# Key-Value Pair Exchange in a Windows guest's registry (docs/dev/hyperv-facts.md section 8, "Windows guest
# registry"): the library's constants, as its answers name them.
KVP_ROOT = "HKLM\\SOFTWARE\\Microsoft\\Virtual Machine"
KVP_KEYS = {
    "from_host": KVP_ROOT + "\\External",
    "to_host": KVP_ROOT + "\\Guest",
    "parameters": KVP_ROOT + "\\Guest\\Parameters",
    "auto": KVP_ROOT + "\\Auto",
}
KVP_PARAMETER_KEY = KVP_ROOT + "\\Guest\\Parameter"  # the spelling of Microsoft's Data Exchange page
KVP_GUEST_LIMITS = ("key_units", "value_units")  # sent by the controller: what reaches the host whole
KVP_STATES = ("present", "absent")
PATH_NOT_FOUND = 0x80070003  # HRESULT_FROM_WIN32(ERROR_PATH_NOT_FOUND)
# What kvp_guest_items / kvp_intrinsic_items answer as the reason when nothing answers (the host model's
# GUEST_NOT_ANSWERING, hyperv_host.KvpGuest).
KVP_GUEST_NOT_ANSWERING = "guest_not_answering"
# The intrinsic items a Windows guest reports (MicrosoftDocs win32 msvm-kvpexchangedataitem.md, the table
# under Name), as a Windows Server 2022 Datacenter guest would: 9 PROCESSOR_ARCHITECTURE_AMD64, 8
# PRODUCT_DATACENTER_SERVER, 3 VER_NT_SERVER, 2 a supported Windows. One table, the host model's, so both
# sides of the lab agree.


def utf16_units(text: str) -> int:
    """[string].Length in PowerShell: UTF-16 code units (a character outside the BMP counts two)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class RegistryValues:
    """The values of one registry key. Value names compare ignoring case (registry_fold); a value written
    again under another spelling keeps the stored spelling (UNVERIFIED on Windows: no primary source).
    Each value is (name as stored, data, RegistryValueKind name)."""

    def __init__(self, strings: dict[str, str] | None = None) -> None:
        self._values: dict[str, tuple[str, Any, str]] = {}
        for name, data in (strings or {}).items():
            self.set(name, data, "String")

    def get(self, name: str) -> tuple[str, Any, str] | None:
        return self._values.get(registry_fold(name))

    def set(self, name: str, data: Any, kind: str) -> None:
        existing = self._values.get(registry_fold(name))
        self._values[registry_fold(name)] = (existing[0] if existing else name, data, kind)

    def delete(self, name: str) -> bool:
        return self._values.pop(registry_fold(name), None) is not None

    def replace(self, strings: dict[str, str]) -> None:
        self._values.clear()
        for name, data in strings.items():
            self.set(name, data, "String")

    def read(self) -> dict[str, Any]:
        """What Read-KvpKey answers: REG_SZ text by name, every other value by its kind only."""
        items = {name: data for name, data, kind in self._values.values() if kind == "String"}
        other = {name: kind for name, _data, kind in self._values.values() if kind != "String"}
        return {"items": items, "other_kinds": other}

    def strings(self) -> dict[str, str]:
        return {name: data for name, data, kind in self._values.values() if kind == "String"}


@dataclass
class KvpRegistry:
    """HKLM\\SOFTWARE\\Microsoft\\Virtual Machine of one Windows guest. None: that key does not exist.
    `parameters` and `parameter` are subkeys of Guest: they exist only while `guest` does. Tests may
    change any field of a running lab's model (e.g. `administrator = False`, `guest = None`)."""

    external: RegistryValues | None = None  # host items: absent until the host first pushes one
    guest: RegistryValues | None = field(default_factory=RegistryValues)  # the parent of Parameters
    parameters: RegistryValues | None = None
    parameter: RegistryValues | None = None  # the Guest\\Parameter spelling: absent on the lab's guests
    auto: RegistryValues | None = None
    administrator: bool = True  # False: opening a key under HKLM\\SOFTWARE for writing is denied

    def key(self, name: str) -> RegistryValues | None:
        if name in ("parameters", "parameter") and self.guest is None:
            return None
        return {
            "from_host": self.external,
            "to_host": self.guest,
            "parameters": self.parameters,
            "parameter": self.parameter,
            "auto": self.auto,
        }[name]


@dataclass
class TimeProvider:
    """W32Time's Hyper-V time provider (docs/dev/hyperv-facts.md section 2): the key
    HKLM\\SYSTEM\\CurrentControlSet\\Services\\W32Time\\TimeProviders\\VMICTimeProvider, its value
    Enabled, and the W32Time service that reads it when it starts (MicrosoftDocs windowsserverdocs
    windows-server-2016-improvements.md: "requires that you restart the w32time service"). A real Windows
    guest has the key with Enabled = 1 (REG_DWORD). Tests may change any field of a running lab's model."""

    present: bool = True  # the key exists
    enabled: int | str | None = 1  # the value Enabled as stored; None: absent
    kind: str | None = "DWord"  # RegistryValueKind name; None: absent
    writable: bool = True  # False: the caller is not an administrator (access denied)
    w32time_status: str = "Running"  # the W32Time service: Running | Stopped
    w32time_restarts: int = 0
    # Whether the running W32Time takes samples from the host: the value as read at its last start.
    samples_in_use: bool = True
    restart_fails: bool = False  # True: Restart-Service W32Time fails (the value stays written)

    def state(self) -> dict[str, Any]:
        return {"key": TIME_PROVIDER_KEY, "present": self.present, "enabled": self.enabled, "kind": self.kind}

    def read_at_start(self) -> None:
        self.samples_in_use = self.present and not (self.kind == "DWord" and self.enabled == 0)


@dataclass
class GuestService:
    definition: WindowsServiceDefinition
    status: str  # ServiceControllerStatus name: Running | Stopped
    start_mode: str  # ServiceStartMode name: Automatic | Manual | Disabled
    has_run: bool  # it ran at some time in this lab's life (NoContact vs LostCommunication)

    @property
    def name(self) -> str:
        return self.definition.name

    def set_status(self, status: str) -> None:
        self.status = status
        self.has_run = self.has_run or status == "Running"


class WindowsGuest:
    """The guest half of one Windows VM (implements hyperv_host.GuestSide)."""

    def __init__(
        self,
        vm_name: str,
        language: str,
        lock: threading.RLock,
        counters: Counters,
        is_running: Callable[[], bool],
        overrides: dict[str, dict[str, str]] | None = None,
        host_name: str | None = None,
    ) -> None:
        self.vm_name = vm_name
        self.language = language
        self.lock = lock  # the host's lock
        self.counters = counters  # this guest endpoint's counters
        self.is_running = is_running
        self.services: dict[str, GuestService] = {}
        for definition in WINDOWS_SERVICES:
            wish = (overrides or {}).get(definition.name, {})
            status = wish.get("status", definition.status)
            # A service that is Running when the lab starts has run (at boot); one that starts out
            # Stopped has never been in contact with the host in this lab's life.
            self.services[definition.name] = GuestService(
                definition, status, wish.get("start_mode", definition.start_mode), has_run=status == "Running"
            )
        self.offered: frozenset[str] = frozenset()
        self.connection: dict[str, Any] | None = None  # winrm host vars, set once the endpoint has a port
        self.time_provider = TimeProvider()
        # Guest\\Parameters: what the host says about itself and the VM. HostName and PhysicalHostName only
        # when the lab passes the host's name (host_name); Windows fills them from the host.
        parameters = {"VirtualMachineName": vm_name}
        if host_name is not None:
            parameters.update(HostName=host_name, PhysicalHostName=host_name.upper())
        self.kvp = KvpRegistry(parameters=RegistryValues(parameters), auto=RegistryValues(WINDOWS_INTRINSIC_ITEMS))
        self.kvp_pending: dict[str, str] | None = None  # host items waiting for vmickvpexchange
        # The guest's disk for Guest Service Interface copies, made at the first use (a lab of 1000 Windows
        # guests starts in under 2 s): files_root is set by the Lab.
        self.files_root: Path | None = None
        self._files: HostFiles | None = None

    @property
    def files(self) -> HostFiles | None:
        with self.lock:
            if self._files is None and self.files_root is not None:
                self._files = HostFiles(self.files_root, "Administrator")
            return self._files

    # -- hyperv_host.GuestSide ----------------------------------------------------------------
    @staticmethod
    def _silent(service: GuestService) -> str:
        # Msvm_*Component OperationalStatus: NoContact = "not installed or has not yet been
        # contacted", LostCommunication = "no longer responding normally" (README, Status rules).
        return "LostCommunication" if service.has_run else "NoContact"

    def ic_status(self, key: str) -> tuple[str | None, str | None]:
        definition = SERVICE_FOR_IC.get(key)
        if definition is None:  # every catalog IC has a service; keep the static answer otherwise
            return "Ok", None
        service = self.services[definition.name]
        if service.status == "Running":
            return "Ok", ("Ok" if key == "heartbeat" else None)
        return self._silent(service), None

    def heartbeat(self) -> str:
        service = self.services["vmicheartbeat"]
        return "OkApplicationsHealthy" if service.status == "Running" else self._silent(service)

    def offers_changed(self, offered: frozenset[str]) -> None:
        with self.lock:
            self.offered = offered  # kept for `lab state`; the services do not react (see README)

    # -- Key-Value Pair Exchange, for the host model (hyperv_host.KvpGuest) ----------------------
    def kvp_answering(self) -> bool:
        """The guest answers the host's KVP requests: the VM runs and so does its Data Exchange service."""
        service = self.services.get("vmickvpexchange")
        return self.is_running() and service is not None and service.status == "Running"

    def kvp_host_items_changed(self, items: dict[str, str]) -> None:
        """The host's items for this VM (HostExchangeItems) are now exactly `items`: the Data Exchange
        service writes them to the guest's External key. While vmickvpexchange is not Running they wait
        and arrive when it runs again (kvp_flush). External appears with the first item and stays, empty,
        when the last one is removed."""
        with self.lock:
            self.kvp_pending = dict(items)
            self.kvp_flush()

    def kvp_flush(self) -> None:
        """Deliver host items that waited for the Data Exchange service (call with the lock held)."""
        if self.kvp_pending is None or not self.kvp_answering():
            return
        items, self.kvp_pending = self.kvp_pending, None
        if self.kvp.external is None:
            if not items:
                return
            self.kvp.external = RegistryValues()
        self.kvp.external.replace(items)

    def kvp_guest_items(self) -> tuple[dict[str, str] | None, str | None]:
        """GuestExchangeItems: the REG_SZ values of Guest (KVP carries strings), or (None, reason)."""
        with self.lock:
            if not self.kvp_answering():
                return None, KVP_GUEST_NOT_ANSWERING
            guest = self.kvp.key("to_host")
            return (guest.strings() if guest is not None else {}), None

    def kvp_intrinsic_items(self) -> tuple[dict[str, str] | None, str | None]:
        """GuestIntrinsicExchangeItems: the REG_SZ values of Auto, or (None, reason)."""
        with self.lock:
            if not self.kvp_answering():
                return None, KVP_GUEST_NOT_ANSWERING
            auto = self.kvp.key("auto")
            return (auto.strings() if auto is not None else {}), None

    # -- Guest Service Interface, for the host model (file_copy_ops) -------------------------------
    def receive_file(
        self, data: bytes, destination: str, *, overwrite: bool, create_path: bool, source_name: str = ""
    ) -> int:
        """vmicguestinterface writing one file the host copies (Copy-VMFile): the HRESULT it answers. A
        destination that is an existing directory gets the file under the source's name in it
        (Msvm_CopyFileToGuestSettingData, DestinationPath)."""
        service = self.services.get("vmicguestinterface")
        files = self.files
        if files is None or service is None or service.status != "Running" or not self.is_running():
            return HV_E_FAIL
        try:
            if files.exists(destination) and not files.is_file(destination):
                if not source_name:
                    return HV_E_FAIL
                destination = destination.rstrip("\\/") + "\\" + source_name
            if files.exists(destination) and not overwrite:
                return HV_ERROR_ALREADY_EXISTS
            parent = destination.replace("/", "\\").rsplit("\\", 1)[0]
            if not files.exists(parent):
                if not create_path:
                    return PATH_NOT_FOUND
                files.make_dirs(parent)
            with files.open_create(destination) as writer:
                writer.write(data)
        except DotNetError:
            return HV_E_FAIL
        return 0

    def start(self) -> None:
        pass  # nothing runs outside the lab process: the endpoint is served with the others

    def stop(self) -> None:
        pass

    def inventory_vars(self) -> dict[str, Any] | None:
        return dict(self.connection) if self.connection is not None else None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "services": {s.name: {"status": s.status, "start_mode": s.start_mode} for s in self.services.values()},
                "has_run": [s.name for s in self.services.values() if s.has_run],
                "offered": sorted(self.offered),
                "reachable": self.is_running(),
                "files": {} if self._files is None else self._files.listing(),
                "kvp": {
                    name: (None if (values := self.kvp.key(name)) is None else values.read())
                    for name in ("from_host", "to_host", "parameters", "parameter", "auto")
                },
                "time_provider": {
                    "present": self.time_provider.present,
                    "enabled": self.time_provider.enabled,
                    "kind": self.time_provider.kind,
                    "w32time": {
                        "status": self.time_provider.w32time_status,
                        "restarts": self.time_provider.w32time_restarts,
                        "host_samples_in_use": self.time_provider.samples_in_use,
                    },
                },
            }

    # -- helpers for the operations -----------------------------------------------------------
    def find(self, name: str) -> GuestService | None:
        """Service names compare case-insensitively on Windows; no wildcards here."""
        return self.services.get(name.lower())

    def display_name(self, service: GuestService) -> str:
        return service.definition.display_names[self.language]


def _check_keys(
    params: dict[str, Any], required: tuple[str, ...], operation: str, optional: tuple[str, ...] = ()
) -> None:
    missing = [k for k in required if k not in params]
    extra = sorted(k for k in params if k not in required and k not in optional)
    if missing or extra:
        raise NotRecognised(f"{operation} params not recognised: missing {missing}, unknown {extra}")


WILDCARD_CHARACTERS = "*?["


def _refuse_wildcards(names: list[str]) -> None:
    """The library asks Get-Service for exact names only and throws for a name with wildcard characters
    (WildcardPattern.ContainsWildcardCharacters: '*', '?', '['), before anything is written."""
    for name in names:
        if any(c in name for c in WILDCARD_CHARACTERS):
            raise OperationError(
                "System.ArgumentException",
                f"service name '{name}' contains wildcard characters",
                service=None,
                category="OperationStopped",
            )


class GuestOperations:
    """The Windows guest library's operations (protocol doc section 7) on one WindowsGuest."""

    def __init__(self, guest: WindowsGuest) -> None:
        self.guest = guest

    def table(self) -> dict[str, Operation]:
        return {
            "guest_service_info": self.info,
            "guest_service_set": self.set,
            "guest_kvp_info": self.kvp_info,
            "guest_kvp_set": self.kvp_set,
        }

    # -- guest_service_info -------------------------------------------------------------------
    def info(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, ("names",), call.operation)
        names = call.params["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise NotRecognised(f"{call.operation} params.names must be a list of strings")
        _refuse_wildcards(names)
        with self.guest.lock:
            return {
                "computer": dict(COMPUTER),
                "services": [self._describe(name) for name in names],
                "time_provider": self.guest.time_provider.state(),
            }

    def _describe(self, name: str) -> dict[str, Any]:
        service = self.guest.find(name)
        if service is None:
            return {"name": name, "exists": False, "display_name": None, "status": None, "start_mode": None}
        return {
            "name": name,  # the library answers the name as it was asked for
            "exists": True,
            "display_name": self.guest.display_name(service),
            "status": service.status,
            "start_mode": service.start_mode,
        }

    # -- guest_service_set --------------------------------------------------------------------
    def set(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, ("services",), call.operation, optional=("time_provider_enabled",))
        items = call.params["services"]
        wanted = call.params.get("time_provider_enabled")
        if wanted is not None and (isinstance(wanted, bool) or wanted not in TIME_PROVIDER_VALUES):
            raise NotRecognised(f"{call.operation} params.time_provider_enabled must be 0, 1 or null, got {wanted!r}")
        shape = '{"name": string, "state": started|stopped|restarted|null, "start_mode": one of START_MODES|null}'
        if not isinstance(items, list) or not all(
            isinstance(i, dict)
            and set(i) == {"name", "state", "start_mode"}
            and isinstance(i["name"], str)
            and (i["state"] is None or i["state"] in WANTED_STATES)
            and (i["start_mode"] is None or i["start_mode"] in START_MODES)
            for i in items
        ):
            raise NotRecognised(
                f"{call.operation} params.services must be a list of "
                + shape.replace("one of START_MODES", "|".join(START_MODES))
            )
        _refuse_wildcards([item["name"] for item in items])
        with self.guest.lock:
            missing: list[str] = []
            for item in items:  # step 1: every service must exist before anything is written
                if self.guest.find(item["name"]) is None:  # the library lists each one asked for
                    missing.append(item["name"])
            # A lab guest is always a Hyper-V VM: the library's not-a-guest refusal never applies.
            base = {"not_a_guest": False, "computer": dict(COMPUTER)}
            if missing:
                return dict(base, missing=missing, services=[], time_provider=None)
            provider = self.guest.time_provider
            if wanted is not None:
                if not provider.present:  # step 1b: nothing is written, the controller says why
                    absent = {"key": TIME_PROVIDER_KEY, "present": False, "before": None, "after": None}
                    absent.update(changed=False, w32time=None, error=None)
                    return dict(base, missing=[], services=[], time_provider=absent)
                if (provider.kind != "DWord" or provider.enabled != wanted) and not provider.writable:
                    # Opening the key for writing fails before the first write, in check mode too.
                    raise OperationError(*REGISTRY_ACCESS_DENIED, category="OperationStopped")
            services = [self._apply(item, call.check_mode) for item in items]
            time_provider = None if wanted is None else self._apply_time_provider(wanted, call.check_mode)
            self.guest.kvp_flush()  # a started vmickvpexchange receives the host items that waited
            return dict(base, missing=[], services=services, time_provider=time_provider)

    def _apply_time_provider(self, wanted: int, check_mode: bool) -> dict[str, Any]:
        provider = self.guest.time_provider
        before = {"enabled": provider.enabled, "kind": provider.kind}
        w32time = {"status": provider.w32time_status, "restarted": False, "error": None}
        entry = {
            "key": TIME_PROVIDER_KEY,
            "present": True,
            "before": before,
            "after": dict(before),
            "changed": False,
            "w32time": w32time,
            "error": None,
        }
        if before == {"enabled": wanted, "kind": "DWord"}:
            return entry
        entry["after"], entry["changed"] = {"enabled": wanted, "kind": "DWord"}, True
        running = provider.w32time_status == "Running"

        def write() -> None:
            provider.enabled, provider.kind = wanted, "DWord"

        self._write(check_mode, write)  # New-ItemProperty -PropertyType DWord -Force
        if not running:
            return entry  # a stopped W32Time reads the value when it next starts
        if check_mode:
            w32time["restarted"] = True
        elif provider.restart_fails:
            w32time["error"] = {
                "type": SERVICE_COMMAND_EXCEPTION,
                "message": "Service 'Windows Time (W32Time)' cannot be started due to the following error: "
                "Cannot start service W32Time on computer '.'.",
                "category": "OpenError",
                "service": "W32Time",
            }
            provider.w32time_status = "Stopped"
        else:
            w32time["restarted"] = True
            provider.w32time_restarts += 1
            provider.read_at_start()
            self.guest.counters.add("writes")  # Restart-Service W32Time
        return entry

    def _apply(self, item: dict[str, Any], check_mode: bool) -> dict[str, Any]:
        service = self.guest.find(item["name"])
        assert service is not None
        before = {"status": service.status, "start_mode": service.start_mode}
        status, start_mode = service.status, service.start_mode
        error = None
        restarted = False
        if item["start_mode"] is not None and item["start_mode"] != start_mode:  # Set-Service first
            start_mode = item["start_mode"]
            self._write(check_mode, lambda: setattr(service, "start_mode", item["start_mode"]))
        wanted = item["state"]
        needs_start = wanted == "restarted" or (wanted == "started" and status != "Running")
        if wanted == "stopped" and status != "Stopped":
            status = "Stopped"
            self._write(check_mode, lambda: service.set_status("Stopped"))
        elif needs_start and start_mode == "Disabled":
            if status == "Running":  # Restart-Service stops it, then cannot start it
                status = "Stopped"
                self._write(check_mode, lambda: service.set_status("Stopped"))
            error = self._cannot_start(service)  # Windows refuses; predicted in check mode too
        elif needs_start:
            restarted = wanted == "restarted"
            status = "Running"
            self._write(check_mode, lambda: service.set_status("Running"))
        # Read again, as the library does; in check mode `after` is what would result.
        after = {"status": status, "start_mode": start_mode}
        if not check_mode:
            after = {"status": service.status, "start_mode": service.start_mode}
        return {
            "name": service.name,
            "before": before,
            "after": after,
            "changed": after != before or restarted,
            "error": error,
        }

    def _write(self, check_mode: bool, change: Callable[[], None]) -> None:
        if not check_mode:
            change()
            self.guest.counters.add("writes")

    def _cannot_start(self, service: GuestService) -> dict[str, Any]:
        # Start-Service's ServiceCommandException (category OpenError) for a Disabled service. The
        # text stays English: the lab localizes display names only.
        return {
            "type": SERVICE_COMMAND_EXCEPTION,
            "message": (
                f"Service '{self.guest.display_name(service)} ({service.name})' cannot be started due to the "
                f"following error: Cannot start service {service.name} on computer '.'."
            ),
            "category": "OpenError",
            "service": service.name,
        }

    # -- guest_kvp_info -----------------------------------------------------------------------
    def kvp_info(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, (), call.operation)
        kvp = self.guest.kvp
        with self.guest.lock:
            self.guest.kvp_flush()
            result: dict[str, Any] = {
                "hyperv_guest": COMPUTER["hyperv_guest"],
                "keys": {},
                "other_kinds": {},
                "reasons": {},
            }
            for name in ("from_host", "to_host", "parameters", "auto"):
                path = KVP_KEYS[name]
                values = kvp.key(name)
                if values is None and name == "parameters" and kvp.key("parameter") is not None:
                    values, path = kvp.key("parameter"), KVP_PARAMETER_KEY
                result["keys"][name] = path
                if values is None:  # never an empty mapping for a key that is not there
                    result[name] = result["other_kinds"][name] = None
                    result["reasons"][name] = (
                        f"neither {path} nor {KVP_PARAMETER_KEY} exists"
                        if name == "parameters"
                        else f"{path} does not exist"
                    )
                else:
                    read = values.read()
                    result[name], result["other_kinds"][name] = read["items"], read["other_kinds"]
                    result["reasons"][name] = None
            return result

    # -- guest_kvp_set ------------------------------------------------------------------------
    def kvp_set(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, ("items", "limits"), call.operation)
        limits = kvp_limits(call.params, KVP_GUEST_LIMITS, call.operation)
        items = call.params["items"]
        if not isinstance(items, list) or not all(
            isinstance(i, dict)
            and set(i) == {"key", "value", "state"}
            and isinstance(i["key"], str)
            and (i["value"] is None or isinstance(i["value"], str))
            and i["state"] in KVP_STATES
            for i in items
        ):
            raise NotRecognised(
                f"{call.operation} params.items must be a list of "
                '{"key": string, "value": string|null, "state": present|absent}'
            )
        kvp = self.guest.kvp
        with self.guest.lock:
            self.guest.kvp_flush()
            # A lab guest is always a Hyper-V VM: the library's not-a-guest answer never applies.
            answer: dict[str, Any] = {
                "not_a_guest": False,
                "computer": dict(COMPUTER),
                "key": KVP_KEYS["to_host"],
                "key_created": False,
                "refused": [],
                "items": [],
            }
            refused: list[dict[str, Any]] = []
            seen: dict[str, None] = {}  # folded keys of the items before (a dict: `set` is a method here)
            for item in items:  # every item before anything is written
                refusal = self._kvp_refusal(item, seen, limits)
                if refusal is not None:
                    refused.append(refusal)
                seen[registry_fold(item["key"])] = None
            if refused:
                answer["refused"] = refused
                return answer
            before_key = kvp.key("to_host")
            plans = [(item, self._kvp_state(before_key, item["key"])) for item in items]
            writes = any(self._kvp_wanted(item, before) is not None for item, before in plans)
            creates = before_key is None and any(
                item["state"] == "present" and self._kvp_wanted(item, before) is not None for item, before in plans
            )
            if writes and not kvp.administrator:
                # Opening the key for writing fails before the first write, in check mode too.
                raise OperationError(*REGISTRY_ACCESS_DENIED, category="OperationStopped")
            answer["items"] = [self._kvp_apply(item, before, call.check_mode) for item, before in plans]
            answer["key_created"] = creates and any(entry["after"]["present"] for entry in answer["items"])
            return answer

    @staticmethod
    def _kvp_refusal(item: dict[str, Any], seen: dict[str, None], limits: dict[str, int]) -> dict[str, Any] | None:
        key, value = item["key"], item["value"]
        if key == "":
            return {"key": key, "reason": "key_empty", "length": 0, "limit": None}
        if utf16_units(key) > limits["key_units"]:
            return {"key": key, "reason": "key_too_long", "length": utf16_units(key), "limit": limits["key_units"]}
        if not xml_chars_ok(key):  # the host reads guest items as CIM-XML
            return {"key": key, "reason": "key_invalid_characters", "length": None, "limit": XML_CHARACTERS}
        if key.lower() == "(default)":  # the registry provider's name for a key's default value
            return {"key": key, "reason": "key_reserved", "length": None, "limit": None}
        if registry_fold(key) in seen:  # Windows matches value names ignoring case
            return {"key": key, "reason": "named_twice", "length": None, "limit": None}
        if item["state"] == "present":
            if value is None:
                return {"key": key, "reason": "value_missing", "length": None, "limit": None}
            if utf16_units(value) > limits["value_units"]:
                return {
                    "key": key,
                    "reason": "value_too_long",
                    "length": utf16_units(value),
                    "limit": limits["value_units"],
                }
            if not xml_chars_ok(value):
                return {"key": key, "reason": "value_invalid_characters", "length": None, "limit": XML_CHARACTERS}
        return None

    @staticmethod
    def _kvp_state(values: RegistryValues | None, key: str) -> dict[str, Any]:
        found = None if values is None else values.get(key)
        if found is None:
            return {"present": False, "value": None, "kind": None}
        _name, data, kind = found
        return {"present": True, "value": data if kind == "String" else None, "kind": kind}

    @staticmethod
    def _kvp_wanted(item: dict[str, Any], before: dict[str, Any]) -> dict[str, Any] | None:
        """The state the item asks for, None when it already holds."""
        if item["state"] == "absent":
            return {"present": False, "value": None, "kind": None} if before["present"] else None
        if before["kind"] == "String" and before["value"] == item["value"]:  # -ceq: case matters
            return None
        return {"present": True, "value": item["value"], "kind": "String"}

    def _kvp_apply(self, item: dict[str, Any], before: dict[str, Any], check_mode: bool) -> dict[str, Any]:
        entry = {"key": item["key"], "before": before, "after": before, "changed": False, "error": None}
        wanted = self._kvp_wanted(item, before)
        if wanted is None:
            return entry
        entry["after"], entry["changed"] = wanted, True
        if check_mode:
            return entry
        kvp = self.guest.kvp
        if item["state"] == "absent":
            if kvp.guest is not None and kvp.guest.delete(item["key"]):  # DeleteValue of that one name
                self.guest.counters.add("writes")
        else:
            if kvp.guest is None:  # CreateSubKey: Guest is created with its first value
                kvp.guest = RegistryValues()
            kvp.guest.set(item["key"], item["value"], "String")  # SetValue(..., RegistryValueKind.String)
            self.guest.counters.add("writes")
        entry["after"] = self._kvp_state(kvp.key("to_host"), item["key"])  # read back, as the library does
        entry["changed"] = entry["after"] != before
        return entry
