# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest half of Key-Value Pair Exchange: the options of guest_kvp, and the Linux guest's pools.

Internal to this collection: not a public API, it may change without notice.

A Linux guest publishes items to the host in pool 1 and reads the host's in pool 0 and pool 3
(docs/dev/hyperv-facts.md section 8); kvp_pool reads and writes them as hv_kvp_daemon does. The Windows
guest's registry is the Windows guest library's (windows_guest.ps1); both check items against the same
limits, the ones here.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils import kvp_pool
from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError

GUEST_KVP_ARGUMENT_SPEC: dict[str, t.Any] = {
    "items": {"type": "raw", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}
STATES = ("present", "absent")


def kvp_wishes(items: t.Any, state: str, check_limits: bool = True) -> dict[str, str | None]:
    """Key -> value to publish (state present) or None (absent), in the order given, checked before anything
    is written: each item must reach the host whole (docs/dev/hyperv-facts.md section 8, "Size limits").

    ``check_limits`` False: the sizes and characters are left to the PowerShell library, which checks them
    before its first write against the limits the controller sends it (kvp_pool.ITEM_LIMITS).
    """
    if state not in STATES:
        raise ArgumentError("state must be present or absent, got %r" % (state,))
    if state == "absent" and isinstance(items, list):
        items = {key: None for key in items}
    if not isinstance(items, dict) or not items:
        raise ArgumentError(
            "items must be a mapping of key to value%s, got %r"
            % (" (or, with state=absent, a list of keys)" if state == "absent" else "", items)
        )
    wishes: dict[str, str | None] = {}
    for key, value in items.items():
        if not isinstance(key, str):
            raise ArgumentError("items: every key must be a string, got %r" % (key,))
        if state == "absent":
            wishes[key] = None
            if not key:
                raise ArgumentError("items: a KVP key must not be empty")
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads port: 8080 as a number; the pool holds text
        if not isinstance(value, str):
            raise ArgumentError(
                "items: the value of %r must be a string, got %s %r (quote it)" % (key, type(value).__name__, value)
            )
        if not check_limits:
            try:
                kvp_pool.check_unicode(key, value)  # the request to the library is UTF-8
            except kvp_pool.KvpPoolError as exc:
                raise ArgumentError("items: %s" % exc) from exc
            wishes[key] = value
            continue
        try:
            kvp_pool.check_item(key, value)
            kvp_pool.check_host_limits(key, value)
        except kvp_pool.KvpPoolError as exc:
            raise ArgumentError("items: %s" % exc) from exc
        wishes[key] = value
    return wishes


def _pool_or_reason(path: str) -> tuple[dict[str, str] | None, str | None]:
    if not os.path.exists(path):
        return None, "%s does not exist: hv_kvp_daemon has not run in this guest" % path
    return kvp_pool.read_pool(path), None


def linux_info(root: str = "/") -> dict[str, t.Any]:
    """What guest_kvp_info returns on Linux: the three pools a guest reads, and why one could not be."""
    result: dict[str, t.Any] = {"changed": False, "os": "linux", "unavailable": {}}
    for name, pool in (
        ("from_host", kvp_pool.POOL_EXTERNAL),
        ("to_host", kvp_pool.POOL_GUEST),
        ("parameters", kvp_pool.POOL_AUTO_EXTERNAL),
    ):
        items, reason = _pool_or_reason(kvp_pool.pool_path(pool, root))
        result[name] = items
        if reason:
            result["unavailable"][name] = reason
    return result


def linux_apply(wishes: dict[str, str | None], state: str, check_mode: bool, root: str = "/") -> dict[str, t.Any]:
    """Publish (or withdraw) the listed items in pool 1; every other record, cloud-init's too, stays."""
    path = kvp_pool.pool_path(kvp_pool.POOL_GUEST, root)
    warnings = []
    if not os.path.isdir(os.path.dirname(path)):
        if state == "absent":
            return _result({}, {}, wishes, [])  # no pool at all: nothing to remove
        warnings.append(
            "%s does not exist: hv_kvp_daemon has not run in this guest, so the host sees these items only "
            "once it runs" % os.path.dirname(path)
        )
        if not check_mode:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        if state == "present":
            changes = kvp_pool.set_items(path, {k: v for k, v in wishes.items() if v is not None}, check_mode)
        else:
            changes = kvp_pool.remove_items(path, list(wishes), check_mode)
    except kvp_pool.KvpPoolError as exc:
        return {"failed": True, "changed": False, "msg": "%s. Nothing was changed." % exc}
    return _result(changes.before, changes.after, wishes, warnings)


def _result(
    before: dict[str, str], after: dict[str, str], wishes: dict[str, str | None], warnings: list[str]
) -> dict[str, t.Any]:
    items = {
        key: {"before": before.get(key), "after": after.get(key), "changed": before.get(key) != after.get(key)}
        for key in wishes
    }
    result: dict[str, t.Any] = {
        "changed": any(item["changed"] for item in items.values()),
        "items": items,
        # The diff shows the listed keys only: the pool can hold others' items (cloud-init's reports).
        "diff": {
            "before": {key: before[key] for key in wishes if key in before},
            "after": {key: after[key] for key in wishes if key in after},
        },
    }
    if warnings:
        result["warnings"] = warnings
    return result
