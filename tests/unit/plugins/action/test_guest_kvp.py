"""guest_kvp and guest_kvp_info on a Windows guest: the action plugins against the in-process lab's guest."""

from __future__ import annotations

from support.lab_actions import lab_connection, run_with

from ansible_collections.hyperv.integration.plugins.action import guest_kvp, guest_kvp_info

ITEMS = {"AppRole": "web", "Quoted": 'it\'s "quoted" $(id) `uname`', "Grüße": "ünïcödé ✓ 漢字"}


def test_publish_read_back_rerun_and_withdraw() -> None:
    connection = lab_connection("web01")
    check = run_with(guest_kvp.ActionModule, {"items": ITEMS}, "web01", connection.execute, True)
    assert check["changed"] is True and "failed" not in check, check
    first = run_with(guest_kvp.ActionModule, {"items": ITEMS}, "web01", connection.execute)
    assert first["changed"] is True, first
    assert first["items"]["Quoted"] == {"before": None, "after": ITEMS["Quoted"], "changed": True}
    info = run_with(guest_kvp_info.ActionModule, {}, "web01", connection.execute)
    assert info["os"] == "windows" and {k: info["to_host"][k] for k in ITEMS} == ITEMS, info
    again = run_with(guest_kvp.ActionModule, {"items": ITEMS}, "web01", connection.execute)
    assert again["changed"] is False, again
    gone = run_with(guest_kvp.ActionModule, {"items": ["AppRole"], "state": "absent"}, "web01", connection.execute)
    assert gone["changed"] is True and gone["items"]["AppRole"] == {"before": "web", "after": None, "changed": True}
    left = run_with(guest_kvp_info.ActionModule, {}, "web01", connection.execute)["to_host"]
    assert "AppRole" not in left and left["Quoted"] == ITEMS["Quoted"]


def test_check_mode_writes_nothing() -> None:
    connection = lab_connection("web01")
    run_with(guest_kvp.ActionModule, {"items": {"AppRole": "web"}}, "web01", connection.execute, True)
    info = run_with(guest_kvp_info.ActionModule, {}, "web01", connection.execute)
    assert "AppRole" not in (info["to_host"] or {})
    assert connection.lab is not None and connection.lab.endpoints["web01"].counters.snapshot().get("writes", 0) == 0


def test_two_spellings_of_one_registry_value_are_refused_by_the_guest() -> None:
    connection = lab_connection("web01")
    result = run_with(guest_kvp.ActionModule, {"items": {"Status": "a", "status": "b"}}, "web01", connection.execute)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("Windows guest web01 refused 'status': another item names the same registry value")
    assert result["msg"].endswith("Nothing was changed.")


def test_too_long_is_refused_by_the_guest_and_nothing_is_written() -> None:
    # The sizes are the library's to check (one place): it refuses before its first write.
    connection = lab_connection("web01")
    result = run_with(guest_kvp.ActionModule, {"items": {"Big": "v" * 1023}}, "web01", connection.execute)
    assert result["failed"] is True and "'Big'" in result["msg"] and "1022" in result["msg"]
    assert result["msg"].endswith("Nothing was changed.")
    assert connection.lab is not None and connection.lab.endpoints["web01"].counters.snapshot().get("writes", 0) == 0
