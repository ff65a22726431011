"""guest_kvp's options and the Linux guest's half: pool 1 published, pools 0, 1 and 3 read."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ansible_collections.hyperv.integration.plugins.module_utils import guest_kvp as gk
from ansible_collections.hyperv.integration.plugins.module_utils import kvp_pool
from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError

ODD = "ünïcödé ✓ $(id) `uname` 'single' \"double\""


def record(key: str, value: str) -> bytes:
    """A pool record built with struct, apart from kvp_pool's own writer."""
    return struct.pack("512s2048s", key.encode(), value.encode())


def pool(root: Path, number: int, *records: bytes) -> Path:
    path = Path(kvp_pool.pool_path(number, str(root)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(records))
    return path


def test_wishes_in_order_numbers_as_digits() -> None:
    assert gk.kvp_wishes({"b": "x", "a": 8080}, "present") == {"b": "x", "a": "8080"}
    assert gk.kvp_wishes(["b", "a"], "absent") == {"b": None, "a": None}
    assert gk.kvp_wishes({"b": "ignored"}, "absent") == {"b": None}


@pytest.mark.parametrize(
    ("items", "state", "words"),
    [
        ({}, "present", "items must be a mapping"),
        (["a"], "present", "items must be a mapping"),
        ({"a": True}, "present", "the value of 'a' must be a string, got bool True (quote it)"),
        ({"a": None}, "present", "must be a string"),
        ({1: "x"}, "present", "every key must be a string"),
        ({"": "x"}, "present", "must not be empty"),
        ({"k" * 255: "x"}, "present", "at most 254"),
        ({"k": "v" * 1023}, "present", "at most 1022"),
        ({"ключ" * 64: "x"}, "present", "at most 511 bytes"),  # 512 bytes of UTF-8, checked first
        ([""], "absent", "must not be empty"),
        ({"k": "bell\x07"}, "present", "the value holds a character the host cannot carry"),
        ({"k\x1b": "v"}, "present", "the key holds a character the host cannot carry"),
        ({"k": "\ud800"}, "present", "the value is not valid Unicode text"),  # caught by the pool first
    ],
)
def test_bad_items_are_refused_before_anything_is_written(items: object, state: str, words: str) -> None:
    with pytest.raises(ArgumentError, match=words.replace("(", r"\(").replace(")", r"\)")):
        gk.kvp_wishes(items, state)


def test_text_no_request_can_carry_is_refused_when_the_library_checks_the_rest() -> None:
    with pytest.raises(ArgumentError, match="the value is not valid Unicode text"):
        gk.kvp_wishes({"k": "\ud800"}, "present", check_limits=False)
    assert gk.kvp_wishes({"k": "v" * 5000}, "present", check_limits=False) == {"k": "v" * 5000}


def test_publish_adds_changes_and_leaves_other_keys_alone(tmp_path: Path) -> None:
    cloud_init = "CLOUD_INIT|1796104456|finish|init-local|5b8a"
    path = pool(tmp_path, 1, record(cloud_init, '{"result":"SUCCESS"}'), record("AppRole", "db"))
    wishes = gk.kvp_wishes({"AppRole": "web", "Note": ODD}, "present")
    result = gk.linux_apply(wishes, "present", False, str(tmp_path))
    assert result["changed"] is True and "failed" not in result
    assert result["items"] == {
        "AppRole": {"before": "db", "after": "web", "changed": True},
        "Note": {"before": None, "after": ODD, "changed": True},
    }
    assert result["diff"] == {"before": {"AppRole": "db"}, "after": {"AppRole": "web", "Note": ODD}}
    assert kvp_pool.read_pool(str(path)) == {cloud_init: '{"result":"SUCCESS"}', "AppRole": "web", "Note": ODD}
    again = gk.linux_apply(wishes, "present", False, str(tmp_path))
    assert again["changed"] is False


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = pool(tmp_path, 1, record("AppRole", "db"))
    before = path.read_bytes()
    result = gk.linux_apply({"AppRole": "web"}, "present", True, str(tmp_path))
    assert result["changed"] is True and result["items"]["AppRole"]["after"] == "web"
    assert path.read_bytes() == before


def test_absent_removes_exactly_the_listed_keys(tmp_path: Path) -> None:
    path = pool(tmp_path, 1, record("a", "1"), record("b", "2"), record("c", "3"))
    result = gk.linux_apply({"a": None, "c": None, "zz": None}, "absent", False, str(tmp_path))
    assert result["changed"] is True
    assert result["items"]["zz"] == {"before": None, "after": None, "changed": False}
    assert kvp_pool.read_pool(str(path)) == {"b": "2"}


def test_no_pool_directory_publish_creates_it_and_warns(tmp_path: Path) -> None:
    check = gk.linux_apply({"a": "1"}, "present", True, str(tmp_path))
    assert check["changed"] is True and not (tmp_path / "var").exists()  # check mode creates nothing
    result = gk.linux_apply({"a": "1"}, "present", False, str(tmp_path))
    assert "hv_kvp_daemon has not run" in result["warnings"][0]
    assert kvp_pool.read_pool(kvp_pool.pool_path(1, str(tmp_path))) == {"a": "1"}
    assert gk.linux_apply({"a": None}, "absent", False, str(tmp_path / "none"))["changed"] is False


def test_info_reads_the_three_pools_and_says_why_one_is_missing(tmp_path: Path) -> None:
    pool(tmp_path, 0, record("AppConfigUrl", "file:///etc/app.json"), record("Note", ODD))
    pool(tmp_path, 1, record("AppRole", "web"))
    info = gk.linux_info(str(tmp_path))
    assert info["from_host"] == {"AppConfigUrl": "file:///etc/app.json", "Note": ODD}
    assert info["to_host"] == {"AppRole": "web"}
    assert info["parameters"] is None and "hv_kvp_daemon has not run" in info["unavailable"]["parameters"]
    assert set(info["unavailable"]) == {"parameters"}
