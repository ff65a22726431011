# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hyper-V socket service ids: GUID checks, the Linux vsock port mapping, ids derived from names.

Internal to this collection: not a public API, it may change without notice.

Facts (docs/dev/hyperv-facts.md section 4): a Linux guest's AF_VSOCK port P reaches the host service
``{P as 8 hex digits}-facb-11e6-bd58-64006a7986d3`` (net/vmw_vsock/hyperv_transport.c, srv_id_template).
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError

VSOCK_TEMPLATE_TAIL = "-FACB-11E6-BD58-64006A7986D3"
# VMADDR_PORT_ANY (0xFFFFFFFF) is no port a service can listen on.
MAX_VSOCK_PORT = 0xFFFFFFFE
# Linux kernels of 2017-2023 refuse to connect to host ports above this (MAX_HOST_LISTEN_PORT in
# hyperv_transport.c); newer kernels lifted the limit.
LEGACY_MAX_HOST_PORT = 0x7FFFFFFF
MAX_ELEMENT_NAME = 256  # a friendly name; longer ones are refused rather than silently cut

# GUIDs derived from a name alone: uuid5 in this namespace, which is itself
# uuid5(NAMESPACE_URL, "urn:hyperv.integration:hvsocket-service-name"). Every host gets the same GUID
# for the same name. Changing it would orphan every registration made by name.
NAME_NAMESPACE = uuid.UUID("91960CE1-D25D-529F-A991-C7FB15CA3145")

# Entries Hyper-V itself registers; removing them breaks host features. Both are PowerShell Direct's
# (PowerShell's RemoteSessionHyperVSocket.cs: HV_GUID_VM_SESSION_SERVICE_ID and _ID_2); the first is
# also in Microsoft's "Make your own integration services" guide.
BUILTIN_SERVICES: dict[str, str] = {
    "999E53D4-3D5C-4C3E-8779-BED06EC056E1": "VM Session Service",
    "A5201C21-2770-4C11-A68E-F182EDB29220": "VM Session Service-2",
}

_GUID = re.compile(r"^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$")


def normalize_guid(value: object, option: str = "service_id") -> str:
    """Upper case, no braces; a clear error for anything that is not a GUID."""
    if not isinstance(value, str) or not _GUID.match(value.strip()):
        raise ArgumentError("%s must be a GUID like 00000ac9-facb-11e6-bd58-64006a7986d3, got %r" % (option, value))
    return value.strip().strip("{}").upper()


def guid_for_port(port: object) -> str:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= MAX_VSOCK_PORT:
        raise ArgumentError("vsock_port must be a whole number from 0 to %d, got %r" % (MAX_VSOCK_PORT, port))
    return "%08X%s" % (port, VSOCK_TEMPLATE_TAIL)


def port_for_guid(guid: str) -> int | None:
    """The vsock port a GUID stands for, or None when it does not follow the template."""
    guid = guid.strip("{}").upper()
    if guid.endswith(VSOCK_TEMPLATE_TAIL):
        return int(guid[:8], 16)
    return None


def guid_for_name(name: str) -> str:
    return str(uuid.uuid5(NAME_NAMESPACE, name)).upper()


def check_element_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ArgumentError("name (the ElementName) must be a non-empty string, got %r" % (name,))
    if len(name) > MAX_ELEMENT_NAME:
        raise ArgumentError("name is %d characters long; at most %d are allowed" % (len(name), MAX_ELEMENT_NAME))
    # Every control character (category Cc): C0 as well as DEL and C1, which include NEL (U+0085), a line break.
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ArgumentError("name must not contain control characters (newlines, tabs, NUL): %r" % name)
    return name
