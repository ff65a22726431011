"""LABFILE (YAML) reading and validation. Every mistake is reported with where it is, because a
lab that silently ignores a typo ('integration_service:') would test something else."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .catalog import BY_KEY, LANGUAGES, SERVICE_BY_NAME, SERVICE_STATUSES, START_MODES
from .faults import Fault, parse_fault
from .host_files import LAB_DRIVE, DotNetError, HostPathUnsupported, parse_path
from .hvsocket import MAX_KEY_NAME, registry_fold, subkey_guid
from .hyperv_host import GUEST_KINDS, VM_STATES, VmSpec, fold
from .protocol import SCRIPT_REFUSING_MODES

TOP_KEYS = ("host", "vms", "hvsocket_services", "faults")
HOST_KEYS = ("name", "language", "guest_answer_delay", "files", "connection")
# How the inventory reaches the host and its Windows guests (DESIGN.md: host.connection).
CONNECTIONS = ("winrm", "psrp", "ssh")
HOST_FILE_KEYS = ("path", "text", "size")
MAX_SEED_SIZE = 1 << 30  # host.files[].size: at most 1 GiB
VM_KEYS = (
    "name",
    "state",
    "guest",
    "integration_services",
    "integration_services_version",
    "integration_services_state",
    "guest_services",
    "guest_answer_delay",
    "kvp_host_items",
)
GUEST_SERVICE_KEYS = ("status", "start_mode")
ABSENT = "absent"  # integration_services value: the VM has no such IC (e.g. old config version)


class LabfileError(ValueError):
    pass


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader (libyaml when present: 1000 VMs parse in milliseconds) with YAML 1.2 booleans.
    YAML 1.1 would read `state: Off` as false; only true/false are booleans here."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Loader.yaml_implicit_resolvers.setdefault(_first, []).append(
        ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )


@dataclass
class HostFileSpec:
    """`host.files[]`: a file of the Hyper-V host at lab start: `text` (stored as UTF-8, no BOM) or
    `size` bytes of deterministic content (byte i is i mod 251)."""

    path: str
    text: str | None = None
    size: int | None = None

    def chunks(self) -> Iterator[bytes]:
        if self.text is not None:
            yield self.text.encode("utf-8")
            return
        block = bytes(range(251)) * 4096  # a whole number of periods: every block starts at i mod 251 == 0
        left = self.size or 0
        while left > 0:
            yield block[:left] if left < len(block) else block
            left -= len(block)


@dataclass
class LabSpec:
    host_name: str
    language: str
    vms: list[VmSpec] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # Extra GuestCommunicationServices subkeys: name as spelled -> ElementName (None: no value).
    hvsocket_services: dict[str, str | None] = field(default_factory=dict)
    host_files: list[HostFileSpec] = field(default_factory=list)
    connection: str = "winrm"  # winrm | psrp | ssh: how the inventory reaches the host and its Windows guests


def read_yaml(text: str) -> Any:
    """YAML with the lab's loader (YAML 1.2 booleans); yaml.YAMLError when malformed."""
    return yaml.load(text, Loader=_Loader)


def load(path: str | Path) -> LabSpec:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LabfileError(f"cannot read LABFILE {path}: {exc}") from exc
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        raise LabfileError(f"LABFILE {path} is not valid YAML: {exc}") from exc
    try:
        return parse(data)
    except LabfileError as exc:
        raise LabfileError(f"LABFILE {path}: {exc}") from exc


def _unknown(found: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    extra = [str(k) for k in found if k not in allowed]
    if extra:
        raise LabfileError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed: {', '.join(allowed)}")


def parse(data: Any) -> LabSpec:
    if not isinstance(data, dict):
        raise LabfileError("the top level must be a mapping with host, vms and optional hvsocket_services, faults")
    _unknown(data, TOP_KEYS, "top level")
    host = data.get("host") or {}
    if not isinstance(host, dict):
        raise LabfileError("host: must be a mapping")
    _unknown(host, HOST_KEYS, "host")
    name = host.get("name", "hv01")
    if not isinstance(name, str) or not name.strip():
        raise LabfileError(f"host.name: must be a non-empty string, got {name!r}")
    language = host.get("language", "en-US")
    if language not in LANGUAGES:
        raise LabfileError(f"host.language: {language!r} is not one of {', '.join(LANGUAGES)}")
    connection = host.get("connection", "winrm")
    if connection not in CONNECTIONS:
        raise LabfileError(f"host.connection: {connection!r} is not one of {', '.join(CONNECTIONS)}")
    spec = LabSpec(host_name=name, language=language, connection=connection)
    delay = _seconds(host.get("guest_answer_delay", 0), "host.guest_answer_delay")
    spec.host_files = _parse_host_files(host.get("files"), "host.files")

    vms = data.get("vms") or []
    if not isinstance(vms, list):
        raise LabfileError("vms: must be a list")
    for index, entry in enumerate(vms):
        vm = _parse_vm(entry, f"vms[{index}]")
        if "guest_answer_delay" not in entry:
            vm.guest_answer_delay = delay  # the host-level value is every VM's default
        spec.vms.append(vm)

    spec.hvsocket_services = _parse_hvsocket_services(data.get("hvsocket_services"), "hvsocket_services")

    faults = data.get("faults") or []
    if not isinstance(faults, list):
        raise LabfileError("faults: must be a list")
    known = {fold(vm.name) for vm in spec.vms}
    for index, entry in enumerate(faults):
        try:
            fault = parse_fault(entry, index)
        except ValueError as exc:
            raise LabfileError(str(exc)) from exc
        if (
            fault.type in ("write_error", "vm_read_error", "kvp_error", "kvp_read_error")
            and fold(fault.params["vm"]) not in known
        ):
            raise LabfileError(f"faults[{index}] ({fault.type}): no VM named {fault.params['vm']!r}")
        if fault.type == "language_mode" and fault.params["mode"] in SCRIPT_REFUSING_MODES and connection != "psrp":
            raise LabfileError(
                f"faults[{index}] (language_mode): {fault.params['mode']} needs host.connection psrp: only a PSRP "
                "session configuration (JEA) runs in it; the powershell.exe that winrm and ssh start runs in "
                "FullLanguage or ConstrainedLanguage"
            )
        spec.faults.append(fault)
    return spec


def _seconds(value: Any, where: str) -> float:
    """A number of seconds >= 0 (int or float; not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise LabfileError(f"{where}: must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _parse_vm(entry: Any, where: str) -> VmSpec:
    if not isinstance(entry, dict):
        raise LabfileError(f"{where}: must be a mapping")
    _unknown(entry, VM_KEYS, where)
    name = entry.get("name")
    if not isinstance(name, str) or name == "":
        raise LabfileError(f"{where}.name: must be a non-empty string (quote it), got {name!r}")
    state = entry.get("state", "Running")
    if state not in VM_STATES:
        raise LabfileError(f"{where}.state: {state!r} is not one of {', '.join(VM_STATES)}")
    guest = entry.get("guest", "none")
    if guest not in GUEST_KINDS:
        raise LabfileError(f"{where}.guest: {guest!r} is not one of {', '.join(GUEST_KINDS)}")
    services = entry.get("integration_services") or {}
    if not isinstance(services, dict):
        raise LabfileError(f"{where}.integration_services: must be a mapping of IC key to bool")
    wishes: dict[str, bool | None] = {}
    for key, value in services.items():
        if key not in BY_KEY:
            raise LabfileError(f"{where}.integration_services: unknown IC key {key!r}; valid keys: {', '.join(BY_KEY)}")
        if value == ABSENT:
            wishes[key] = None
        elif isinstance(value, bool):
            wishes[key] = value
        else:
            raise LabfileError(f"{where}.integration_services.{key}: must be true, false or '{ABSENT}', got {value!r}")
    vm = VmSpec(name=name, state=state, guest=guest, integration_services=wishes)
    if "guest_answer_delay" in entry:
        vm.guest_answer_delay = _seconds(entry["guest_answer_delay"], f"{where}.guest_answer_delay")
    if "guest_services" in entry:
        vm.guest_services = _parse_guest_services(entry["guest_services"], guest, f"{where}.guest_services")
    if "kvp_host_items" in entry:
        vm.kvp_host_items = _parse_kvp_host_items(entry["kvp_host_items"], f"{where}.kvp_host_items")
    for key in ("integration_services_version", "integration_services_state"):
        if key in entry:
            value = entry[key]
            if value is not None and not isinstance(value, str):
                raise LabfileError(f"{where}.{key}: must be a string or null (quote it), got {value!r}")
            setattr(vm, key, value)
            setattr(vm, "version_given" if key.endswith("version") else "state_given", True)
    return vm


def _parse_kvp_host_items(value: Any, where: str) -> dict[str, str]:
    """`kvp_host_items: {key: value}`: the VM's Key-Value Pair Exchange host items (HostExchangeItems)
    at lab start. Keys are exact (case-sensitive); both must be strings (quote them)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LabfileError(f"{where}: must be a mapping of key to value")
    for key, item in value.items():
        if not isinstance(key, str) or key == "" or not isinstance(item, str):
            raise LabfileError(f"{where}: {key!r}: keys and values must be strings (quote them), keys non-empty")
    return dict(value)


def _parse_guest_services(value: Any, guest: str, where: str) -> dict[str, dict[str, str]]:
    """`guest_services: {vmicvss: {status: Stopped, start_mode: Disabled}}`: the Windows guest's
    services at lab start, where they differ from the defaults (catalog.WINDOWS_SERVICES)."""
    if guest != "windows":
        raise LabfileError(f"{where}: only a VM with guest: windows has Windows services (this one is {guest!r})")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LabfileError(f"{where}: must be a mapping of service name to {{status, start_mode}}")
    result: dict[str, dict[str, str]] = {}
    for name, wish in value.items():
        if name not in SERVICE_BY_NAME:
            raise LabfileError(f"{where}: unknown service {name!r}; valid names: {', '.join(SERVICE_BY_NAME)}")
        if not isinstance(wish, dict):
            raise LabfileError(f"{where}.{name}: must be a mapping with status and/or start_mode")
        _unknown(wish, GUEST_SERVICE_KEYS, f"{where}.{name}")
        for key, allowed in (("status", SERVICE_STATUSES), ("start_mode", START_MODES)):
            if key in wish and wish[key] not in allowed:
                raise LabfileError(f"{where}.{name}.{key}: {wish[key]!r} is not one of {', '.join(allowed)}")
        result[name] = dict(wish)
    return result


def _parse_hvsocket_services(value: Any, where: str) -> dict[str, str | None]:
    """`hvsocket_services: {GUID or subkey name: ElementName}`: subkeys of the host's
    GuestCommunicationServices key besides the built-in ones (hvsocket.BUILTIN_SERVICES). A key is
    used as the subkey name exactly as written (any case, braces or not); ElementName null means the
    subkey has no ElementName value. An entry for a built-in GUID replaces that built-in entry."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LabfileError(f"{where}: must be a mapping of service GUID (or subkey name) to ElementName")
    result: dict[str, str | None] = {}
    seen: dict[str, str] = {}  # GUID or folded name -> the key that claimed it
    for key, name in value.items():
        if not isinstance(key, str) or not key.strip():
            raise LabfileError(f"{where}: subkey name {key!r} must be a non-empty string (quote it)")
        if "\\" in key or len(key) > MAX_KEY_NAME:
            raise LabfileError(
                f"{where}: {key!r} is not a registry key name (no backslash, at most {MAX_KEY_NAME} characters)"
            )
        if name is not None and not isinstance(name, str):
            raise LabfileError(f"{where}.{key}: ElementName must be a string or null (quote it), got {name!r}")
        guid = subkey_guid(key)
        claim = guid if guid is not None else registry_fold(key)
        if claim in seen:
            what = f"service {guid}" if guid is not None else "registry key (names are case-insensitive)"
            raise LabfileError(f"{where}: {seen[claim]!r} and {key!r} are the same {what}")
        seen[claim] = key
        result[key] = name
    return result


def _parse_host_files(value: Any, where: str) -> list[HostFileSpec]:
    """`host.files: [{path: 'C:\\dir\\file', text: ...} | {path: ..., size: N}]`: files of the Hyper-V
    host at lab start (hvlab/host_files.py; directories on the way are made). The path follows the
    host's rules: absolute, on C:, no character Windows refuses; two entries may not name the same
    file (names compare case-insensitively) nor a file where another entry needs a directory."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise LabfileError(f"{where}: must be a list of {{path, text}} or {{path, size}}")
    result: list[HostFileSpec] = []
    seen: dict[tuple[str, ...], int] = {}
    for index, entry in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise LabfileError(f"{here}: must be a mapping with path and text or size")
        _unknown(entry, HOST_FILE_KEYS, here)
        path = entry.get("path")
        if not isinstance(path, str):
            raise LabfileError(f"{here}.path: must be a string (quote it), got {path!r}")
        try:
            parsed = parse_path(path)
        except DotNetError as exc:
            raise LabfileError(f"{here}.path: {path!r}: {exc.type}: {exc.message}") from exc
        except HostPathUnsupported as exc:
            raise LabfileError(f"{here}.path: {exc}") from exc
        if parsed.drive.upper() != LAB_DRIVE or not parsed.parts or parsed.trailing_separator:
            raise LabfileError(f"{here}.path: {path!r} must name a file on drive C: (C:\\dir\\file)")
        if ("text" in entry) == ("size" in entry):
            raise LabfileError(f"{here}: give exactly one of text and size")
        spec = HostFileSpec(parsed.full)
        if "text" in entry:
            if not isinstance(entry["text"], str):
                raise LabfileError(f"{here}.text: must be a string (quote it), got {entry['text']!r}")
            spec.text = entry["text"]
        else:
            size = entry["size"]
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SEED_SIZE:
                raise LabfileError(f"{here}.size: must be an integer from 0 to {MAX_SEED_SIZE}, got {size!r}")
            spec.size = size
        key = parsed.key
        for other_key, other in seen.items():
            if other_key == key:
                raise LabfileError(f"{here}.path: {path!r} is the same file as {where}[{other}] (case-insensitive)")
            shorter, longer = sorted((key, other_key), key=len)
            if longer[: len(shorter)] == shorter:
                raise LabfileError(
                    f"{here}.path: {path!r} and {where}[{other}] need one name as a file and a directory"
                )
        seen[key] = index
        result.append(spec)
    return result
