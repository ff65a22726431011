# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The request schema of every library operation, written once (docs/dev/powershell-protocol.md).

Internal to this collection: not a public API, it may change without notice.

The library runs under ``Set-StrictMode -Version 3.0`` and reads the request as the PSCustomObject
``ConvertFrom-Json`` makes in Windows PowerShell 5.1: reading a key that object lacks throws
(docs/dev/powershell-facts.md, "Strict mode"). So the controller always sends every key of the
operation's schema, null where the user gave nothing, and ``build_params`` is the only way a request's
params are made. A key marked ``optional`` is one the library reads through its optional-key helper
(``Get-RequestValue``), so an older controller that leaves it out still works; it is sent anyway.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field


class RequestSchemaError(ValueError):
    """A request the controller was about to send does not fit the schema (a bug in this collection)."""


@dataclass(frozen=True)
class Field:
    kind: str  # "string", "bool", "int", "list", "object"
    nullable: bool = False
    optional: bool = False  # read through Get-RequestValue; still always sent
    items: Field | None = None  # list elements
    keys: dict[str, Field] = field(default_factory=dict)  # object keys (all always sent)
    choices: tuple[t.Any, ...] = ()
    doc: str = ""


def _string(doc: str = "", **kwargs: t.Any) -> Field:
    return Field("string", doc=doc, **kwargs)


def list_of(doc: str, keys: dict[str, Field]) -> Field:
    """A list of objects, each with exactly these keys (all always sent)."""
    return Field("list", items=Field("object", keys=keys), doc=doc)


def _limits(doc: str, *names: str) -> Field:
    """The KVP size limits the library checks an item against: sent, so that they are stated once
    (module_utils/kvp_pool.py, ITEM_LIMITS)."""
    return Field("object", keys={name: Field("int") for name in names}, doc=doc)


# The VM names of the host operations, resolved by the library (Resolve-VmName) the same way for each.
_VM_NAMES_OR_EVERY_VM = Field("list", nullable=True, items=_string(), doc="VM names; null: every VM of the host")
_VM_NAMES = Field("list", items=_string(), doc="VM names, each resolved exactly (ordinal, case-insensitive)")

# Where each VM of vm_file_copy gets the file, and the host KVP item that records the last copy there.
_COPY_TARGETS = list_of(
    "one per VM (vm set), or one for every VM (vm null)",
    {
        "vm": _string("one of vm_names: this target is that VM's; null: every VM's", nullable=True, optional=True),
        "destination": _string("absolute path of the file in the guest (Copy-VMFile -DestinationPath)"),
        "create_dirs": Field("bool", doc="Copy-VMFile -CreateFullPath"),
        "record_key": _string("the host KVP item that holds the checksum of the last copy to destination"),
    },
)

SCHEMAS: dict[str, dict[str, Field]] = {
    "vm_integration_service_info": {
        "vm_names": _VM_NAMES_OR_EVERY_VM,
    },
    "vm_integration_service_set": {
        "vm_names": _VM_NAMES,
        "changes": list_of(
            "wanted states",
            {
                "guid": _string("IC GUID, upper case, no braces"),
                "enabled": Field("bool", doc="wanted Enabled"),
                "vm": _string(
                    "one of vm_names: the change is for that VM only; null: for every VM",
                    nullable=True,
                    optional=True,
                ),
            },
        ),
    },
    "hvsocket_service_info": {},
    "hvsocket_service_set": {
        "services": list_of(
            "registrations",
            {
                "service_id": _string("service GUID"),
                "name": _string("ElementName to register; null: only ensure the key", nullable=True),
                "state": _string("present or absent", choices=("present", "absent")),
            },
        ),
    },
    "guest_service_info": {
        "names": Field("list", items=_string(), doc="service names to report"),
    },
    "guest_service_set": {
        "services": list_of(
            "wanted service states",
            {
                "name": _string("service name (not localized)"),
                "state": _string(
                    "started, stopped, restarted; null: leave it",
                    nullable=True,
                    choices=("started", "stopped", "restarted"),
                ),
                "start_mode": _string(
                    "Automatic, Manual, Disabled; null: leave it",
                    nullable=True,
                    choices=("Automatic", "Manual", "Disabled"),
                ),
            },
        ),
        "time_provider_enabled": Field(
            "int", nullable=True, optional=True, choices=(0, 1), doc="VMICTimeProvider Enabled; null: leave it alone"
        ),
    },
    "guest_kvp_info": {},
    "guest_kvp_set": {
        "items": list_of(
            "wanted guest items (HKLM\\SOFTWARE\\Microsoft\\Virtual Machine\\Guest)",
            {
                "key": _string("value name under Guest, at most limits.key_units UTF-16 units; matched ignoring case"),
                "value": _string(
                    "REG_SZ text for present, at most limits.value_units UTF-16 units; null for absent",
                    nullable=True,
                ),
                "state": _string("present or absent", choices=("present", "absent")),
            },
        ),
        "limits": _limits(
            "at most this many UTF-16 code units of key and value reach the host", "key_units", "value_units"
        ),
    },
    "vm_kvp_info": {
        "vm_names": _VM_NAMES_OR_EVERY_VM,
        "kvp_guid": _string("GUID of the Key-Value Pair Exchange IC (ic_catalog), upper case, no braces"),
    },
    "vm_kvp_set": {
        "vm_names": _VM_NAMES,
        "changes": list_of(
            "wanted host items",
            {
                "vm": _string("one of vm_names: the change is for that VM only; null: for every VM", nullable=True),
                "key": _string("item key, exact (case-sensitive)"),
                "value": _string("wanted value for present; null for absent", nullable=True),
                "state": _string("present or absent", choices=("present", "absent")),
            },
        ),
        "limits": _limits(
            "what reaches every guest whole: UTF-16 code units and UTF-8 bytes of key and value",
            "key_units",
            "key_bytes",
            "value_units",
            "value_bytes",
        ),
    },
    "vm_inventory": {
        "kvp_guid": _string("GUID of the Key-Value Pair Exchange IC (ic_catalog), upper case, no braces"),
    },
    "vm_file_copy_plan": {
        "vm_names": _VM_NAMES,
        "targets": _COPY_TARGETS,
        "gsi_guid": _string("GUID of the Guest Service Interface IC (ic_catalog), upper case, no braces"),
        "source": _string(
            "remote_src: a file on the host, an absolute path taken literally, whose SHA-256 is read; "
            "null: the file comes from the controller",
            nullable=True,
        ),
    },
    "vm_file_copy": {
        "vm_names": Field("list", items=_string(), doc="the VMs to copy to (may be empty: only remove upload_dir)"),
        "targets": _COPY_TARGETS,
        "source": _string("the file on the host to copy (Copy-VMFile -SourcePath), an absolute path"),
        "upload_dir": _string(
            "the directory ansible's mkdtemp made for the controller's upload: removed with what it holds "
            "afterwards, whatever happened; null: remote_src, nothing is removed",
            nullable=True,
        ),
        "record_value": _string("the record's value after a successful copy: sha256:<lower-case hex of the source>"),
    },
}

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "bool": (bool,),
    "int": (int,),
    "list": (list,),
    "object": (dict,),
}


def _check(value: t.Any, spec: Field, where: str) -> None:
    if value is None:
        if not spec.nullable:
            raise RequestSchemaError("%s must not be null" % where)
        return
    wanted = _PYTHON_TYPES[spec.kind]
    if not isinstance(value, wanted) or (spec.kind == "int" and isinstance(value, bool)):
        raise RequestSchemaError("%s must be a %s, got %r" % (where, spec.kind, value))
    if spec.choices and value not in spec.choices:
        raise RequestSchemaError("%s must be one of %s, got %r" % (where, ", ".join(map(str, spec.choices)), value))
    # The kind was checked above: a list kind holds a list, an object kind a dict.
    if isinstance(value, list) and spec.items is not None:
        for index, item in enumerate(value):
            _check(item, spec.items, "%s[%d]" % (where, index))
    if isinstance(value, dict):
        _check_keys(value, spec.keys, where)


def _check_keys(value: dict[str, t.Any], keys: dict[str, Field], where: str) -> None:
    missing = [k for k in keys if k not in value]
    unknown = sorted(k for k in value if k not in keys)
    if missing or unknown:
        raise RequestSchemaError("%s: missing keys %s, unknown keys %s" % (where, missing, unknown))
    for key, spec in keys.items():
        _check(value[key], spec, "%s.%s" % (where, key))


def validate_params(operation: str, params: dict[str, t.Any]) -> None:
    """RequestSchemaError unless ``params`` has exactly the schema's keys, each of the right type."""
    if operation not in SCHEMAS:
        raise RequestSchemaError("unknown operation %r" % operation)
    _check_keys(params, SCHEMAS[operation], operation)


def _complete(value: t.Any, spec: Field) -> t.Any:
    """``value`` with every object key of ``spec`` present (None where missing)."""
    if value is None:
        return None
    if spec.kind == "list" and spec.items is not None and isinstance(value, list):
        return [_complete(item, spec.items) for item in value]
    if spec.kind == "object" and isinstance(value, dict):
        return {
            **{k: None for k in spec.keys},
            **{k: _complete(v, spec.keys[k]) if k in spec.keys else v for k, v in value.items()},
        }
    return value


def build_params(operation: str, **values: t.Any) -> dict[str, t.Any]:
    """The params of ``operation``: every key of its schema, null where not given, checked."""
    if operation not in SCHEMAS:
        raise RequestSchemaError("unknown operation %r" % operation)
    schema = SCHEMAS[operation]
    unknown = sorted(k for k in values if k not in schema)
    if unknown:
        raise RequestSchemaError("%s: unknown keys %s" % (operation, unknown))
    params = {key: _complete(values.get(key), spec) for key, spec in schema.items()}
    validate_params(operation, params)
    return params
