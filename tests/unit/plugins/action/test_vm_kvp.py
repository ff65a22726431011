"""vm_kvp against the in-process lab (tests/support/lab_actions.py): every VM and item in one library
call, idempotence, check mode, absent, refusals before any call, failures part-way, access denied."""

from __future__ import annotations

import typing as t

from hvlab import library_reads
from support.lab_actions import lab_connection, run_with
from support.labspec import lab_spec, vm_spec

from ansible_collections.hyperv.integration.plugins.action import vm_kvp

NOTE = 'it\'s "quoted" $(Remove-Item C:\\ -Recurse) `n; & <b>'
ITEMS = {"role": "web", "note": NOTE, "größe": "Grüße ✓ 日本語 😀"}
ACTION = vm_kvp.ActionModule


def _lab(*vms: dict[str, t.Any], **extra: t.Any) -> t.Any:
    return lab_connection(
        "hv01", lab_spec(*(vms or (vm_spec("web01", "windows"), vm_spec("db01", "linux", "Off"))), **extra)
    )


def _run(connection: t.Any, args: dict[str, t.Any], check_mode: bool = False) -> dict[str, t.Any]:
    before = len(connection.requests)
    result = run_with(ACTION, args, "hv01", connection.execute, check_mode)
    for library, request in zip(connection.libraries[before:], connection.requests[before:], strict=True):
        assert library_reads.strict_mode_violation(library, request) is None, request
    return result


def _writes(connection: t.Any) -> int:
    return int(connection.lab.host.counters.snapshot().get("writes", 0))


def test_three_items_on_two_vms_in_one_call_then_a_rerun_changes_nothing() -> None:
    connection = _lab()
    result = _run(connection, {"name": ["web01", "db01"], "items": ITEMS})
    assert "failed" not in result and result["changed"] is True, result
    assert [r["operation"] for r in connection.requests] == ["vm_kvp_set"]
    assert connection.requests[0]["params"]["changes"][1] == {
        "vm": None,
        "key": "note",
        "value": NOTE,
        "state": "present",
    }
    assert _writes(connection) == 6
    for vm in result["vms"]:
        assert vm["changed"] is True and vm["error"] is None
        assert vm["items"] == {k: {"before": None, "after": v, "changed": True} for k, v in ITEMS.items()}
    assert result["diff"] == {"before": {"web01": {}, "db01": {}}, "after": {"web01": ITEMS, "db01": ITEMS}}

    again = _run(connection, {"name": ["web01", "db01"], "items": ITEMS})
    assert "failed" not in again and again["changed"] is False, again
    assert _writes(connection) == 6
    assert all(not i["changed"] for vm in again["vms"] for i in vm["items"].values())


def test_numbers_become_their_digits() -> None:
    connection = _lab()
    result = _run(connection, {"name": "web01", "items": {"port": 8080}})
    assert result["vms"][0]["items"]["port"]["after"] == "8080"
    assert connection.requests[0]["params"]["changes"][0]["value"] == "8080"


def test_check_mode_writes_nothing_and_says_what_would_change() -> None:
    connection = _lab(vm_spec("web01", "windows", kvp_host_items={"role": "old"}))
    result = _run(connection, {"name": "web01", "items": {"role": "web", "new": "1"}}, check_mode=True)
    assert "failed" not in result and result["changed"] is True, result
    assert connection.requests[0]["check_mode"] is True
    assert _writes(connection) == 0
    assert result["vms"][0]["items"]["role"] == {"before": "old", "after": "web", "changed": True}
    assert result["diff"]["after"]["web01"] == {"role": "web", "new": "1"}


def test_absent_removes_exactly_the_listed_keys() -> None:
    connection = _lab(vm_spec("web01", "windows", kvp_host_items={"a": "1", "b": "2", "c": "3"}))
    result = _run(connection, {"name": "web01", "items": ["a", "c", "gone"], "state": "absent"})
    assert "failed" not in result and result["changed"] is True, result
    assert result["vms"][0]["items"] == {
        "a": {"before": "1", "after": None, "changed": True},
        "c": {"before": "3", "after": None, "changed": True},
        "gone": {"before": None, "after": None, "changed": False},
    }
    assert _writes(connection) == 2
    from ansible_collections.hyperv.integration.plugins.action import vm_kvp_info

    info = run_with(vm_kvp_info.ActionModule, {"name": "web01"}, "hv01", connection.execute)
    assert info["vms"][0]["host_items"] == {"b": "2"}
    # A mapping works for absent too (its values are ignored).
    again = _run(connection, {"name": "web01", "items": {"b": None}, "state": "absent"})
    assert again["changed"] is True and again["vms"][0]["items"]["b"]["after"] is None


def test_too_long_is_refused_by_the_host_and_nothing_is_written() -> None:
    # The sizes are the library's to check (one place): it refuses before its first write.
    connection = _lab()
    result = _run(connection, {"name": "web01", "items": {"ok": "fine", "big": "v" * 1023}})
    assert result["failed"] is True and result["changed"] is False
    assert "'big'" in result["msg"] and "1022" in result["msg"] and result["msg"].endswith("Nothing was changed.")
    result = _run(connection, {"name": "web01", "items": {"k": "日" * 700}})
    assert result["failed"] is True and "2047" in result["msg"]
    assert connection.lab is not None and connection.lab.host.counters.snapshot().get("writes", 0) == 0
    requests = len(connection.requests)
    result = _run(connection, {"name": "web01", "items": {"k": ["a list"]}})
    assert result["failed"] is True and "must be a string" in result["msg"] and len(connection.requests) == requests


def test_the_library_refusal_names_vm_key_and_limit() -> None:
    connection = _lab(vm_spec("web01", "windows", kvp_host_items={"Role": "web"}))
    result = _run(connection, {"name": "web01", "items": {"role": "db", "k": "bell\u0007"}})
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == (
        "Hyper-V host hv01 refused 2 item(s): VM 'web01' key 'role': the host item 'Role' differs only in case "
        "(which one the host would match is not documented); use the host's spelling; VM 'web01' key 'k': the "
        "value holds a character the host cannot store (allowed: characters XML 1.0 allows (no control characters "
        "but tab, LF and CR; no lone surrogates)). Nothing was changed."
    )
    assert {r["reason"] for r in result["refused"]} == {"key_case_conflict", "value_invalid_characters"}
    assert _writes(connection) == 0


def test_a_kvp_error_mid_call_names_vm_and_key_and_what_was_done() -> None:
    connection = _lab(
        vm_spec("web01", "windows"), faults=[{"type": "kvp_error", "vm": "web01", "key": "note", "code": 32773}]
    )
    result = _run(connection, {"name": "web01", "items": ITEMS})
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"] == (
        "Hyper-V host hv01: 1 change(s) failed: VM 'web01' key 'note': AddKvpItems answered 32773 (Invalid "
        "parameter). Done: VM 'web01' key 'role' added; VM 'web01' key 'größe' added. Everything else was "
        "already as requested. Rerun the task to converge."
    )
    assert result["vms"][0]["items"]["note"] == {
        "before": None,
        "after": None,
        "changed": False,
        "error": "AddKvpItems answered 32773 (Invalid parameter)",
    }
    assert _writes(connection) == 2


def test_access_denied_is_explained_and_nothing_is_written() -> None:
    connection = _lab(vm_spec("web01", "windows"), faults=[{"type": "access_denied"}])
    result = _run(connection, {"name": "web01", "items": ITEMS})
    assert result["failed"] is True and result["changed"] is False
    assert "You do not have the required permission" in result["msg"]
    assert "'Hyper-V Administrators' group" in result["msg"]
    assert _writes(connection) == 0


def test_a_vm_that_is_off_gets_its_host_items() -> None:
    connection = _lab()
    result = _run(connection, {"name": "db01", "items": {"role": "db"}})
    assert result["vms"][0]["state"] == "Off" and result["changed"] is True


def test_missing_ambiguous_and_named_twice_change_nothing() -> None:
    connection = _lab()
    result = _run(connection, {"name": ["web01", "nope"], "items": ITEMS})
    assert result["failed"] is True and result["missing_vms"] == ["nope"]
    assert result["msg"] == "no VM named 'nope' on Hyper-V host hv01. Nothing was changed."
    result = _run(connection, {"vms": [{"name": "web01", "items": {"a": "1"}}, {"name": "WEB01", "items": {"a": "2"}}]})
    assert result["failed"] is True
    assert (
        "VM 'web01' is named twice in vms ('web01', 'WEB01'); give it one entry. Nothing was changed." in result["msg"]
    )
    twins = _lab(vm_spec("twin"), vm_spec("twin"))
    result = _run(twins, {"name": "twin", "items": {"a": "1"}})
    assert result["failed"] is True and "'twin' names 2 VMs" in result["msg"]
    assert _writes(connection) == 0 and _writes(twins) == 0


def test_vms_gives_each_vm_its_own_items_in_one_call() -> None:
    connection = _lab(vm_spec("web01", "windows", kvp_host_items={"old": "x"}), vm_spec("db01", "linux"))
    args = {
        "vms": [
            {"name": "web01", "items": ["old"], "state": "absent"},
            {"name": "db01", "items": {"role": "db"}},
        ]
    }
    result = _run(connection, args)
    assert "failed" not in result and result["changed"] is True, result
    assert connection.requests[0]["params"]["changes"] == [
        {"vm": "web01", "key": "old", "value": None, "state": "absent"},
        {"vm": "db01", "key": "role", "value": "db", "state": "present"},
    ]
    web, db = result["vms"]
    assert web["items"] == {"old": {"before": "x", "after": None, "changed": True}}
    assert db["items"] == {"role": {"before": None, "after": "db", "changed": True}}
    result = _run(connection, {"vms": [{"name": "web01", "items": {"a": "1"}}], "state": "absent"})
    assert result["failed"] is True and "not both" in result["msg"]


def test_fifty_vms_with_five_items_each_in_one_call() -> None:
    names = ["vm%02d" % i for i in range(50)]
    connection = _lab(*(vm_spec(name, "linux") for name in names))
    items = {"k%d" % i: "value %d" % i for i in range(5)}
    result = _run(connection, {"name": names, "items": items})
    assert "failed" not in result and result["changed"] is True, result.get("msg")
    assert len(connection.requests) == 1 and len(result["vms"]) == 50
    assert _writes(connection) == 250
    assert all(vm["items"]["k4"]["after"] == "value 4" for vm in result["vms"])
