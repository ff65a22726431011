"""Golden contract cases (tests/contract, format in its README.md) against the lab, in-process.

Each case makes one real call: the bootstrap command ansible's PowerShell shell plugin encodes, stdin
with the library the collection ships, the lab endpoint's dispatcher, the answer read back with
``_powershell.parse_output``. tests/powershell/ runs the same cases through the real library.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from contract import lab_runner

from ansible_collections.hyperv.integration.plugins.plugin_utils import _requests

CASE_FILES = lab_runner.case_files()
OPERATIONS = sorted(_requests.SCHEMAS)


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("path", CASE_FILES, ids=_id)
def test_case_against_the_lab(path: Path) -> None:
    case = lab_runner.load_case(path)
    outcome = lab_runner.run_case(case)
    problems = lab_runner.check(case, outcome)
    assert not problems, f"{case.name}: {case.data['description']}\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", CASE_FILES, ids=_id)
def test_case_params_are_what_the_controller_sends(path: Path) -> None:
    # Every request key always sent (null where not given), as _requests.build_params makes them;
    # a case that deliberately breaks the schema says why in "malformed".
    case = lab_runner.load_case(path)
    if "malformed" in case.data:
        with pytest.raises(_requests.RequestSchemaError):
            _requests.validate_params(case.data["operation"], case.data["params"])
    else:
        _requests.validate_params(case.data["operation"], case.data["params"])


@pytest.mark.parametrize("path", CASE_FILES, ids=_id)
def test_case_state_after_is_portable_to_the_pester_runner(path: Path) -> None:
    case = lab_runner.load_case(path)
    assert lab_runner.portable_differences(case.data["expected"].get("state_after", {})) == []


def test_every_operation_has_cases() -> None:
    assert sorted({path.parent.name for path in CASE_FILES}) == OPERATIONS


def test_placeholders_resolve_and_stay_exact() -> None:
    ids = {"web01": ["4073ded1-0000-5000-8000-000000000001"], "twin": ["a-1", "a-2"]}
    value = {"id": "<vm-id:web01>", "ic": "Microsoft:<VM-ID:web01>\\X", "<vm-id:twin#2>": ["<vm-id:twin>"]}
    assert lab_runner.resolve(value, ids) == {
        "id": "4073ded1-0000-5000-8000-000000000001",
        "ic": "Microsoft:4073DED1-0000-5000-8000-000000000001\\X",
        "a-2": ["a-1"],
    }
    with pytest.raises(lab_runner.CaseError, match="no VM number 3"):
        lab_runner.resolve("<vm-id:twin#3>", ids)


def test_comparison_is_strict() -> None:
    assert lab_runner.differences({"a": True}, {"a": 1})  # true is not 1
    assert lab_runner.differences({"a": 1}, {"a": 1, "b": 2})  # an unexpected key
    assert lab_runner.differences([1, 2], [1, 2, 3])
    assert lab_runner.differences({"a": None}, {"a": []})
    assert lab_runner.differences({"a": 1}, {"a": 1, "b": 2}, subset=True) == []
    assert lab_runner.differences({"a": [1]}, {"a": [1, 2]}, subset=True)  # arrays whole, even in a subset


def test_case_files_are_valid_json_objects_with_a_description() -> None:
    for path in CASE_FILES:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["description"].strip(), path
