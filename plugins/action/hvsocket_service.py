# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for hyperv.integration.hvsocket_service (documentation: plugins/modules)."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_action import HostAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._hvsocket import (
    BUILTIN_SERVICES,
    LEGACY_MAX_HOST_PORT,
    check_element_name,
    guid_for_name,
    guid_for_port,
    normalize_guid,
    port_for_guid,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params

_ONE = {
    "name": {"type": "str"},
    "service_id": {"type": "str"},
    "vsock_port": {"type": "int"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "force": {"type": "bool", "default": False},
}
# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
ARGUMENT_SPEC: dict[str, t.Any] = dict(
    _ONE,
    services={"type": "list", "elements": "dict", "options": _ONE},
)


def resolve_wish(wish: dict[str, t.Any], entries: dict[str, str | None] | None) -> dict[str, t.Any]:
    """One wish -> {service_id, name, state}; ``entries`` (id -> ElementName) is needed for name-only wishes."""
    name, service_id, port = wish.get("name"), wish.get("service_id"), wish.get("vsock_port")
    state = wish.get("state") or "present"
    if service_id is not None and port is not None:
        raise ArgumentError(
            "give service_id or vsock_port, not both (service_id %r, vsock_port %r)" % (service_id, port)
        )
    if name is not None:
        check_element_name(name)
    if service_id is not None:
        guid = normalize_guid(service_id)
    elif port is not None:
        guid = guid_for_port(port)
    elif name is not None:
        same = [gid for gid, element in (entries or {}).items() if element == name]
        if state == "absent" and len(same) > 1:
            raise ArgumentError(
                "name %r is the ElementName of %d entries (%s): give service_id" % (name, len(same), ", ".join(same))
            )
        guid = same[0] if same else guid_for_name(name)
    else:
        raise ArgumentError("each service needs name, service_id or vsock_port")
    if state == "present" and name is None:
        raise ArgumentError("registering " + guid + " needs name, the friendly name to register")
    return {
        "service_id": guid,
        "name": name if state == "present" else None,
        "state": state,
        "force": wish.get("force"),
    }


def describe(entry: dict[str, t.Any]) -> dict[str, t.Any]:
    guid = entry["service_id"]
    after = entry.get("after") or {}
    return {
        "service_id": guid,
        "name": after.get("name"),
        "present": bool(after.get("present")),
        "vsock_port": port_for_guid(guid),
        "builtin": guid in BUILTIN_SERVICES,
        "changed": bool(entry.get("changed")),
        "before": entry.get("before"),
    }


class ActionModule(HostAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run_host(self, result: dict[str, t.Any], args: dict[str, t.Any]) -> dict[str, t.Any]:
        single = {key: args.get(key) for key in ("name", "service_id", "vsock_port")}
        if args.get("services") is not None:
            if any(value is not None for value in single.values()):
                raise ArgumentError("give either services or name/service_id/vsock_port, not both")
            wishes = [dict(w, force=w.get("force") or args["force"]) for w in args["services"]]
        else:
            wishes = [dict(single, state=args["state"], force=args["force"])]
        if not wishes:
            return dict(result, changed=False, services=[])

        needs_names = any(w.get("service_id") is None and w.get("vsock_port") is None for w in wishes)
        entries = None
        if needs_names:  # only then is the current registry needed to resolve a wish
            listed = self.call_host("hvsocket_service_info", build_params("hvsocket_service_info"), writes=False)
            entries = {s["service_id"]: s.get("name") for s in listed.get("services") or []}
        resolved = [resolve_wish(w, entries) for w in wishes]

        seen: dict[str, int] = {}
        for index, wish in enumerate(resolved, 1):
            if wish["service_id"] in seen:
                raise ArgumentError(
                    "services: items %d and %d are both %s; give each service once. Nothing was changed."
                    % (seen[wish["service_id"]], index, wish["service_id"])
                )
            seen[wish["service_id"]] = index
        for wish in resolved:
            if wish["state"] == "absent" and wish["service_id"] in BUILTIN_SERVICES and not wish["force"]:
                raise ArgumentError(
                    "%s (%s) is registered by Hyper-V itself; removing it breaks that feature. Set force: true "
                    "to remove it anyway. Nothing was changed."
                    % (wish["service_id"], BUILTIN_SERVICES[wish["service_id"]])
                )
        warnings = [
            "vsock port %d is above 0x7FFFFFFF: older Linux kernels (MAX_HOST_LISTEN_PORT in hyperv_transport.c) "
            "cannot connect to it" % port
            for port in (port_for_guid(w["service_id"]) for w in resolved)
            if port is not None and port > LEGACY_MAX_HOST_PORT
        ]
        params = build_params(
            "hvsocket_service_set", services=[{k: w[k] for k in ("service_id", "name", "state")} for w in resolved]
        )
        answer = self.call_host("hvsocket_service_set", params, writes=True)
        services = [describe(entry) for entry in answer.get("services") or []]
        errors = [
            "%s: %s" % (entry["service_id"], (entry.get("error") or {}).get("message"))
            for entry in answer.get("services") or []
            if entry.get("error")
        ]
        result["changed"] = any(s["changed"] for s in services)
        result["services"] = services
        if len(services) == 1 and args.get("services") is None:
            result.update({k: services[0][k] for k in ("service_id", "name", "vsock_port")})
        if self._task.diff:
            result["diff"] = {
                "before": {e["service_id"]: e.get("before") for e in answer.get("services") or []},
                "after": {e["service_id"]: e.get("after") for e in answer.get("services") or []},
            }
        if warnings:
            result["warnings"] = warnings
        if errors:
            done = [s["service_id"] for s in services if s["changed"]]
            result["failed"] = True
            result["msg"] = "Hyper-V host %s: %s. Changed: %s. Rerun to converge." % (
                self.host,
                "; ".join(errors),
                ", ".join(done) if done else "nothing",
            )
        return result
