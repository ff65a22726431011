# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest modules' options, shared by the Linux module and the Windows path of the action plugin.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import (
    UnknownIntegrationServiceError,
    resolve_guest_key,
)

GUEST_ARGUMENT_SPEC: dict[str, t.Any] = {
    "services": {"type": "dict"},
    "skip_not_offered": {"type": "bool", "default": False},
    "hv_sock": {"type": "bool"},
    "host_time_samples": {"type": "bool"},
}
GUEST_REQUIRED_ONE_OF = [["services", "hv_sock", "host_time_samples"]]
HV_SOCK_ON_WINDOWS = (
    "hv_sock is a Linux guest setting (the hv_sock kernel module); Windows guests have Hyper-V sockets built "
    "in. Leave hv_sock out for Windows guests. Nothing was changed."
)
HOST_TIME_SAMPLES_ON_LINUX = (
    "host_time_samples is a Windows guest setting (the Hyper-V time provider of W32Time, VMICTimeProvider); "
    "Linux has no W32Time. In a Linux guest the host's time arrives through time_synchronization (hv_utils) "
    "and the PTP clock /dev/ptp_hyperv: disable time_synchronization on the host with vm_integration_service, "
    "or leave the PTP clock out of the guest's time source. Leave host_time_samples out for Linux guests. "
    "Nothing was changed."
)
GUEST_INFO_ARGUMENT_SPEC: dict[str, t.Any] = {}

STATES = ("started", "stopped", "restarted")
START_MODES = ("automatic", "manual", "disabled")


def desired_guest_services(value: t.Any, windows: bool) -> dict[str, dict[str, t.Any]]:
    """IC key -> {"state": ..., "enabled": ..., "start_mode": ...} (absent fields: leave as is).

    A value is a state word (``started``) or a mapping with ``state``, and ``enabled`` (Linux: the
    daemon's unit) or ``start_mode`` (Windows: the vmic* service).
    """
    if value is None:
        return {}  # only hv_sock or host_time_samples was asked for
    if not isinstance(value, dict) or not value:
        raise ArgumentError("services must be a mapping of integration service to state, e.g. {vss: started}")
    family = "Windows" if windows else "Linux"
    wanted: dict[str, dict[str, t.Any]] = {}
    for name, spec in value.items():
        try:
            key = resolve_guest_key(name, windows)
        except UnknownIntegrationServiceError as exc:
            raise ArgumentError("services: %s" % exc) from exc
        if isinstance(spec, str):
            spec = {"state": spec}
        if not isinstance(spec, dict):
            raise ArgumentError("services: %r must be a state (%s) or a mapping" % (name, ", ".join(STATES)))
        unknown = set(spec) - {"state", "enabled", "start_mode"}
        if unknown:
            raise ArgumentError("services: %r has unknown field(s) %s" % (name, ", ".join(sorted(unknown))))
        wish: dict[str, t.Any] = {}
        state = spec.get("state")
        if state is not None:
            if state not in STATES:
                raise ArgumentError("services: %r state must be one of %s, got %r" % (name, ", ".join(STATES), state))
            wish["state"] = state
        if spec.get("enabled") is not None:
            if windows:
                raise ArgumentError("services: %r: on a %s guest use start_mode, not enabled" % (name, family))
            if not isinstance(spec["enabled"], bool):
                raise ArgumentError("services: %r enabled must be true or false" % name)
            wish["enabled"] = spec["enabled"]
        if spec.get("start_mode") is not None:
            if not windows:
                raise ArgumentError("services: %r: on a %s guest use enabled, not start_mode" % (name, family))
            mode = str(spec["start_mode"]).lower()
            if mode not in START_MODES:
                raise ArgumentError(
                    "services: %r start_mode must be one of %s, got %r"
                    % (name, ", ".join(START_MODES), spec["start_mode"])
                )
            wish["start_mode"] = mode
        if not wish:
            raise ArgumentError("services: %r asks for nothing (give state, enabled or start_mode)" % name)
        if key in wanted and wanted[key] != wish:
            raise ArgumentError("services: %s is given twice with different wishes" % key)
        wanted[key] = wish
    return wanted
