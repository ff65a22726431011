"""guest_kvp_info / guest_kvp_set (protocol doc section 7) through the lab's Windows guest double, for what a
golden case cannot set up: a LABFILE has no key for the guest's KVP registry, so these tests change the
double's model (tests/lab/hvlab/windows_guest.py, KvpRegistry) between calls. Every call is the real one:
the library the collection ships, the bootstrap command, the endpoint's dispatcher, ``parse_output``."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.plugins.loader import shell_loader
from contract import lab_runner
from hvlab import labfile
from hvlab.server import Lab
from hvlab.windows_guest import RegistryValues, WindowsGuest

from ansible_collections.hyperv.integration.plugins.module_utils.kvp_pool import ITEM_LIMITS
from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell, _requests

ROOT = "HKLM\\SOFTWARE\\Microsoft\\Virtual Machine"
LAB = {"host": {"name": "hv01", "language": "en-US"}, "vms": [{"name": "web01", "guest": "windows"}]}
ABSENT = {"present": False, "value": None, "kind": None}


def sz(value: str) -> dict[str, Any]:
    return {"present": True, "value": value, "kind": "String"}


@pytest.fixture
def lab() -> Any:
    built = Lab(labfile.parse(LAB), lab_runner.USERNAME, lab_runner.PASSWORD, linux_guest=None)
    yield built
    built.stop()


def guest(lab: Lab) -> WindowsGuest:
    found = next(vm.guest for vm in lab.host.vms if vm.name == "web01")
    assert isinstance(found, WindowsGuest)
    return found


def writes(lab: Lab) -> int:
    return int(lab_runner.lab_state(lab)["counters"].get("writes", 0))


def call(lab: Lab, operation: str, check_mode: bool = False, **params: Any) -> dict[str, Any]:
    if operation == "guest_kvp_set":
        params.setdefault("limits", {"key_units": ITEM_LIMITS["key_units"], "value_units": ITEM_LIMITS["value_units"]})
    built = _requests.build_params(operation, **params)
    request = _powershell.build_request(operation, built, check_mode)
    stdin = _powershell.build_stdin(_powershell.library_text(_powershell.WINDOWS_GUEST_LIBRARY), request)
    words = _powershell.build_command(shell_loader.get("powershell")).split(" ")
    endpoint = lab_runner.endpoint_of(lab, {"windows_guest": "web01"})
    answer = endpoint.backend.run(words[0], words[1:], stdin)
    response = _powershell.parse_output(
        answer.stdout.decode("utf-8"), answer.stderr.decode("utf-8"), answer.exit_code, request["nonce"]
    )
    assert isinstance(response, dict)
    return response


def items(*triples: tuple[str, str | None, str]) -> list[dict[str, Any]]:
    return [{"key": key, "value": value, "state": state} for key, value, state in triples]


THREE = items(('it\'s "q"', "$(Get-Date) `n", "present"), ("Grüße", "naïve ✓ 𝄞", "present"), ("plain", "x", "present"))


def test_a_rerun_changes_nothing_and_writes_nothing(lab: Lab) -> None:
    first = call(lab, "guest_kvp_set", items=THREE)["result"]["items"]
    assert [entry["changed"] for entry in first] == [True, True, True] and writes(lab) == 3
    again = call(lab, "guest_kvp_set", items=THREE)["result"]["items"]
    assert [entry["changed"] for entry in again] == [False, False, False]
    assert [entry["before"] for entry in again] == [sz(str(i["value"])) for i in THREE]
    assert writes(lab) == 3
    info = call(lab, "guest_kvp_info")["result"]
    assert info["to_host"] == {str(i["key"]): i["value"] for i in THREE}


def test_a_value_differing_only_in_case_is_rewritten(lab: Lab) -> None:
    guest(lab).kvp.guest = RegistryValues({"Status": "ready"})
    entry = call(lab, "guest_kvp_set", items=items(("status", "Ready", "present")))["result"]["items"][0]
    assert entry["before"] == sz("ready") and entry["after"] == sz("Ready") and entry["changed"] is True
    # The key matched ignoring case, as Windows matches value names: one value, still spelled Status.
    assert call(lab, "guest_kvp_info")["result"]["to_host"] == {"Status": "Ready"}


def test_absent_removes_exactly_the_listed_keys(lab: Lab) -> None:
    values = RegistryValues({"keep": "1", "drop": "2", "CLOUD_INIT|1|x": "3"})
    values.set("counter", 7, "DWord")
    guest(lab).kvp.guest = values
    result = call(lab, "guest_kvp_set", items=items(("drop", None, "absent"), ("counter", None, "absent")))["result"]
    assert [(e["key"], e["before"], e["after"], e["changed"]) for e in result["items"]] == [
        ("drop", sz("2"), ABSENT, True),
        ("counter", {"present": True, "value": None, "kind": "DWord"}, ABSENT, True),
    ]
    assert writes(lab) == 2
    assert call(lab, "guest_kvp_info")["result"]["to_host"] == {"keep": "1", "CLOUD_INIT|1|x": "3"}


def test_check_mode_absent_writes_nothing(lab: Lab) -> None:
    guest(lab).kvp.guest = RegistryValues({"drop": "2"})
    entry = call(lab, "guest_kvp_set", check_mode=True, items=items(("drop", None, "absent")))["result"]["items"][0]
    assert entry["after"] == ABSENT and entry["changed"] is True and writes(lab) == 0
    assert call(lab, "guest_kvp_info")["result"]["to_host"] == {"drop": "2"}


def test_not_an_administrator_fails_the_whole_call_before_any_write(lab: Lab) -> None:
    guest(lab).kvp.administrator = False
    response = call(lab, "guest_kvp_set", items=THREE)
    assert response["ok"] is False and response["result"] is None
    assert response["error"]["type"] == "System.Security.SecurityException"
    assert response["error"]["category"] == "OperationStopped"
    assert writes(lab) == 0 and call(lab, "guest_kvp_info")["result"]["to_host"] == {}
    # In check mode too (the key is opened for writing and closed again).
    assert call(lab, "guest_kvp_set", check_mode=True, items=THREE)["ok"] is False
    # Nothing to write: no access check, no error; reading needs no administrator.
    unchanged = call(lab, "guest_kvp_set", items=items(("never-set", None, "absent")))
    assert unchanged["ok"] is True and unchanged["result"]["items"][0]["changed"] is False


def test_a_missing_guest_key_is_null_on_read_and_created_on_write(lab: Lab) -> None:
    guest(lab).kvp.guest = None  # Parameters lives under Guest: gone with it
    info = call(lab, "guest_kvp_info")["result"]
    assert info["to_host"] is None and info["reasons"]["to_host"] == ROOT + "\\Guest does not exist"
    assert info["parameters"] is None
    assert info["reasons"]["parameters"] == (f"neither {ROOT}\\Guest\\Parameters nor {ROOT}\\Guest\\Parameter exists")
    predicted = call(lab, "guest_kvp_set", check_mode=True, items=items(("a", "1", "present")))["result"]
    assert predicted["key_created"] is True and writes(lab) == 0 and guest(lab).kvp.guest is None
    absent_only = call(lab, "guest_kvp_set", items=items(("a", None, "absent")))["result"]
    assert absent_only["key_created"] is False and guest(lab).kvp.guest is None
    done = call(lab, "guest_kvp_set", items=items(("a", "1", "present")))["result"]
    assert done["key_created"] is True and done["items"][0]["after"] == sz("1") and writes(lab) == 1
    assert call(lab, "guest_kvp_set", items=items(("a", "1", "present")))["result"]["key_created"] is False


def test_the_parameter_spelling_is_read_when_only_it_exists_and_named(lab: Lab) -> None:
    kvp = guest(lab).kvp
    kvp.parameters, kvp.parameter = None, RegistryValues({"HostName": "hv01"})
    info = call(lab, "guest_kvp_info")["result"]
    assert info["keys"]["parameters"] == ROOT + "\\Guest\\Parameter"
    assert info["parameters"] == {"HostName": "hv01"} and info["reasons"]["parameters"] is None


def test_values_of_other_kinds_are_named_by_kind_and_rewritten_as_reg_sz(lab: Lab) -> None:
    values = RegistryValues({"text": "t"})
    values.set("path", "%SystemRoot%", "ExpandString")
    values.set("n", 1, "DWord")
    guest(lab).kvp.guest = values
    info = call(lab, "guest_kvp_info")["result"]
    assert info["to_host"] == {"text": "t"}
    assert info["other_kinds"]["to_host"] == {"path": "ExpandString", "n": "DWord"}
    entry = call(lab, "guest_kvp_set", items=items(("n", "1", "present")))["result"]["items"][0]
    assert entry["before"] == {"present": True, "value": None, "kind": "DWord"} and entry["after"] == sz("1")


def test_host_items_reach_external_and_the_host_reads_guest_and_intrinsic_items(lab: Lab) -> None:
    double = guest(lab)
    double.kvp_host_items_changed({})  # nothing pushed yet: External does not appear
    assert call(lab, "guest_kvp_info")["result"]["from_host"] is None
    double.kvp_host_items_changed({"Role": "web", "Quote": "it's"})
    assert call(lab, "guest_kvp_info")["result"]["from_host"] == {"Role": "web", "Quote": "it's"}
    double.kvp_host_items_changed({})  # the last one removed: the key stays, empty
    assert call(lab, "guest_kvp_info")["result"]["from_host"] == {}
    call(lab, "guest_kvp_set", items=items(("Status", "Ready", "present")))
    assert double.kvp_guest_items() == ({"Status": "Ready"}, None)
    intrinsic, reason = double.kvp_intrinsic_items()
    assert reason is None and intrinsic is not None and intrinsic["OSName"] == "Windows Server 2022 Datacenter"


def test_a_stopped_data_exchange_service_answers_nothing_and_host_items_wait(lab: Lab) -> None:
    double = guest(lab)
    stop = [{"name": "vmickvpexchange", "state": "stopped", "start_mode": None}]
    start = [{"name": "vmickvpexchange", "state": "started", "start_mode": None}]
    call(lab, "guest_service_set", services=stop, time_provider_enabled=None)
    assert double.kvp_guest_items() == (None, "guest_not_answering")
    assert double.kvp_intrinsic_items() == (None, "guest_not_answering")
    double.kvp_host_items_changed({"Role": "web"})
    assert call(lab, "guest_kvp_info")["result"]["from_host"] is None  # not delivered yet
    call(lab, "guest_service_set", services=start, time_provider_enabled=None)
    assert call(lab, "guest_kvp_info")["result"]["from_host"] == {"Role": "web"}


def test_the_guest_never_writes_external(lab: Lab) -> None:
    guest(lab).kvp_host_items_changed({"Role": "web"})
    call(lab, "guest_kvp_set", items=items(("Role", "mine", "present")))
    info = call(lab, "guest_kvp_info")["result"]
    assert info["from_host"] == {"Role": "web"} and info["to_host"] == {"Role": "mine"}
