"""Golden contract cases (tests/contract/<operation>/<case>.json, format in tests/contract/README.md):
loading, placeholder resolution, comparison, and one real call into the lab's dispatcher.

The call is the one the collection makes: the bootstrap command that ansible's PowerShell shell plugin
encodes (``_powershell.build_command``), the stdin ``_powershell.build_stdin`` builds from the library
the collection ships, and the answer read back with ``_powershell.parse_output``. The lab is built in
this process (no listener): the endpoint's dispatcher runs the command as its WinRM Receive would.
tests/powershell/ runs the same cases through the real library with stub cmdlets, by the same rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible.plugins.loader import shell_loader
from hvlab import labfile
from hvlab.counters import total
from hvlab.server import Lab

from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell

CASES_DIR = Path(__file__).resolve().parent
CASE_KEYS = {"description", "lab", "endpoint", "library", "operation", "check_mode", "params", "malformed", "expected"}
REQUIRED_KEYS = {"description", "lab", "endpoint", "operation", "check_mode", "params", "expected"}
EXPECTED_KEYS = {"ok", "result", "error", "refused", "writes", "state_after"}
ERROR_KEYS = {"type", "category", "message_contains", "vm", "service"}
LIBRARIES = {"host": _powershell.HOST_LIBRARY, "windows_guest": _powershell.WINDOWS_GUEST_LIBRARY}
# <vm-id:NAME> is the VM's id as Get-VM gives it (lower case), <VM-ID:NAME> the same upper case (as in
# IC ids); NAME#2 is the second VM with exactly that name (LABFILE order).
PLACEHOLDER = re.compile(r"<(vm-id|VM-ID):([^<>]+?)(?:#(\d+))?>")
# The state_after keys both runners model (the Pester stub has no status rules after a write).
PORTABLE_STATE = {
    "vms": {
        "*": {
            "state": None,
            "integration_services": {"*": {"enabled": None}},
            "guest": {
                "services": {"*": {"status": None, "start_mode": None}},
                "time_provider": {
                    "present": None,
                    "enabled": None,
                    "kind": None,
                    "w32time": {"status": None, "restarts": None},
                },
            },
        }
    },
    "hvsocket_services": {"*": None},
    "hvsocket_registry": None,
}
USERNAME = "lab-admin"
PASSWORD = "contract-cases"  # the dispatcher is called directly: no HTTP, no authentication


class CaseError(ValueError):
    """A case file that does not follow tests/contract/README.md."""


@dataclass
class Case:
    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"

    @property
    def endpoint(self) -> str | dict[str, str]:
        return self.data["endpoint"]

    @property
    def library(self) -> str:
        if "library" in self.data:
            return self.data["library"]
        return LIBRARIES["host" if self.data["endpoint"] == "host" else "windows_guest"]


@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str
    nonce: str
    response: dict[str, Any] | None
    state: dict[str, Any]
    ids: dict[str, list[str]] = field(default_factory=dict)  # VM name -> ids, LABFILE order


def case_files() -> list[Path]:
    return sorted(CASES_DIR.glob("*/*.json"))


def load_case(path: Path) -> Case:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise CaseError(f"{path}: a case is a JSON object")
    unknown, missing = set(data) - CASE_KEYS, REQUIRED_KEYS - set(data)
    if unknown or missing:
        raise CaseError(f"{path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    if data["operation"] != path.parent.name:
        raise CaseError(f"{path}: operation {data['operation']!r} is not its folder's name")
    endpoint = data["endpoint"]
    if endpoint != "host" and not (isinstance(endpoint, dict) and set(endpoint) == {"windows_guest"}):
        raise CaseError(f'{path}: endpoint must be "host" or {{"windows_guest": VM name}}')
    if "library" in data and data["library"] not in LIBRARIES.values():
        raise CaseError(f"{path}: library must be one of {sorted(LIBRARIES.values())}")
    if not isinstance(data["check_mode"], bool) or not isinstance(data["params"], dict):
        raise CaseError(f"{path}: check_mode must be a bool and params an object")
    expected = data["expected"]
    if not isinstance(expected, dict) or set(expected) - EXPECTED_KEYS or "writes" not in expected:
        raise CaseError(f"{path}: expected has keys {sorted(EXPECTED_KEYS)}, writes always")
    outcomes = [
        expected.get("ok") is True and "result" in expected and "error" not in expected,
        expected.get("ok") is False and isinstance(expected.get("error"), dict) and "result" not in expected,
        "refused" in expected and "ok" not in expected and "result" not in expected and "error" not in expected,
    ]
    if outcomes.count(True) != 1:
        raise CaseError(f"{path}: expected is one of ok/result, ok false/error, or refused")
    error = expected.get("error", {"type": None, "category": None})
    if set(error) - ERROR_KEYS or not {"type", "category"} <= set(error):
        raise CaseError(f"{path}: expected.error has type, category and optionally {sorted(ERROR_KEYS)}")
    if "refused" in expected and set(expected["refused"]) != {"stderr_contains"}:
        raise CaseError(f"{path}: expected.refused is {{stderr_contains}}")
    return Case(path, data)


def endpoint_of(lab: Lab, endpoint: str | dict[str, str]) -> Any:
    if endpoint == "host":
        return lab.endpoints[lab.host.name]
    assert isinstance(endpoint, dict)
    for candidate in lab.endpoints.values():
        if candidate.kind == "windows_guest" and candidate.vm_name == endpoint["windows_guest"]:
            return candidate
    raise CaseError(f"no Windows guest endpoint for VM {endpoint['windows_guest']!r}")


def lab_state(lab: Lab) -> dict[str, Any]:
    """``Lab.state()`` without what needs a listener (ports, urls): vms, hv-socket registry, counters."""
    model = lab.host.snapshot()
    counters = total([ep.counters.snapshot() for ep in lab.endpoints.values()])
    return {
        "vms": model["vms"],
        "hvsocket_services": model["hvsocket_services"],
        "hvsocket_registry": model["hvsocket_registry"],
        "counters": counters,
    }


def run_case(case: Case) -> Outcome:
    """One real call of the case's operation against a lab built from its LABFILE mapping."""
    lab = Lab(labfile.parse(case.data["lab"]), USERNAME, PASSWORD, linux_guest=None)
    try:
        ids: dict[str, list[str]] = {}
        for vm in lab.host.vms:
            ids.setdefault(vm.name, []).append(vm.id)
        endpoint = endpoint_of(lab, case.endpoint)
        request = _powershell.build_request(case.data["operation"], case.data["params"], case.data["check_mode"])
        stdin = _powershell.build_stdin(_powershell.library_text(case.library), request)
        # What ansible's winrm connection does with an already encoded command: split it into words.
        words = _powershell.build_command(shell_loader.get("powershell")).split(" ")
        answer = endpoint.backend.run(words[0], words[1:], stdin)
        stdout, stderr = answer.stdout.decode("utf-8"), answer.stderr.decode("utf-8")
        response = None
        if f"HYPERV_INTEGRATION_BEGIN_{request['nonce']}" in stdout:
            response = _powershell.parse_output(stdout, stderr, answer.exit_code, request["nonce"])
        return Outcome(answer.exit_code, stdout, stderr, request["nonce"], response, lab_state(lab), ids)
    finally:
        lab.stop()


# -- placeholders and comparison ---------------------------------------------------------------------
def resolve(value: Any, ids: dict[str, list[str]]) -> Any:
    """``value`` with every <vm-id:NAME> placeholder (in strings and object keys) replaced."""

    def one(match: re.Match[str]) -> str:
        kind, name, index = match.group(1), match.group(2), int(match.group(3) or 1)
        found = ids.get(name, [])
        if not 1 <= index <= len(found):
            raise CaseError(f"placeholder {match.group(0)!r}: no VM number {index} named {name!r} in the lab")
        vm_id = found[index - 1]
        return vm_id.upper() if kind == "VM-ID" else vm_id.lower()

    if isinstance(value, str):
        return PLACEHOLDER.sub(one, value)
    if isinstance(value, list):
        return [resolve(item, ids) for item in value]
    if isinstance(value, dict):
        return {resolve(key, ids): resolve(item, ids) for key, item in value.items()}
    return value


def _kind(value: Any) -> str:
    # JSON types, strictly: true is not 1, 1 is not "1".
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _show(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def differences(expected: Any, actual: Any, where: str = "", subset: bool = False) -> list[str]:
    """What differs between ``expected`` and ``actual``. ``subset``: objects in ``actual`` may have keys
    ``expected`` does not name (arrays are compared whole either way)."""
    if _kind(expected) != _kind(actual) or (not isinstance(expected, (dict, list)) and expected != actual):
        return [f"{where or '.'}: expected {_show(expected)}, got {_show(actual)}"]
    if isinstance(expected, dict):
        found = []
        for key in expected:
            if key not in actual:
                found.append(f"{where}.{key}: missing")
            else:
                found.extend(differences(expected[key], actual[key], f"{where}.{key}", subset))
        if not subset:
            found.extend(
                f"{where}.{key}: not expected (value {_show(actual[key])})" for key in actual if key not in expected
            )
        return found
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, got {len(actual)}: {_show(actual)}"]
        pairs = enumerate(zip(expected, actual, strict=True))
        return [line for index, (e, a) in pairs for line in differences(e, a, f"{where}[{index}]", subset)]
    return []


def check(case: Case, outcome: Outcome) -> list[str]:
    """Every way the outcome differs from the case's expectation (empty: the case passes)."""
    expected = resolve(case.data["expected"], outcome.ids)
    problems: list[str] = []
    if "refused" in expected:
        if outcome.rc != 1 or outcome.response is not None:
            problems.append(
                f"expected the call to be refused (exit 1, no answer), got rc={outcome.rc}, {_show(outcome.response)}"
            )
        wanted = expected["refused"]["stderr_contains"]
        if wanted not in outcome.stderr:
            problems.append(f"stderr does not contain {wanted!r}: {outcome.stderr!r}")
    elif outcome.response is None:
        problems.append(f"no answer between the markers (rc={outcome.rc}): {outcome.stderr.strip() or outcome.stdout}")
    else:
        response = outcome.response
        if outcome.rc != 0:
            problems.append(f"exit code {outcome.rc}, expected 0")
        problems.extend(
            differences({"protocol": 1, "operation": case.data["operation"]}, response, "response", subset=True)
        )
        if expected["ok"]:
            problems.extend(differences({"ok": True, "error": None}, response, "response", subset=True))
            problems.extend(differences(expected["result"], response.get("result"), "result"))
        else:
            problems.extend(differences({"ok": False, "result": None}, response, "response", subset=True))
            problems.extend(error_differences(expected["error"], response.get("error")))
    writes = outcome.state["counters"].get("writes", 0)
    if writes != expected["writes"]:
        problems.append(f"writes: expected {expected['writes']}, the lab counted {writes}")
    if "state_after" in expected:
        problems.extend(differences(expected["state_after"], outcome.state, "state", subset=True))
    return problems


def error_differences(expected: dict[str, Any], actual: Any) -> list[str]:
    """type and category exactly; vm and service when the case names them; a message substring only
    where the text is the collection's own (messages are localized on real hosts)."""
    if not isinstance(actual, dict):
        return [f"error: expected an object, got {_show(actual)}"]
    problems = []
    for key in ("type", "category", "vm", "service"):
        if key in expected:
            problems.extend(differences(expected[key], actual.get(key), f"error.{key}"))
    wanted = expected.get("message_contains")
    if wanted is not None and wanted not in str(actual.get("message")):
        problems.append(f"error.message does not contain {wanted!r}: {actual.get('message')!r}")
    return problems


def portable_differences(expected: Any, model: Any = None, where: str = "state_after") -> list[str]:
    """state_after keys that the Pester runner's stub state (PORTABLE_STATE by default) does not model."""
    if model is None and where == "state_after":
        model = PORTABLE_STATE
    if model is None or not isinstance(expected, dict):
        return []
    found = []
    for key, value in expected.items():
        sub = model.get(key, model.get("*", KeyError)) if isinstance(model, dict) else KeyError
        if sub is KeyError:
            found.append(f"{where}.{key}")
        else:
            found.extend(portable_differences(value, sub, f"{where}.{key}"))
    return found
