"""The host library's operations (protocol doc section 4), carried out on the host model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .faults import FaultSet
from .file_copy_ops import FileCopyOperations
from .hvsocket import REGISTRY_PATH, ServiceRegistry, parse_guid, subkey_guid
from .hyperv_host import HyperVHost, IntegrationService, VirtualMachine, fold
from .protocol import XML_CHARACTERS, LibraryCall, NotRecognised, Operation, OperationError, kvp_limits, xml_chars_ok

log = logging.getLogger("hvlab.ops")

VIRTUALIZATION_EXCEPTION = "Microsoft.HyperV.PowerShell.VirtualizationException"
# Key-Value Pair Exchange (protocol doc section 9): the names of the limits the controller sends, and the error type.
KVP_STATES = ("present", "absent")
KVP_CHANGE_KEYS = {"vm", "key", "value", "state"}
KVP_HOST_LIMITS = ("key_units", "key_bytes", "value_units", "value_bytes")  # sent by the controller
KVP_ERROR_TYPE = "hyperv.integration.WmiReturnValue"


def kvp_text_problem(text: str, what: str, units: int, limit_bytes: int) -> dict[str, str] | None:
    """Test-KvpText: why this key or value cannot reach every guest whole, or None."""
    if not xml_chars_ok(text):
        return {"reason": f"{what}_invalid_characters", "limit": XML_CHARACTERS}
    if sum(2 if ord(ch) > 0xFFFF else 1 for ch in text) > units:  # .NET Length counts UTF-16 units
        return {"reason": f"{what}_too_long", "limit": f"{units} UTF-16 code units"}
    if len(text.encode("utf-8")) > limit_bytes:
        return {"reason": f"{what}_too_long", "limit": f"{limit_bytes} UTF-8 bytes"}
    return None


def kvp_code_error(method: str, code: int, vm_name: str) -> dict[str, Any]:
    """New-WmiCallError: a failed WMI method call, as numbers (the controller words them). The lab's
    methods answer at once: it starts no jobs, so job is always null here."""
    return {
        "type": KVP_ERROR_TYPE,
        "message": f"{method} answered {code}",
        "category": "NotSpecified",
        "vm": vm_name,
        "service": None,
        "method": method,
        "code": code,
        "job": None,
    }


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
            "vm_kvp_info": self.kvp_info,
            "vm_kvp_set": self.kvp_set,
            "vm_inventory": self.inventory,
            **FileCopyOperations(self).table(),
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
    def resolve(self, names: list[str] | None) -> Resolved:
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

    def kvp_read_error(self, vm: VirtualMachine) -> dict[str, Any] | None:
        """The error of reading this VM's Msvm_KvpExchangeComponent (fault kvp_read_error), or None.
        Default text: WMI's for WBEM_E_FAILED, as a CimException carries it."""
        fault = self.faults.take(
            "kvp_read_error", lambda f: any(other is vm for other in self.host.find(f.params["vm"]))
        )
        if fault is None:
            return None
        return {
            "type": "Microsoft.Management.Infrastructure.CimException",
            "message": fault.params.get("message") or "Generic failure",
            "category": "NotSpecified",
            "vm": vm.name,
            "service": "key_value_pair_exchange",
        }

    def read_error(self, vm: VirtualMachine) -> dict[str, Any] | None:
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
        error = self.read_error(vm)
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
            resolved = self.resolve(names)
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
            resolved = self.resolve(names)
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
                read_error = self.read_error(vm)
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

    # -- Key-Value Pair Exchange, the host's half (protocol doc section 9) -------------------------------
    def kvp_info(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, ("vm_names", "kvp_guid"), call.operation)
        names = _names(call.params["vm_names"], call.operation, allow_null=True)
        if not isinstance(call.params["kvp_guid"], str):
            raise NotRecognised(f"{call.operation} params.kvp_guid must be a string")
        kvp_guid = call.params["kvp_guid"].strip("{}").upper()
        asks: list[tuple[VirtualMachine, dict[str, Any], str, bool | None]] = []
        with self.host.lock:
            resolved = self.resolve(names)
            vms = []
            for vm, requested in resolved.found:
                entry: dict[str, Any] = {
                    "name": vm.name,
                    "requested_name": requested,
                    "id": vm.id,
                    "state": None,
                    "kvp_enabled": None,
                    "host_items": None,
                    "guest_items": None,
                    "intrinsic_items": None,
                    "guest_items_unavailable": None,
                    "unparsed_items": None,
                    "error": self.read_error(vm),
                }
                vms.append(entry)
                if entry["error"] is not None:
                    continue
                ic = self.host.service_by_guid(vm, kvp_guid)
                entry.update(
                    state=vm.state,
                    kvp_enabled=None if ic is None else ic.enabled,
                    host_items=dict(vm.kvp_host_items),
                    # The lab holds items as data, not as CIM-XML text: none is ever malformed.
                    unparsed_items=0,
                )
                asks.append((vm, entry, vm.state, entry["kvp_enabled"]))
        for vm, entry, state, enabled in asks:  # outside the host lock: a guest may take a while
            guest_items, intrinsic_items, reason = self.host.kvp_guest_read(vm, state, enabled)
            entry.update(guest_items=guest_items, intrinsic_items=intrinsic_items, guest_items_unavailable=reason)
        return {"vms": vms, "missing": resolved.missing, "ambiguous": resolved.ambiguous, "vm_list_errors": []}

    def inventory(self, call: LibraryCall) -> dict[str, Any]:
        """Every VM as vm_integration_service_info reads it, with the intrinsic items as vm_kvp_info does."""
        _check_keys(call.params, ("kvp_guid",), call.operation)
        if not isinstance(call.params["kvp_guid"], str):
            raise NotRecognised(f"{call.operation} params.kvp_guid must be a string")
        kvp_guid = call.params["kvp_guid"].strip("{}").upper()
        asks: list[tuple[VirtualMachine, dict[str, Any], str, bool | None]] = []
        with self.host.lock:
            vms = []
            for vm in self.host.vms:
                entry = self._vm_info(vm, None)
                # The lab holds items as data, not as CIM-XML text: none is ever malformed.
                entry.update(intrinsic_items=None, guest_items_unavailable=None, unparsed_items=0, kvp_error=None)
                vms.append(entry)
                if entry["error"] is not None:
                    continue
                kvp_error = self.kvp_read_error(vm)
                if kvp_error is not None:  # the integration services stay as read
                    entry.update(guest_items_unavailable="read_error", kvp_error=kvp_error)
                    continue
                ic = self.host.service_by_guid(vm, kvp_guid)
                asks.append((vm, entry, vm.state, None if ic is None else ic.enabled))
        for vm, entry, state, enabled in asks:  # outside the host lock: a guest may take a while
            _guest_items, intrinsic_items, reason = self.host.kvp_guest_read(vm, state, enabled)
            entry.update(intrinsic_items=intrinsic_items, guest_items_unavailable=reason)
        return {"vms": vms, "missing": [], "ambiguous": {}, "vm_list_errors": []}

    def kvp_set(self, call: LibraryCall) -> dict[str, Any]:
        try:
            return self._kvp_set(call)
        finally:
            self.host.flush_kvp()  # outside the host lock: a guest double may block

    def _kvp_set(self, call: LibraryCall) -> dict[str, Any]:
        _check_keys(call.params, ("vm_names", "changes", "limits"), call.operation)
        names = _names(call.params["vm_names"], call.operation, allow_null=False)
        assert names is not None
        limits = kvp_limits(call.params, KVP_HOST_LIMITS, call.operation)
        changes = call.params["changes"]
        if not isinstance(changes, list) or not all(
            isinstance(c, dict)
            and set(c) == KVP_CHANGE_KEYS
            and isinstance(c["key"], str)
            and (c["value"] is None or isinstance(c["value"], str))
            and c["state"] in KVP_STATES
            and (c["vm"] is None or (isinstance(c["vm"], str) and c["vm"] in names))
            for c in changes
        ):
            raise NotRecognised(
                f'{call.operation} params.changes must be a list of {{"vm": one of vm_names or null, "key": string, '
                '"value": string or null, "state": "present" or "absent"}'
            )
        result: dict[str, Any] = {
            "vms": [],
            "missing": [],
            "ambiguous": {},
            "named_twice": [],
            "refused": [],
            "vm_list_errors": [],
        }
        with self.host.lock:
            resolved = self.resolve(names)
            if resolved.missing or resolved.ambiguous:
                result.update(missing=resolved.missing, ambiguous=resolved.ambiguous)
                return result
            if resolved.repeated and any(change["vm"] is not None for change in changes):
                result["named_twice"] = [{"vm": e["vm"], "names": e["names"]} for e in resolved.repeated]
                return result
            plan = []
            for vm, requested in resolved.found:  # read and check everything before the first write
                read_error = self.read_error(vm)
                host_items = vm.kvp_host_items
                seen: set[str] = set()
                items = []
                for change in changes:
                    if change["vm"] is not None and fold(change["vm"]) != fold(vm.name):
                        continue
                    key, value, state = change["key"], change["value"], change["state"]
                    problem = kvp_text_problem(key, "key", limits["key_units"], limits["key_bytes"])
                    if key == "":
                        problem = {"reason": "key_empty", "limit": "at least 1 character"}
                    if problem is None and state == "present":
                        if value is None:
                            problem = {"reason": "value_missing", "limit": "a string for state present"}
                        else:
                            problem = kvp_text_problem(value, "value", limits["value_units"], limits["value_bytes"])
                    if problem is None and key in seen:
                        problem = {"reason": "key_twice", "limit": "one change per key and VM"}
                    seen.add(key)
                    if problem is not None:
                        result["refused"].append({"vm": vm.name, "key": key, **problem})
                        continue
                    if read_error is not None:
                        continue
                    before = host_items.get(key)
                    if before is None:
                        for existing in host_items:
                            if fold(existing) == fold(key):
                                result["refused"].append(
                                    {
                                        "vm": vm.name,
                                        "key": key,
                                        "reason": "key_case_conflict",
                                        "limit": f"the host item '{existing}' differs only in case",
                                    }
                                )
                    method = None
                    wish = None
                    if state == "absent":
                        if before is not None:
                            method = "RemoveKvpItems"
                    else:
                        wish = value
                        if before is None:
                            method = "AddKvpItems"
                        elif before != wish:
                            method = "ModifyKvpItems"
                    items.append({"key": key, "before": before, "wish": wish, "method": method})
                plan.append((vm, requested, items if read_error is None else [], read_error))
            if result["refused"]:
                return result
            for vm, requested, items, read_error in plan:
                result["vms"].append(
                    {
                        "name": vm.name,
                        "requested_name": requested,
                        "id": vm.id,
                        "state": None if read_error else vm.state,
                        "error": read_error,
                        "items": [self._kvp_apply(vm, item, call.check_mode) for item in items],
                    }
                )
        return result

    def _kvp_apply(self, vm: VirtualMachine, item: dict[str, Any], check_mode: bool) -> dict[str, Any]:
        entry = {"key": item["key"], "before": item["before"], "after": item["before"], "changed": False, "error": None}
        method = item["method"]
        if method is None:
            return entry
        if check_mode:
            entry.update(after=item["wish"], changed=True)
            return entry
        fault = self.faults.take(
            "kvp_error",
            lambda f: f.params["key"] == item["key"] and any(other is vm for other in self.host.find(f.params["vm"])),
        )
        if fault is not None:
            code = int(fault.params["code"])
        else:
            code = self.host.kvp_write(vm, method, item["key"], item["wish"] or "")
        if code != 0:
            entry["error"] = kvp_code_error(method, code, vm.name)
            return entry
        entry.update(after=item["wish"], changed=True)
        return entry
