"""The host registry key GuestCommunicationServices: Hyper-V socket service registrations
(docs/dev/hyperv-facts.md section 4, protocol doc section 8). One subkey per service, named after its GUID,
with a REG_SZ value ElementName (the friendly name). Sources for the built-in entries and the
registry order are in tests/lab/README.md ("Hyper-V socket registrations").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

REGISTRY_PATH = (
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Virtualization\\GuestCommunicationServices"
)
# What a real host carries before anybody registers a service: subkey name as spelled -> ElementName.
BUILTIN_SERVICES: dict[str, str] = {
    "999E53D4-3D5C-4C3E-8779-BED06EC056E1": "VM Session Service",  # PowerShell Direct, first connection
    "A5201C21-2770-4C11-A68E-F182EDB29220": "VM Session Service-2",  # PowerShell Direct, second connection
}
MAX_KEY_NAME = 255  # registry key name limit (characters)

_HEX = "[0-9A-Fa-f]"
_FORMAT_D = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")
_FORMAT_N = re.compile(f"{_HEX}{{32}}")


def parse_guid(text: str) -> str | None:
    """What [guid]::Parse accepts, as upper case XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX; None when it
    would throw. Formats D, N, B ({D}) and P ((D)), white space around allowed. The X format
    ({0x...,...}) is not accepted here (lab simplification)."""
    value = text.strip()
    if len(value) >= 2 and (value[0], value[-1]) in (("{", "}"), ("(", ")")):
        value = value[1:-1]
    elif _FORMAT_N.fullmatch(value):
        value = f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    if not _FORMAT_D.fullmatch(value):
        return None
    return value.upper()


def subkey_guid(name: str) -> str | None:
    """The GUID a subkey name stands for (case-insensitive, braces stripped), None if it is no GUID."""
    return parse_guid(name.strip("{}"))


def registry_fold(name: str) -> str:
    """Registry key names compare case-insensitively (upper-case, char by char)."""
    return "".join(u if len(u := ch.upper()) == 1 else ch for ch in name)


@dataclass(frozen=True)
class Change:
    """One write to the key: create a subkey (with ElementName unless name is None), set
    ElementName, or remove a subkey."""

    kind: str  # create | set_name | remove
    key: str  # subkey name as spelled
    name: str | None = None


class ServiceRegistry:
    """Subkeys of GuestCommunicationServices: name as spelled -> ElementName (None: no such value).

    Not locked: the host model calls it with its lock held. Enumeration is in registry order
    (subkey names sorted case-insensitively), not in creation order.
    """

    def __init__(self, entries: Mapping[str, str | None] | None = None) -> None:
        self._keys: dict[str, str | None] = dict(entries or {})

    def copy(self) -> ServiceRegistry:
        return ServiceRegistry(self._keys)

    def entries(self) -> list[tuple[str, str | None]]:
        return sorted(self._keys.items(), key=lambda item: (registry_fold(item[0]), item[0]))

    def find(self, guid: str) -> str | None:
        """The subkey that stands for this GUID (upper case D format), None when there is none."""
        for key in self._keys:
            if subkey_guid(key) == guid:
                return key
        return None

    def find_name(self, name: str) -> str | None:
        """The subkey with this name (case-insensitive), as spelled."""
        wanted = registry_fold(name)
        return next((key for key in self._keys if registry_fold(key) == wanted), None)

    def services(self) -> dict[str, str | None]:
        """GUID (upper case, no braces) -> ElementName, in registry order; non-GUID subkeys left out."""
        result: dict[str, str | None] = {}
        for key, name in self.entries():
            guid = subkey_guid(key)
            if guid is not None:
                result.setdefault(guid, name)
        return result

    def plan(self, guid: str, name: str | None, state: str) -> Change | None:
        """The one write that brings this GUID's entry to the wish, None when it is already there.
        present: create the subkey (named after the GUID) when missing, set ElementName when `name`
        is given and differs (exactly, case-sensitively); absent: remove that subkey only."""
        key = self.find(guid)
        if state == "absent":
            return None if key is None else Change("remove", key)
        if key is None:
            return Change("create", guid, name)
        if name is not None and self._keys[key] != name:
            return Change("set_name", key, name)
        return None

    def apply(self, change: Change) -> None:
        if change.kind == "remove":
            del self._keys[change.key]
        elif change.kind in ("create", "set_name"):
            self._keys[change.key] = change.name
        else:
            raise ValueError(f"unknown registry change {change.kind!r}")

    def state_of(self, guid: str) -> dict[str, bool | str | None]:
        """`{"present", "name"}` as the protocol's before/after report them."""
        key = self.find(guid)
        return {"present": key is not None, "name": None if key is None else self._keys[key]}
