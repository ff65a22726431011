# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Normalising what users give the host modules: VM names and IC -> state mappings.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.parsing.convert_bool import BOOLEANS_FALSE, BOOLEANS_TRUE

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import (
    UnknownIntegrationServiceError,
    resolve_key,
)


def vm_names(value: t.Any, option: str = "name", allow_empty: bool = False) -> list[str]:
    """One VM name or a list of them, in order, exact duplicates dropped.

    A string is always ONE name: commas are legal in Hyper-V VM names, so they are not separators.
    A number is the VM named by its digits (YAML reads ``name: 2019`` as an integer). Names that
    differ only in case are left to the host, which knows whether they are one VM.
    """
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ArgumentError("%s must be a VM name or a list of VM names, got %s" % (option, type(value).__name__))
    names: list[str] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            raise ArgumentError("%s: every VM name must be a string, got %r" % (option, item))
        if not item.strip():
            raise ArgumentError("%s: a VM name must not be empty" % option)
        if item not in names:
            names.append(item)
    if not names and not allow_empty:
        raise ArgumentError("%s must name at least one VM" % option)
    return names


def _desired_state(service: str, value: t.Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "enabled" or lowered in BOOLEANS_TRUE:
            return True
        if lowered == "disabled" or lowered in BOOLEANS_FALSE:
            return False
    raise ArgumentError("services: %r must be enabled, disabled, true or false, got %r" % (service, value))


def desired_services(value: t.Any) -> dict[str, bool]:
    """Map of IC key -> wanted enabled state, from keys, English or localized names.

    Two spellings of one IC are fine when they agree; when they disagree the input is ambiguous.
    """
    if not isinstance(value, dict) or not value:
        raise ArgumentError(
            "services must be a mapping of integration service to enabled/disabled, "
            "for example {guest_service_interface: enabled}"
        )
    wanted: dict[str, bool] = {}
    spelled: dict[str, str] = {}
    for name, state in value.items():
        try:
            key = resolve_key(name)
        except UnknownIntegrationServiceError as exc:
            raise ArgumentError("services: %s" % exc) from exc
        enabled = _desired_state(name, state)
        if key in wanted and wanted[key] != enabled:
            raise ArgumentError(
                "services: %r and %r are both %s but ask for different states" % (spelled[key], name, key)
            )
        wanted[key] = enabled
        spelled.setdefault(key, name)
    return wanted


def vms_entry_name(entry: dict[str, t.Any], seen: set[str]) -> str:
    """The one VM an entry of a ``vms`` option names, refused when an earlier entry named it (``seen``
    holds the names so far; this one is added)."""
    names = vm_names(entry.get("name"), option="vms.name")
    if len(names) != 1 or isinstance(entry.get("name"), list):
        raise ArgumentError("vms: each item names one VM, got %r" % (entry.get("name"),))
    if names[0] in seen:
        raise ArgumentError("vms: VM %r is named twice; give it one entry" % names[0])
    seen.add(names[0])
    return names[0]


def vm_requests(value: t.Any) -> list[tuple[str, dict[str, bool]]]:
    """The ``vms`` option: [(VM name, IC key -> wanted state)], each VM with its own services.

    A VM may ask for nothing (``services: {}``). A name given twice is refused here because the two
    wishes could disagree; two spellings of one VM's name are the host's to tell (it compares names
    its own way) and it refuses them, writing nothing (``named_twice``, protocol doc section 3).
    """
    if not isinstance(value, list):
        raise ArgumentError("vms must be a list of {name, services}")
    requests: list[tuple[str, dict[str, bool]]] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            raise ArgumentError("vms: every item must be a mapping with name and services, got %r" % (item,))
        name = vms_entry_name(item, seen)
        services = item.get("services") or {}
        try:
            wanted = desired_services(services) if services else {}
        except ArgumentError as exc:
            raise ArgumentError("vms: VM %r: %s" % (name, exc)) from exc
        requests.append((name, wanted))
    return requests
