"""Fault injection: LABFILE `faults:` entries and their consumption.

Each fault fires at most `times` times (unlimited when absent). Consumption is atomic so that
concurrent connections never fire a `times: 1` fault twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .catalog import BY_KEY
from .hvsocket import parse_guid

# type -> {parameter: required?}; `times` is accepted by every type.
FAULT_TYPES: dict[str, dict[str, bool]] = {
    "write_error": {"vm": True, "service": True, "message": False},
    "drop_connection": {"at": False},
    "delay": {"seconds": True},
    "access_denied": {},
    "registry_error": {"service_id": True, "message": False},
    # Reading one VM's integration services throws (the VM was deleted or became inaccessible after
    # Get-VM listed it): info and set answer the error on that VM and go on with the others.
    "vm_read_error": {"vm": True, "message": False},
    # The host's PowerShell runs in this language mode (ConstrainedLanguage under AppLocker/WDAC):
    # the bootstrap answers its one UNSUPPORTED line and runs nothing (protocol doc section 6).
    "language_mode": {"mode": True},
    # One Key-Value Pair Exchange item's AddKvpItems/ModifyKvpItems/RemoveKvpItems answers this WMI
    # return value (docs/dev/hyperv-facts.md section 8) and writes nothing; the other items go on.
    "kvp_error": {"vm": True, "key": True, "code": True},
    # Reading one VM's Key-Value Pair Exchange component (CIM) throws, in vm_inventory: its integration
    # services are still answered, its guest's items are not (protocol doc section 11).
    "kvp_read_error": {"vm": True, "message": False},
}
# Return values a kvp_error may answer: every failure AddKvpItems documents (not 0, not 4096).
KVP_ERROR_CODES = tuple(range(32768, 32779))
DROP_POINTS = ("receive", "send")
# System.Management.Automation.PSLanguageMode names (about_Language_Modes).
LANGUAGE_MODES = ("FullLanguage", "ConstrainedLanguage", "RestrictedLanguage", "NoLanguage")


@dataclass
class Fault:
    type: str
    params: dict[str, Any]
    times: int | None  # None: unlimited
    triggered: int = 0
    index: int = field(default=0)  # position in LABFILE, for messages

    def exhausted(self) -> bool:
        return self.times is not None and self.triggered >= self.times

    def describe(self) -> dict[str, Any]:
        left = None if self.times is None else self.times - self.triggered
        return {"type": self.type, **self.params, "times": self.times, "triggered": self.triggered, "times_left": left}


def parse_fault(entry: Any, index: int) -> Fault:
    """Validate one LABFILE fault entry; ValueError with a readable message when it is wrong."""
    if not isinstance(entry, dict):
        raise ValueError(f"faults[{index}]: must be a mapping with a 'type', got {entry!r}")
    ftype = entry.get("type")
    if ftype not in FAULT_TYPES:
        raise ValueError(f"faults[{index}]: unknown fault type {ftype!r}; known types: " + ", ".join(FAULT_TYPES))
    spec = FAULT_TYPES[ftype]
    unknown = sorted(set(entry) - set(spec) - {"type", "times"})
    if unknown:
        raise ValueError(
            f"faults[{index}] ({ftype}): unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(['type', 'times', *spec])}"
        )
    for name, required in spec.items():
        if required and name not in entry:
            raise ValueError(f"faults[{index}] ({ftype}): '{name}' is required")
    times = entry.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"faults[{index}] ({ftype}): 'times' must be a positive integer, got {times!r}")
    params = {k: v for k, v in entry.items() if k not in ("type", "times")}
    _check_params(ftype, params, index)
    return Fault(type=ftype, params=params, times=times, index=index)


def _check_params(ftype: str, params: dict[str, Any], index: int) -> None:
    where = f"faults[{index}] ({ftype})"
    if ftype == "write_error":
        if not isinstance(params["vm"], str):
            raise ValueError(f"{where}: 'vm' must be a string (quote it), got {params['vm']!r}")
        if params["service"] not in BY_KEY:
            raise ValueError(f"{where}: unknown service {params['service']!r}; valid keys: " + ", ".join(BY_KEY))
        if "message" in params and not isinstance(params["message"], str):
            raise ValueError(f"{where}: 'message' must be a string")
    elif ftype in ("vm_read_error", "kvp_read_error"):
        if not isinstance(params["vm"], str):
            raise ValueError(f"{where}: 'vm' must be a string (quote it), got {params['vm']!r}")
        if "message" in params and not isinstance(params["message"], str):
            raise ValueError(f"{where}: 'message' must be a string")
    elif ftype == "kvp_error":
        if not isinstance(params["vm"], str) or not isinstance(params["key"], str):
            raise ValueError(f"{where}: 'vm' and 'key' must be strings (quote them)")
        if params["code"] not in KVP_ERROR_CODES or isinstance(params["code"], bool):
            codes = ", ".join(map(str, KVP_ERROR_CODES))
            raise ValueError(f"{where}: 'code' must be one of {codes}, got {params['code']!r}")
    elif ftype == "language_mode":
        if params["mode"] not in LANGUAGE_MODES:
            raise ValueError(f"{where}: 'mode' must be one of {', '.join(LANGUAGE_MODES)}, got {params['mode']!r}")
    elif ftype == "registry_error":
        value = params["service_id"]
        guid = parse_guid(value) if isinstance(value, str) else None
        if guid is None:
            raise ValueError(
                f"{where}: 'service_id' must be a GUID like 00000AC9-FACB-11E6-BD58-64006A7986D3 "
                f"(quote it), got {value!r}"
            )
        params["service_id"] = guid
        if "message" in params and not isinstance(params["message"], str):
            raise ValueError(f"{where}: 'message' must be a string")
    elif ftype == "drop_connection":
        params.setdefault("at", "receive")
        if params["at"] not in DROP_POINTS:
            raise ValueError(f"{where}: 'at' must be one of {', '.join(DROP_POINTS)}, got {params['at']!r}")
    elif ftype == "delay":
        seconds = params["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"{where}: 'seconds' must be a number >= 0, got {seconds!r}")
        params["seconds"] = float(seconds)


class FaultSet:
    """The active faults of one endpoint."""

    def __init__(self, faults: list[Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = list(faults or [])

    def take(self, ftype: str, match: Callable[[Fault], bool] = lambda f: True) -> Fault | None:
        """Fire the first matching fault that has uses left; None when none applies."""
        with self._lock:
            for fault in self._faults:
                if fault.type == ftype and not fault.exhausted() and match(fault):
                    fault.triggered += 1
                    return fault
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self._faults]
