"""guest_kvp and guest_kvp_info in the lab's Linux guest: the real module writes pool 1 in a real Debian."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import run_playbook

ITEMS = {"AppRole": "web", "Quoted": 'it\'s "quoted" $(id) `uname`', "Grüße": "ünïcödé ✓ 漢字"}


def _kvp(items: object, state: str = "present", name: str = "kvp") -> dict:
    return {"name": name, "hyperv.integration.guest_kvp": {"items": items, "state": state}}


INFO = {"name": "info", "hyperv.integration.guest_kvp_info": {}}


@pytest.mark.needs_root
def test_a_linux_guest_publishes_reads_back_and_withdraws_exactly_its_keys(tmp_path: Path, start_lab) -> None:
    lab = start_lab({"host": {"name": "hv01"}, "vms": [{"name": "lin01", "guest": "linux"}]})
    check = run_playbook(tmp_path, lab, [_kvp(ITEMS), INFO], hosts="linux_guests", check=True, name="check")
    assert check.rc == 0, check.stdout
    assert check.result("kvp")["result"]["changed"] is True
    assert not set(ITEMS) & set(check.result("info")["result"]["to_host"] or {})  # check mode wrote nothing

    first = run_playbook(tmp_path, lab, [_kvp(ITEMS), INFO], hosts="linux_guests", name="first")
    assert first.rc == 0, first.stdout
    assert first.result("kvp")["result"]["items"]["Quoted"] == {
        "before": None,
        "after": ITEMS["Quoted"],
        "changed": True,
    }
    info = first.result("info")["result"]
    assert info["os"] == "linux" and {k: info["to_host"][k] for k in ITEMS} == ITEMS

    again = run_playbook(tmp_path, lab, [_kvp(ITEMS)], hosts="linux_guests", name="again")
    assert again.rc == 0 and again.recap("lin01")["changed"] == 0, again.stdout

    gone = run_playbook(tmp_path, lab, [_kvp(["AppRole", "Grüße"], "absent"), INFO], hosts="linux_guests", name="gone")
    assert gone.rc == 0, gone.stdout
    left = gone.result("info")["result"]["to_host"]
    assert "AppRole" not in left and "Grüße" not in left and left["Quoted"] == ITEMS["Quoted"]

    too_long = run_playbook(
        tmp_path, lab, [dict(_kvp({"Big": "v" * 1023}), ignore_errors=True)], hosts="linux_guests", name="long"
    )
    result = too_long.result("kvp")
    assert result["status"] == "failed" and "'Big'" in result["result"]["msg"] and "1022" in result["result"]["msg"]
