# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows half of guest_kvp and guest_kvp_info: the guest's KVP registry keys, through the library.

Internal to this collection: not a public API, it may change without notice.

The library (windows_guest.ps1, operations guest_kvp_info and guest_kvp_set; protocol doc section 7)
knows the registry keys; this side turns its answers into the modules' return values.
"""

from __future__ import annotations

import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.kvp_pool import ITEM_LIMITS
from ansible_collections.hyperv.integration.plugins.plugin_utils._requests import build_params
from ansible_collections.hyperv.integration.plugins.plugin_utils._windows_guest import call_library


def kvp_info(action: t.Any, guest: str) -> dict[str, t.Any]:
    answer = call_library(action, guest, "guest_kvp_info", build_params("guest_kvp_info"), False, writes=False)
    reasons = answer.get("reasons") or {}
    return {
        "changed": False,
        "os": "windows",
        "from_host": answer.get("from_host"),
        "to_host": answer.get("to_host"),
        "parameters": answer.get("parameters"),
        "unavailable": {name: reasons[name] for name in ("from_host", "to_host", "parameters") if reasons.get(name)},
    }


def _text(state: t.Any) -> str | None:
    """The module's view of one registry value the library read: its text when it is a REG_SZ, else None."""
    if not isinstance(state, dict) or not state.get("present") or state.get("kind") != "String":
        return None
    return state.get("value")


# Why the library refused an item (protocol doc section 7, guest_kvp_set step 1), for the message.
_REFUSALS = {
    "key_empty": "the key is empty",
    "key_too_long": "the key is %(length)s UTF-16 code units; at most %(limit)s reach the host",
    "key_reserved": "the name (default) is the registry key's default value, not a value of its own",
    "key_invalid_characters": "the key holds a character the host cannot carry (%(limit)s)",
    "value_invalid_characters": "the value holds a character the host cannot carry (%(limit)s)",
    "named_twice": "another item names the same registry value (Windows compares value names ignoring case)",
    "value_missing": "state=present needs a value",
    "value_too_long": "the value is %(length)s UTF-16 code units; at most %(limit)s reach the host",
    "state_unknown": "the state is neither present nor absent",
}


def kvp_set(
    action: t.Any, guest: str, wishes: dict[str, str | None], state: str, check_mode: bool, diff: bool
) -> dict[str, t.Any]:
    params = build_params(
        "guest_kvp_set",
        items=[{"key": key, "value": value, "state": state} for key, value in wishes.items()],
        # The registry holds more: these are what reaches the host whole.
        limits={name: ITEM_LIMITS[name] for name in ("key_units", "value_units")},
    )
    answer = call_library(action, guest, "guest_kvp_set", params, check_mode, writes=True)
    if answer.get("not_a_guest"):
        return {
            "failed": True,
            "changed": False,
            "msg": "%s is not a Hyper-V guest, so it has no key-value pairs to publish. Nothing was changed." % guest,
        }
    if answer.get("refused"):
        reasons = [
            "%r: %s" % (item.get("key"), _REFUSALS.get(str(item.get("reason")), str(item.get("reason"))) % item)
            for item in answer["refused"]
        ]
        return {
            "failed": True,
            "changed": False,
            "msg": "Windows guest %s refused %s. Nothing was changed." % (guest, "; ".join(reasons)),
        }
    items: dict[str, dict[str, t.Any]] = {}
    failures = []
    for entry in answer.get("items") or []:
        key = str(entry.get("key"))
        item = {
            "before": _text(entry.get("before")),
            "after": _text(entry.get("after")),
            "changed": bool(entry.get("changed")),
        }
        if entry.get("error"):
            item["error"] = (entry["error"] or {}).get("message")
            failures.append("%r: %s" % (key, item["error"]))
        items[key] = item
    result: dict[str, t.Any] = {"changed": any(i["changed"] for i in items.values()), "items": items}
    if diff:
        result["diff"] = {
            "before": {k: i["before"] for k, i in items.items() if i["before"] is not None},
            "after": {k: i["after"] for k, i in items.items() if i["after"] is not None},
        }
    if failures:
        done = [k for k, i in items.items() if i["changed"]]
        result.update(
            failed=True,
            msg="Windows guest %s: %d pair(s) failed: %s. Changed: %s. Rerun to converge once the cause is fixed."
            % (guest, len(failures), "; ".join(failures), ", ".join(done) if done else "nothing"),
        )
    return result
