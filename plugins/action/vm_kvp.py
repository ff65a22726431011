# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for hyperv.integration.vm_kvp (documentation: plugins/modules)."""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.guest_kvp import STATES, kvp_wishes
from ansible_collections.hyperv.integration.plugins.module_utils.kvp_pool import ITEM_LIMITS
from ansible_collections.hyperv.integration.plugins.plugin_utils import _host_changes, _wmi_return
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_action import HostAction
from ansible_collections.hyperv.integration.plugins.plugin_utils._host_args import vm_names, vms_entry_name
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params

# Kept equal to DOCUMENTATION by tests/unit/plugins/action/test_argument_specs.py.
# state has no default here so that vms can be told apart from name/items/state; omitted, it is present.
ARGUMENT_SPEC: dict[str, t.Any] = {
    "name": {"type": "raw", "aliases": ["vm", "vm_name"]},
    "items": {"type": "raw"},
    "state": {"type": "str", "choices": list(STATES)},
    "vms": {
        "type": "list",
        "elements": "dict",
        "options": {
            "name": {"type": "raw", "required": True},
            "items": {"type": "raw", "default": {}},
            "state": {"type": "str", "choices": list(STATES), "default": "present"},
        },
    },
}

# What each refusal of the library (protocol doc section 9, vm_kvp_set) means, for the message.
_REFUSALS = {
    "key_empty": "the key is empty (a key needs %s)",
    "key_invalid_characters": "the key holds a character the host cannot store (allowed: %s)",
    "key_too_long": "the key is longer than %s",
    "value_missing": "no value was given (state present needs %s)",
    "value_invalid_characters": "the value holds a character the host cannot store (allowed: %s)",
    "value_too_long": "the value is longer than %s",
    "key_twice": "the key is given twice for this VM (%s)",
    "key_case_conflict": "%s (which one the host would match is not documented); use the host's spelling",
}


def shown(key: t.Any) -> str:
    """A key for a message, cut short: a key that is too long would otherwise fill the message."""
    text = repr(key)
    return text if len(text) <= 80 else "%s... (%d characters)" % (text[:60], len(str(key)))


def vm_wishes(items: t.Any, state: str, where: str) -> dict[str, str | None]:
    """Key -> value (present) or None (absent): text, as guest_kvp checks it; the sizes are the library's
    to check, against the ITEM_LIMITS it is sent (it refuses an item that would not reach every guest
    whole, hyperv-facts section 8)."""
    try:
        return kvp_wishes(items, state, check_limits=False)
    except ArgumentError as exc:
        raise ArgumentError("%s%s. Nothing was changed." % (where, exc)) from exc


def requests_from(args: dict[str, t.Any]) -> tuple[list[str], list[dict[str, t.Any]]]:
    """VM names and the library's changes, from name/items/state or from vms."""
    if args.get("vms") is not None:
        if any(args.get(option) is not None for option in ("name", "items", "state")):
            raise ArgumentError("give either vms, or name, items and state, not both")
        if not isinstance(args["vms"], list):
            raise ArgumentError("vms must be a list of {name, items, state}")
        names: list[str] = []
        seen: set[str] = set()
        changes: list[dict[str, t.Any]] = []
        for entry in args["vms"]:
            name = vms_entry_name(entry, seen)
            names.append(name)
            state = entry.get("state") or "present"
            if not entry.get("items"):
                continue  # this VM asks nothing
            wishes = vm_wishes(entry["items"], state, "vms: VM %r: " % name)
            changes.extend({"vm": name, "key": k, "value": v, "state": state} for k, v in wishes.items())
        return names, changes
    if args.get("name") is None or args.get("items") is None:
        raise ArgumentError("name and items are required (or give vms, a list of {name, items, state})")
    state = args.get("state") or "present"
    names = vm_names(args["name"], allow_empty=True)
    wishes = vm_wishes(args["items"], state, "")
    return names, [{"vm": None, "key": k, "value": v, "state": state} for k, v in wishes.items()]


def refused_problem(host: str, refused: list[dict[str, t.Any]]) -> str | None:
    """The items the host refused before writing anything, each with its VM, key and limit."""
    if not refused:
        return None
    described = "; ".join(
        "VM %r key %s: %s"
        % (
            item.get("vm"),
            shown(item.get("key")),
            _REFUSALS.get(str(item.get("reason")), "refused (" + str(item.get("reason")) + ", %s)")
            % (item.get("limit"),),
        )
        for item in refused
    )
    return "Hyper-V host %s refused %d item(s): %s" % (host, len(refused), described)


def summarise(answer: dict[str, t.Any]) -> tuple[list[dict[str, t.Any]], dict[str, t.Any]]:
    """Per-VM return values and the diff (the listed keys only), from the host's answer."""
    return _host_changes.summarise(
        answer,
        "items",
        lambda item: item["key"],
        lambda item: {"before": item.get("before"), "after": item.get("after"), "changed": bool(item.get("changed"))},
        lambda item: (item.get("before"), item.get("after")),
    )


def changes_done(vms: list[dict[str, t.Any]]) -> list[str]:
    """The changes made (or, in check mode, that would be made), e.g. "VM 'web01' key 'role' set"."""
    done = []
    for vm in vms:
        for key, item in vm["items"].items():
            if "error" not in item and item["changed"]:
                what = "removed" if item["after"] is None else ("added" if item["before"] is None else "changed")
                done.append("VM %r key %s %s" % (vm["name"], shown(key), what))
    return done


def write_failure_message(host: str, vms: list[dict[str, t.Any]]) -> str | None:
    """Say which items failed, and which were done, so the user knows where the host stands."""
    return _host_changes.write_failure_message(host, vms, "items", lambda key: "key " + shown(key), changes_done(vms))


class ActionModule(HostAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run_host(self, result: dict[str, t.Any], args: dict[str, t.Any]) -> dict[str, t.Any]:
        names, changes = requests_from(args)
        if not names:  # e.g. "every VM of the host" on a host that has none
            result.update(changed=False, vms=[])
            return result

        params = build_params("vm_kvp_set", vm_names=names, changes=changes, limits=ITEM_LIMITS)
        answer = self.call_host("vm_kvp_set", params, writes=True)

        if _host_changes.refused(self.host, answer, result, refused_problem(self.host, answer.get("refused") or [])):
            if answer.get("refused"):
                result["refused"] = answer["refused"]
            return result

        _wmi_return.word_item_errors(answer, "items")
        vms, diff = summarise(answer)
        _host_changes.report(result, vms, diff if self._task.diff else None, write_failure_message(self.host, vms))
        return result
