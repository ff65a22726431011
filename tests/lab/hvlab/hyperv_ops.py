"""The host library's operations (protocol doc section 4), carried out on the host model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .faults import FaultSet
from .hvsocket import REGISTRY_PATH, ServiceRegistry, parse_guid, subkey_guid
from .hyperv_host import HyperVHost, IntegrationService, VirtualMachine, fold
from .protocol import LibraryCall, NotRecognised, Operation, OperationError

log = logging.getLogger("hvlab.ops")

VIRTUALIZATION_EXCEPTION = "Microsoft.HyperV.PowerShell.VirtualizationException"
HVSOCKET_ITEM_KEYS = {"service_id", "name", "state"}
HVSOCKET_STATES = ("present", "absent")
# [guid]::Parse on a string that is no GUID (.NET Framework's message, as PowerShell wraps it).
GUID_FORMAT_MESSAGE = (
    'Exception calling "Parse" with "1" argument(s): '
    '"Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."'
)


def _check_keys(params: dict[str, Any], required: tuple[str, ...], operation: str) -> None:
    missing = [k for k in required if k not in params]
    extra = sorted(k for k in params if k not in required)
    if missing or extra:
        raise NotRecognised(f"{operation} params not recognised: missing {missing}, unknown {extra}")


def _names(value: Any, operation: str, allow_null: bool) -> list[str] | None:
    if value is None and allow_null:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NotRecognised(
            f"{operation} params.vm_names must be " + ("null or " if allow_null else "") + "a list of strings"
        )
    return value


@dataclass
class Resolved:
    found: list[tuple[VirtualMachine, str | None]]
    missing: list[str]
    ambiguous: dict[str, list[str]]
    repeated: list[dict[str, Any]]


class HostOperations:
    def __init__(self, host: HyperVHost, faults: FaultSet) -> None:
        self.host = host
        self.faults = faults

    def table(self) -> dict[str, Operation]:
        return {
            "vm_integration_service_info": self.info,
            "vm_integration_service_set": self.set,
            "hvsocket_service_info": self.hvsocket_info,
            "hvsocket_service_set": self.hvsocket_set,
        }

    def language_mode(self) -> str:
        """The PowerShell language mode of this call's session (fault language_mode; else FullLanguage)."""
        fault = self.faults.take("language_mode")
        return str(fault.params["mode"]) if fault is not None else "FullLanguage"

    def before_call(self, call: LibraryCall) -> None:
        # Protocol doc section 5: a user who is not a Hyper-V administrator gets this for any call.
        if self.faults.take("access_denied"):
            raise OperationError(
                VIRTUALIZATION_EXCEPTION,
                "You do not have the required permission to complete this task. "
                "Contact the authorization policy administrator for the computer "
                f"'{self.host.name}'.",
                category="PermissionDenied",
            )

    # -- helpers ------------------------------------------------------------------------------
    def _resolve(self, names: list[str] | None) -> Resolved:
        """[(VM, the name that selected it, None when every VM is listed)], missing, ambiguous, and each
        VM named more than once ({vm, names})."""
        resolved = Resolved([], [], {}, [])
        if names is None:
            resolved.found.extend((vm, None) for vm in self.host.vms)
            return resolved
        for name in names:
            matches = self.host.find(name)
            if not matches:
                resolved.missing.append(name)
            elif len(matches) > 1:
                # PowerShell's @{} compares keys ignoring case: a second spelling updates the first key
                seen = next((key for key in resolved.ambiguous if fold(key) == fold(name)), name)
                resolved.ambiguous[seen] = [vm.id for vm in matches]
            else:
                first = next((requested for vm, requested in resolved.found if vm is matches[0]), None)
                if first is None:
                    # protocol: a VM named twice (two spellings) is returned once, for the first spelling
                    resolved.found.append((matches[0], name))
                else:  # one entry per VM, with every name that selected it
                    entry = next((e for e in resolved.repeated if e["vm_object"] is matches[0]), None)
                    if entry is None:
                        entry = {"vm": matches[0].name, "names": [first], "vm_object": matches[0]}
                        resolved.repeated.append(entry)
                    entry["names"].append(name)
        return resolved

    def _read_error(self, vm: VirtualMachine) -> dict[str, Any] | None:
        """The error of reading this VM's integration services (fault vm_read_error), or None."""
        fault = self.faults.take(
            "vm_read_error", lambda f: any(other is vm for other in self.host.find(f.params["vm"]))
        )
        if fault is None:
            return None
        message = fault.params.get("message") or f"Hyper-V was unable to find a virtual machine with ID {vm.id}."
        return {
            "type": VIRTUALIZATION_EXCEPTION,
            "message": message,
            "category": "ObjectNotFound",
            "vm": vm.name,
            "service": None,
        }

    def _vm_info(self, vm: VirtualMachine, requested: str | None) -> dict[str, Any]:
        error = self._read_error(vm)
        if error is not None:
            return {
                "name": vm.name,
                "requested_name": requested,
                "id": vm.id,
                "state": None,
                "heartbeat": None,
                "integration_services_version": None,
                "integration_services_state": None,
                "integration_services": [],
                "error": error,
            }
        services = []
        for ic in vm.services.values():
            primary, secondary = self.host.ic_status(vm, ic)
            services.append(
                {
                    "id": self.host.ic_id(vm, ic),
                    # Get-IcGuid: the Id's last segment, braces trimmed, upper case
                    "guid": self.host.ic_id(vm, ic).rsplit("\\", 1)[-1].strip("{}").upper(),
                    "name": self.host.ic_name(ic),
                    "enabled": ic.enabled,
                    "primary_status": primary,
                    "secondary_status": secondary,
                }
            )
        return {
            "name": vm.name,
            "requested_name": requested,
            "id": vm.id,
            "state": vm.state,
            "heartbeat": self.host.heartbeat(vm),
            "integration_services_version": vm.integration_services_version,
            "integration_services_state": vm.integration_services_state,
            "integration_services": services,
            "error": None,
        }

    # -- operations ---------------------------------------------------------------------------
    def info(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, ("vm_names",), call.operation)
        names = _names(call.params["vm_names"], call.operation, allow_null=True)
        with self.host.lock:
            resolved = self._resolve(names)
            return {
                "vms": [self._vm_info(vm, requested) for vm, requested in resolved.found],
                "missing": resolved.missing,
                "ambiguous": resolved.ambiguous,
                "vm_list_errors": [],
            }

    def set(self, call: LibraryCall) -> dict[str, Any]:
        try:
            return self._set(call)
        finally:
            self.host.flush_offers()  # outside the host lock: a guest double may block

    def _set(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, ("vm_names", "changes"), call.operation)
        names = _names(call.params["vm_names"], call.operation, allow_null=False)
        assert names is not None
        changes = call.params["changes"]
        if not isinstance(changes, list) or not all(
            isinstance(c, dict)
            and set(c) - {"vm"} == {"guid", "enabled"}
            and isinstance(c["guid"], str)
            and isinstance(c["enabled"], bool)
            and (c.get("vm") is None or (isinstance(c["vm"], str) and c["vm"] in names))
            for c in changes
        ):
            raise NotRecognised(
                f'{call.operation} params.changes must be a list of {{"guid": string, "enabled": bool'
                ', "vm": one of vm_names (optional)}'
            )
        result: dict[str, Any] = {
            "vms": [],
            "missing": [],
            "ambiguous": {},
            "named_twice": [],
            "missing_services": [],
            "vm_list_errors": [],
        }
        with self.host.lock:
            resolved = self._resolve(names)
            found = resolved.found
            if resolved.missing or resolved.ambiguous:  # step 1: write nothing
                result.update(missing=resolved.missing, ambiguous=resolved.ambiguous)
                return result
            if resolved.repeated and any(change.get("vm") is not None for change in changes):
                # step 1: per-VM wishes under two names of one VM: write nothing
                result["named_twice"] = [{"vm": e["vm"], "names": e["names"]} for e in resolved.repeated]
                return result
            Plan = tuple[VirtualMachine, str | None, list[tuple[IntegrationService, bool]], dict[str, Any] | None]
            plan: list[Plan] = []
            for vm, requested in found:  # step 2: every IC must exist before the first write
                items = []
                read_error = self._read_error(vm)
                if read_error is not None:  # that VM gets its error and no change; the others go on
                    plan.append((vm, requested, [], read_error))
                    continue
                for change in changes:
                    if change.get("vm") is not None and all(other is not vm for other in self.host.find(change["vm"])):
                        continue  # protocol: a change with "vm" is for that VM only
                    ic = self.host.service_by_guid(vm, change["guid"])
                    if ic is None:
                        result["missing_services"].append({"vm": vm.name, "guid": change["guid"]})
                    else:
                        items.append((ic, change["enabled"]))
                plan.append((vm, requested, items, None))
            if result["missing_services"]:
                return result
            for vm, requested, items, read_error in plan:  # step 3
                services = [self._apply(vm, ic, wish, call.check_mode) for ic, wish in items]
                result["vms"].append(
                    {
                        "name": vm.name,
                        "requested_name": requested,
                        "id": vm.id,
                        "state": None if read_error else vm.state,
                        "error": read_error,
                        "integration_services": services,
                    }
                )
        return result

    def _apply(self, vm: VirtualMachine, ic: IntegrationService, wish: bool, check_mode: bool) -> dict[str, Any]:
        before = ic.enabled
        after = before
        error = None
        if before != wish:
            if check_mode:
                after = wish  # protocol: in check mode `after` is the wish
            else:
                fault = self.faults.take(
                    "write_error",
                    lambda f: (
                        f.params["service"] == ic.key and any(other is vm for other in self.host.find(f.params["vm"]))
                    ),
                )
                if fault is not None:
                    verb = "enable" if wish else "disable"
                    message = fault.params.get("message") or (
                        f"Failed to {verb} integration service '{self.host.ic_name(ic)}' "
                        f"of virtual machine '{vm.name}'."
                    )
                    error = {
                        "type": VIRTUALIZATION_EXCEPTION,
                        "message": message,
                        "category": "NotSpecified",
                        "vm": vm.name,
                        "service": ic.guid,
                    }
                else:
                    self.host.set_enabled(vm, ic, wish)
                after = ic.enabled  # read again, as the library does
        return {
            "guid": ic.guid,
            "name": self.host.ic_name(ic),
            "before": before,
            "after": after,
            "changed": after != before,
            "error": error,
            # Protocol: the status is given for an unchanged IC only (read before any write).
            "primary_status": self.host.ic_status(vm, ic)[0] if before == wish else None,
        }

    # -- Hyper-V socket service registrations (protocol doc section 8) ---------------------------
    def hvsocket_info(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, (), call.operation)
        with self.host.lock:
            services = [
                {"service_id": guid, "key": key, "name": name}
                for key, name in self.host.hvsocket.entries()
                if (guid := subkey_guid(key)) is not None
            ]
        return {"services": services}

    def hvsocket_set(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, ("services",), call.operation)
        items = call.params["services"]
        if not isinstance(items, list) or not all(
            isinstance(item, dict)
            and set(item) == HVSOCKET_ITEM_KEYS
            and isinstance(item["service_id"], str)
            and (item["name"] is None or isinstance(item["name"], str))
            and item["state"] in HVSOCKET_STATES
            for item in items
        ):
            raise NotRecognised(
                f"{call.operation} params.services must be a list of "
                '{"service_id": string, "name": string or null, "state": "present" or "absent"}'
            )
        # Every GUID parses before the first write: one bad GUID fails the whole call, nothing written.
        wishes: list[tuple[str, str | None, str]] = []
        for item in items:
            guid = parse_guid(item["service_id"])
            if guid is None:
                # PowerShell wraps the .NET FormatException of a method call in a MethodInvocationException
                # (category NotSpecified); the dispatch's catch names no VM and no service.
                raise OperationError(
                    "System.Management.Automation.MethodInvocationException",
                    GUID_FORMAT_MESSAGE,
                    category="NotSpecified",
                )
            wishes.append((guid, item["name"], item["state"]))
        with self.host.lock:
            # Check mode works on a scratch copy, so a later item sees what the earlier ones would do.
            registry = self.host.hvsocket.copy() if call.check_mode else self.host.hvsocket
            services = [self._hvsocket_apply(registry, *wish, check_mode=call.check_mode) for wish in wishes]
        return {"services": services}

    def _hvsocket_apply(
        self, registry: ServiceRegistry, guid: str, name: str | None, state: str, check_mode: bool
    ) -> dict[str, Any]:
        before = registry.state_of(guid)
        error = None
        change = registry.plan(guid, name, state)
        if change is not None:
            if check_mode:
                registry.apply(change)  # the scratch copy
            else:
                fault = self.faults.take("registry_error", lambda f: f.params["service_id"] == guid)
                if fault is not None:
                    log.warning("%s: fault registry_error: %s of %r refused", self.host.name, change.kind, change.key)
                    error = {
                        "type": "System.UnauthorizedAccessException",
                        "message": fault.params.get("message")
                        or f"Access to the registry key '{REGISTRY_PATH}\\{change.key}' is denied.",
                        "category": "PermissionDenied",
                        "vm": None,
                        "service": guid,
                    }
                else:
                    self.host.write_hvsocket(change)
        after = registry.state_of(guid)  # read again, as the library does
        return {"service_id": guid, "before": before, "after": after, "changed": after != before, "error": error}
