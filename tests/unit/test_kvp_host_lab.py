"""Key-Value Pair Exchange, the host's half (protocol doc section 9): several calls on one lab.

The golden cases (tests/contract/vm_kvp_*) make one call each; these make a sequence on one lab (set,
read back, rerun, remove) with the library the collection ships, and check the lab's host model and its
guest hook (hvlab.hyperv_host.KvpGuest) directly.
"""

from __future__ import annotations

from typing import Any

import pytest
from ansible.plugins.loader import shell_loader
from contract import lab_runner
from hvlab import labfile
from hvlab.hyperv_host import KvpGuest, KvpRead, StaticGuest
from hvlab.server import Lab

from ansible_collections.hyperv.integration.plugins.module_utils import ic_catalog
from ansible_collections.hyperv.integration.plugins.module_utils.kvp_pool import ITEM_LIMITS
from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell, _requests

KVP_GUID = next(ic.host_guid for ic in ic_catalog.CATALOG if ic.key == "key_value_pair_exchange")
NOTE = 'it\'s "quoted" $(Remove-Item C:\\ -Recurse) `n <&>'


def _lab(vms: list[dict[str, Any]], faults: list[dict[str, Any]] | None = None) -> Lab:
    spec = {"host": {"name": "hv01", "language": "en-US"}, "vms": vms, "faults": faults or []}
    return Lab(labfile.parse(spec), lab_runner.USERNAME, lab_runner.PASSWORD, linux_guest=None)


def _call(lab: Lab, operation: str, check_mode: bool = False, **values: Any) -> dict[str, Any]:
    if operation == "vm_kvp_set":
        values.setdefault("limits", ITEM_LIMITS)  # as the action plugin sends them
    params = _requests.build_params(operation, **values)
    request = _powershell.build_request(operation, params, check_mode)
    stdin = _powershell.build_stdin(_powershell.library_text(_powershell.HOST_LIBRARY), request)
    words = _powershell.build_command(shell_loader.get("powershell")).split(" ")
    answer = lab.endpoints[lab.host.name].backend.run(words[0], words[1:], stdin)
    response = _powershell.parse_output(
        answer.stdout.decode("utf-8"), answer.stderr.decode("utf-8"), answer.exit_code, request["nonce"]
    )
    assert response["ok"], response
    return response["result"]


def _change(key: str, value: str | None, state: str = "present", vm: str | None = None) -> dict[str, Any]:
    return {"vm": vm, "key": key, "value": value, "state": state}


def _items(result: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(item["key"], item["changed"]) for vm in result["vms"] for item in vm["items"]]


def test_the_catalog_guid_is_the_one_the_lab_knows() -> None:
    assert KVP_GUID == "2A34B1C2-FD73-4043-8A5B-DD2159BC743F"


def test_set_read_rerun_remove_on_one_lab() -> None:
    lab = _lab([{"name": "web01", "guest": "windows", "kvp_host_items": {"cloud": "keep"}}])
    try:
        changes = [_change("role", "web"), _change("note", NOTE), _change("größe", "✓ 日本語")]
        assert _items(_call(lab, "vm_kvp_set", vm_names=["web01"], changes=changes)) == [
            ("role", True),
            ("note", True),
            ("größe", True),
        ]
        info = _call(lab, "vm_kvp_info", vm_names=["web01"], kvp_guid=KVP_GUID)
        assert info["vms"][0]["host_items"] == {"cloud": "keep", "role": "web", "note": NOTE, "größe": "✓ 日本語"}
        writes = lab.host.counters.snapshot().get("writes", 0)
        rerun = _call(lab, "vm_kvp_set", vm_names=["web01"], changes=changes)
        assert _items(rerun) == [("role", False), ("note", False), ("größe", False)]
        assert lab.host.counters.snapshot().get("writes", 0) == writes  # a rerun writes nothing
        gone = [_change("role", None, "absent"), _change("größe", None, "absent"), _change("never", None, "absent")]
        assert _items(_call(lab, "vm_kvp_set", vm_names=["web01"], changes=gone)) == [
            ("role", True),
            ("größe", True),
            ("never", False),
        ]
        # exactly the listed keys went; the others (cloud-init's, say) stayed
        assert lab.host.vms[0].kvp_host_items == {"cloud": "keep", "note": NOTE}
    finally:
        lab.stop()


def test_check_mode_writes_nothing_and_answers_the_wish() -> None:
    lab = _lab([{"name": "web01", "guest": "linux", "kvp_host_items": {"role": "old"}}])
    try:
        result = _call(lab, "vm_kvp_set", check_mode=True, vm_names=["web01"], changes=[_change("role", "new")])
        assert result["vms"][0]["items"] == [
            {"key": "role", "before": "old", "after": "new", "changed": True, "error": None}
        ]
        assert lab.host.vms[0].kvp_host_items == {"role": "old"}
    finally:
        lab.stop()


def test_the_lab_is_not_more_forgiving_than_a_host() -> None:
    lab = _lab([{"name": "web01", "guest": "windows", "kvp_host_items": {"role": "web"}}])
    try:
        vm = lab.host.vms[0]
        assert lab.host.kvp_write(vm, "AddKvpItems", "role", "again") == 32773  # containers/libhvee#193
        assert lab.host.kvp_write(vm, "ModifyKvpItems", "missing", "x") == 32773
        assert lab.host.kvp_write(vm, "RemoveKvpItems", "missing", "") == 32773
        assert vm.kvp_host_items == {"role": "web"}
        assert lab.host.counters.snapshot().get("writes", 0) == 0
    finally:
        lab.stop()


class RecordingGuest(StaticGuest):
    """A guest double with its own KVP pools: what the Linux guest double must provide."""

    def __init__(self, guest: KvpRead, intrinsic: KvpRead) -> None:
        super().__init__("linux")
        self.guest, self.intrinsic = guest, intrinsic
        self.pushed: list[dict[str, str]] = []

    def kvp_guest_items(self) -> KvpRead:
        return self.guest

    def kvp_intrinsic_items(self) -> KvpRead:
        return self.intrinsic

    def kvp_host_items_changed(self, items: dict[str, str]) -> None:
        self.pushed.append(dict(items))


def test_the_guest_hook_answers_guest_items_and_hears_host_items() -> None:
    lab = _lab([{"name": "db01", "guest": "linux"}])
    try:
        guest = RecordingGuest(({"build": "42"}, None), ({"OSName": "Debian GNU/Linux"}, None))
        assert isinstance(guest, KvpGuest)
        lab.host.vms[0].guest = guest
        entry = _call(lab, "vm_kvp_info", vm_names=["db01"], kvp_guid=KVP_GUID)["vms"][0]
        assert (entry["guest_items"], entry["intrinsic_items"], entry["guest_items_unavailable"]) == (
            {"build": "42"},
            {"OSName": "Debian GNU/Linux"},
            None,
        )
        _call(lab, "vm_kvp_set", vm_names=["db01"], changes=[_change("role", "db")])
        assert guest.pushed == [{"role": "db"}]
    finally:
        lab.stop()


@pytest.mark.parametrize(
    ("intrinsic", "reason"),
    [((None, "guest_not_answering"), "guest_not_answering"), (({}, None), "guest_not_answering")],
)
def test_a_guest_that_does_not_answer_gives_null_and_the_reason(intrinsic: KvpRead, reason: str) -> None:
    lab = _lab([{"name": "db01", "guest": "linux"}])
    try:
        lab.host.vms[0].guest = RecordingGuest(({}, None), intrinsic)
        entry = _call(lab, "vm_kvp_info", vm_names=["db01"], kvp_guid=KVP_GUID)["vms"][0]
        assert (entry["guest_items"], entry["intrinsic_items"], entry["guest_items_unavailable"]) == (
            None,
            None,
            reason,
        )
    finally:
        lab.stop()


def test_the_library_builds_item_xml_only_with_xmlwriter() -> None:
    # No value is ever spliced into PowerShell or XML text: the KVP section of the host library names
    # no XML markup in a string that also holds a variable.
    text = _powershell.library_text(_powershell.HOST_LIBRARY)
    section = text[text.index("# --- Key-Value Pair Exchange, the host's half") :]
    for line in section.splitlines():
        if "<" in line and '"' in line and "$" in line and "PROPERTY" in line:
            pytest.fail("XML built as text from a value: " + line.strip())
    assert "[System.Xml.XmlWriter]::Create" in section and "Test-XmlText" in section
    assert "[System.Xml.XmlConvert]::VerifyXmlChars" in text[: text.index("# --- Key-Value Pair Exchange")]
