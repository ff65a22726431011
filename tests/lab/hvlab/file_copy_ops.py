"""The host library's Guest Service Interface operations (protocol doc section 10): vm_file_copy_plan and
vm_file_copy, carried out on the host model. Copy-VMFile is modelled as far as sources describe it
(docs/dev/hyperv-facts.md section 11):

- it copies one host file, named by its full path (read here from the host's modelled file system,
  hvlab/host_files.py), to a running VM whose Guest Service Interface is enabled, and waits for the guest;
- a Linux guest gets it through the real hv_fcopy_daemon (FcopyChannel: START, the data in fragments,
  COMPLETE); a Windows guest double's vmicguestinterface writes it into the guest's modelled file system;
- a guest that refuses, a disabled Guest Service Interface, a VM that is not running and a guest half that
  does not answer all make Copy-VMFile throw a VirtualizationException whose text holds "failed to initiate
  copying files to the guest" and, where the guest answered, its HRESULT (lis-test FCOPY_file_exists.ps1
  and FCOPY_negative.ps1 match on that fragment). The rest of the wording is the lab's (UNVERIFIED).

Both paths may hold environment variables that the host and the guest expand (the
Msvm_CopyFileToGuestSettingData page): the lab does not model that, so a request with a %NAME% in either
path is refused as not recognised; the controller never sends one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .fcopy_channel import HV_E_FAIL, HV_ERROR_ALREADY_EXISTS, HV_ERROR_DISK_FULL, FcopyError
from .host_files import DotNetError, HostFiles, HostPathUnsupported
from .hyperv_host import fold
from .protocol import LibraryCall, NotRecognised, OperationError

if TYPE_CHECKING:
    from .hyperv_host import VirtualMachine
    from .hyperv_ops import HostOperations

VIRTUALIZATION_EXCEPTION = "Microsoft.HyperV.PowerShell.VirtualizationException"
METHOD_INVOCATION = "System.Management.Automation.MethodInvocationException"
ENVIRONMENT_VARIABLE = re.compile(r"%[^%]+%")
# The guest's answers as the host words them (Win32 system error texts of the HRESULTs the guest sends).
HRESULT_TEXT = {
    HV_E_FAIL: "Unspecified error",
    HV_ERROR_ALREADY_EXISTS: "The file exists.",
    HV_ERROR_DISK_FULL: "There is not enough space on the disk.",
    0x80070003: "The system cannot find the path specified.",
}
GSI_KEY = "guest_service_interface"
PLAN_KEYS = ("vm_names", "targets", "gsi_guid", "source")
COPY_KEYS = ("vm_names", "targets", "source", "upload_dir", "record_value")
TARGET_KEYS = {"vm", "destination", "create_dirs", "record_key"}


def check_keys(params: dict[str, Any], required: tuple[str, ...], operation: str) -> None:
    from .hyperv_ops import _check_keys  # hyperv_ops builds its table from this module's

    _check_keys(params, required, operation)


def vm_names(value: Any, operation: str, allow_null: bool) -> list[str] | None:
    from .hyperv_ops import _names

    return _names(value, operation, allow_null)


def kvp_code_error(method: str, code: int, vm_name: str) -> dict[str, Any]:
    from .hyperv_ops import kvp_code_error as error

    return error(method, code, vm_name)


def _string(params: dict[str, Any], key: str, operation: str, nullable: bool = False) -> str | None:
    value = params[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise NotRecognised(f"{operation} params.{key} must be a string" + (" or null" if nullable else ""))
    if key in ("source", "destination") and ENVIRONMENT_VARIABLE.search(value):
        raise NotRecognised(f"{operation} params.{key} holds %NAME%, which the host would expand: not modelled")
    return value


def _targets(params: dict[str, Any], names: list[str], operation: str) -> list[dict[str, Any]]:
    """params.targets as the library reads them: each {vm: one of vm_names or null, destination, create_dirs,
    record_key}; %NAME% in a destination is not modelled (see the module docstring)."""
    targets = params["targets"]
    if not isinstance(targets, list) or not all(
        isinstance(t, dict)
        and set(t) == TARGET_KEYS
        and (t["vm"] is None or (isinstance(t["vm"], str) and t["vm"] in names))
        and isinstance(t["destination"], str)
        and isinstance(t["create_dirs"], bool)
        and isinstance(t["record_key"], str)
        for t in targets
    ):
        raise NotRecognised(
            f'{operation} params.targets must be a list of {{"vm": one of vm_names or null, "destination": string, '
            '"create_dirs": bool, "record_key": string}'
        )
    if any(ENVIRONMENT_VARIABLE.search(t["destination"]) for t in targets):
        raise NotRecognised(f"{operation} params.targets[].destination holds %NAME%, which the guest would expand")
    return targets


def select_target(targets: list[dict[str, Any]], requested: str | None) -> dict[str, Any] | None:
    """Select-CopyTarget: the VM's own target (its requested name, ignoring case), else the common one."""
    common = None
    for target in targets:
        if target["vm"] is None:
            common = target
        elif requested is not None and fold(target["vm"]) == fold(requested):
            return target
    return common


def _answer(**own: Any) -> dict[str, Any]:
    """An operation's answer before anything is known: the keys both operations share, then its own."""
    return {"vms": [], "missing": [], "ambiguous": {}, "named_twice": [], "vm_list_errors": [], **own}


def _no_target(vm: VirtualMachine) -> dict[str, Any]:
    return {
        "type": "System.ArgumentException",
        "message": f"the request has no target for VM '{vm.name}'",
        "category": "NotSpecified",
        "vm": vm.name,
        "service": None,
    }


def _method_error(method: str, exc: DotNetError) -> dict[str, Any]:
    """A .NET method's exception as PowerShell wraps it (MethodInvocationException), through Get-ErrorRecordData."""
    return {
        "type": METHOD_INVOCATION,
        "message": f'Exception calling "{method}" with "1" argument(s): "{exc.message}"',
        "category": "NotSpecified",
        "vm": None,
        "service": None,
    }


def copy_error(vm: VirtualMachine, source: str, destination: str, status: int) -> dict[str, Any]:
    """Copy-VMFile's VirtualizationException for one VM, as Get-ErrorRecordData answers it."""
    reason = f"{HRESULT_TEXT.get(status, 'Unspecified error')} (0x{status:08X})"
    message = (
        "Failed to initiate copying files to the guest.\r\n"
        f"Failed to copy the source file '{source}' to the destination '{destination}' in the guest.\r\n"
        f"'{vm.name}' failed to initiate copying files to the guest: {reason}. (Virtual machine ID {vm.id.upper()})"
    )
    return {
        "type": VIRTUALIZATION_EXCEPTION,
        "message": message,
        "category": "NotSpecified",
        "vm": vm.name,
        "service": None,
    }


class FileCopyOperations:
    """vm_file_copy_plan and vm_file_copy on the host model, next to HostOperations (whose VM resolution,
    read faults and KVP writes they share)."""

    def __init__(self, ops: HostOperations) -> None:
        self.ops = ops
        self.host = ops.host

    @property
    def files(self) -> HostFiles:
        files = getattr(self.host, "files", None)
        if files is None:
            raise NotRecognised("this lab host models no file system (HyperVHost.files is not set)")
        return files

    def table(self) -> dict[str, Any]:
        return {"vm_file_copy_plan": self.plan, "vm_file_copy": self.copy}

    # -- vm_file_copy_plan --------------------------------------------------------------------------
    def plan(self, call: LibraryCall) -> dict[str, Any]:
        params = call.params
        check_keys(params, PLAN_KEYS, call.operation)
        names = vm_names(params["vm_names"], call.operation, allow_null=False)
        assert names is not None
        gsi_guid = (_string(params, "gsi_guid", call.operation) or "").strip("{}").upper()
        targets = _targets(params, names, call.operation)
        source = _string(params, "source", call.operation, nullable=True)
        result = _answer(source=None, source_error=None)
        if source is not None:
            try:  # Get-HostFileDigest: File.OpenRead, then the stream's length
                result["source"] = {"sha256": self.files.sha256(source), "size": self.files.size(source)}
            except DotNetError as exc:
                result["source_error"] = _method_error("OpenRead", exc)
            except HostPathUnsupported as exc:
                raise NotRecognised(f"{call.operation}: {exc}") from exc
        with self.host.lock:
            found = self._resolve_set(names, targets, result)
            for vm, requested in found:
                entry: dict[str, Any] = {
                    "name": vm.name,
                    "requested_name": requested,
                    "id": vm.id,
                    "state": None,
                    "gsi_enabled": None,
                    "gsi_status": None,
                    "recorded": None,
                    "error": None,
                }
                target = select_target(targets, requested)
                entry["error"] = _no_target(vm) if target is None else self.ops.read_error(vm)
                if entry["error"] is None and target is not None:
                    ic = self.host.service_by_guid(vm, gsi_guid)
                    entry["state"] = vm.state
                    if ic is not None:
                        entry["gsi_enabled"] = ic.enabled
                        entry["gsi_status"] = self.host.ic_status(vm, ic)[0]
                    entry["recorded"] = vm.kvp_host_items.get(target["record_key"])
                result["vms"].append(entry)
        return result

    def _resolve_set(
        self, names: list[str], targets: list[dict[str, Any]], result: dict[str, Any]
    ) -> list[tuple[VirtualMachine, str | None]]:
        """Resolve-SetVm: the VMs, or none with missing / ambiguous / named_twice answered on result."""
        resolved = self.ops.resolve(names)
        if resolved.missing or resolved.ambiguous:
            result.update(missing=resolved.missing, ambiguous=resolved.ambiguous)
            return []
        if resolved.repeated and any(target["vm"] is not None for target in targets):
            result["named_twice"] = [{"vm": e["vm"], "names": e["names"]} for e in resolved.repeated]
            return []
        return list(resolved.found)

    # -- vm_file_copy -------------------------------------------------------------------------------
    def copy(self, call: LibraryCall) -> dict[str, Any]:
        params = call.params
        check_keys(params, COPY_KEYS, call.operation)
        names = vm_names(params["vm_names"], call.operation, allow_null=False)
        assert names is not None
        source = _string(params, "source", call.operation) or ""
        targets = _targets(params, names, call.operation)
        record_value = _string(params, "record_value", call.operation) or ""
        upload_dir = _string(params, "upload_dir", call.operation, nullable=True)
        result = _answer(source_removed=None, remove_error=None)
        try:
            with self.host.lock:
                found = self._resolve_set(names, targets, result)
            plan = [(vm, requested, select_target(targets, requested)) for vm, requested in found]
            for vm, _requested, target in plan:
                if target is None:  # the library throws while it builds its plan: nothing was copied
                    raise OperationError("System.ArgumentException", _no_target(vm)["message"])
            if not call.check_mode:
                for vm, requested, target in plan:  # outside the host lock: a guest takes a while
                    assert target is not None
                    result["vms"].append(self._copy_one(vm, requested, source, target, record_value))
        finally:
            if upload_dir is not None and not call.check_mode:
                result.update(self._remove(upload_dir))
        self.host.flush_kvp()
        return result

    def _copy_one(
        self, vm: VirtualMachine, requested: str | None, source: str, target: dict[str, Any], record_value: str
    ) -> dict[str, Any]:
        record_key = target["record_key"]
        destination = target["destination"]
        entry: dict[str, Any] = {
            "name": vm.name,
            "requested_name": requested,
            "id": vm.id,
            "copied": False,
            "recorded": False,
            "error": None,
        }
        error = self._copy_vm_file(vm, source, destination, target["create_dirs"])
        if error is not None:
            entry["error"] = error
            return entry
        entry["copied"] = True
        self.host.counters.add("file_copies")
        self.host.counters.add("writes")
        with self.host.lock:
            method = "ModifyKvpItems" if record_key in vm.kvp_host_items else "AddKvpItems"
            code = self.host.kvp_write(vm, method, record_key, record_value)
        if code != 0:
            entry["error"] = kvp_code_error(method, code, vm.name)
            return entry
        entry["recorded"] = True
        return entry

    def _copy_vm_file(
        self, vm: VirtualMachine, source: str, destination: str, create_dirs: bool
    ) -> dict[str, Any] | None:
        """Hyper-V\\Copy-VMFile -VM vm -SourcePath source -DestinationPath destination -FileSource Host -Force
        [-CreateFullPath]: None when the guest has the file, else the error the cmdlet throws."""
        try:
            data = self.files.read_bytes(source)
        except DotNetError as exc:
            # The host reads the source (Msvm_CopyFileToGuestSettingData: accessible to the host).
            return copy_error(vm, source, destination, 0x80070002 if "FileNotFound" in exc.type else HV_E_FAIL)
        except HostPathUnsupported as exc:
            raise NotRecognised(f"vm_file_copy: {exc}") from exc
        with self.host.lock:
            ic = next((ic for ic in vm.services.values() if ic.key == GSI_KEY), None)
            ready = vm.state == "Running" and ic is not None and ic.enabled
            guest = vm.guest
        if not ready:
            return copy_error(vm, source, destination, HV_E_FAIL)
        receive = getattr(guest, "receive_file", None)
        if receive is None:  # a static guest: nothing in it answers the copy
            return copy_error(vm, source, destination, HV_E_FAIL)
        try:
            # The source's file name goes with it: a destination that is an existing directory gets it there.
            name = source.replace("/", "\\").rsplit("\\", 1)[-1]
            status = int(receive(data, destination, overwrite=True, create_path=create_dirs, source_name=name))
        except FcopyError:
            status = HV_E_FAIL  # no daemon registered, or no answer in time (hv_fcopy.c)
        return None if status == 0 else copy_error(vm, source, destination, status)

    def _remove(self, upload_dir: str) -> dict[str, Any]:
        """Remove-CopySource: Test-Path, Remove-Item -LiteralPath -Recurse -Force, Test-Path again."""
        try:
            if self.files.exists(upload_dir):
                self.files.remove_tree(upload_dir)
            return {"source_removed": not self.files.exists(upload_dir), "remove_error": None}
        except DotNetError as exc:
            error = {"type": exc.type, "message": exc.message, "category": "NotSpecified", "vm": None, "service": None}
            return {"source_removed": False, "remove_error": error}
        except HostPathUnsupported as exc:
            raise NotRecognised(f"vm_file_copy: {exc}") from exc
