"""Every request the action plugins build satisfies what the shipped library reads under strict mode.

The library runs under ``Set-StrictMode -Version 3.0``: a request key it reads without its optional-key
helper must be present, or a real host throws PropertyNotFoundException (docs/dev/powershell-facts.md).
Each action plugin is run here for real (ActionModule.run, its own argument handling) over a table of
option combinations, with a connection whose ``_low_level_execute_command`` hands the exact command and
stdin to an in-process lab endpoint. The lab derives the keys the library reads from the library text
that arrived (hvlab/library_reads.py) and refuses a request that lacks one, so every captured request
is proven against the shipped library, not against a list kept by hand. The README's quick start, the
examples and the modules' EXAMPLES go through the same path.
"""

from __future__ import annotations

import base64
import itertools
import json
import pathlib
import re
import typing as t

import pytest
import yaml
from ansible.plugins.shell.powershell import ShellModule
from hvlab import labfile, library_reads
from hvlab.server import Lab
from support.lab_actions import LAB, LabConnection, run_action

from ansible_collections.hyperv.integration.plugins.action import (
    guest_integration_service,
    guest_integration_service_info,
    guest_kvp,
    guest_kvp_info,
    hvsocket_service,
    hvsocket_service_info,
    vm_file_copy,
    vm_integration_service,
    vm_integration_service_info,
    vm_kvp,
    vm_kvp_info,
)
from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell, _requests

REPO = pathlib.Path(__file__).resolve().parents[3]
HOST_ACTIONS: dict[str, t.Any] = {
    "vm_integration_service": vm_integration_service.ActionModule,
    "vm_integration_service_info": vm_integration_service_info.ActionModule,
    "hvsocket_service": hvsocket_service.ActionModule,
    "hvsocket_service_info": hvsocket_service_info.ActionModule,
    "vm_kvp": vm_kvp.ActionModule,
    "vm_kvp_info": vm_kvp_info.ActionModule,
    "vm_file_copy": vm_file_copy.ActionModule,
}
GUEST_ACTIONS: dict[str, t.Any] = {
    "guest_integration_service": guest_integration_service.ActionModule,
    "guest_integration_service_info": guest_integration_service_info.ActionModule,
    "guest_kvp": guest_kvp.ActionModule,
    "guest_kvp_info": guest_kvp_info.ActionModule,
}


def assert_strictly_readable(connection: LabConnection) -> None:
    assert connection.requests, "the action sent nothing"
    for library, request, answer in zip(connection.libraries, connection.requests, connection.results, strict=True):
        _requests.validate_params(request["operation"], request["params"])
        assert library_reads.strict_mode_violation(library, request) is None, request
        assert answer.recognised, answer.stderr
        text = answer.stdout.decode()
        assert "PropertyNotFoundException" not in base64_payloads(text), request


def base64_payloads(stdout: str) -> str:
    return " ".join(base64.b64decode(m).decode() for m in re.findall(r"^([A-Za-z0-9+/=]{8,})\r?$", stdout, re.M))


GSI = {"guest_service_interface": "enabled"}
HOST_CASES: list[tuple[str, dict[str, t.Any], bool]] = [
    ("vm_integration_service", {"name": "web01", "services": GSI}, False),
    ("vm_integration_service", {"name": ["web01", "db01"], "services": {"vss": False, "Takt": True}}, False),
    ("vm_integration_service", {"name": "web01", "services": GSI}, True),
    ("vm_integration_service", {"vm": "Prüf'VM $(x)", "services": {"time_synchronization": "disabled"}}, False),
    ("vm_integration_service", {"name": [], "services": GSI}, False),
    ("vm_integration_service", {"name": "nosuch", "services": GSI}, False),
    ("vm_integration_service", {"vms": [{"name": "web01", "services": GSI}, {"name": "db01", "services": {}}]}, False),
    ("vm_integration_service", {"vms": [{"name": "web01", "services": GSI}]}, True),
    ("vm_integration_service", {"name": "web01", "services": GSI, "wait": True, "wait_timeout": 0}, False),
    (
        "vm_integration_service",
        {"vms": [{"name": "web01", "services": {"heartbeat": "enabled"}}], "wait": True, "wait_timeout": 0},
        False,
    ),
    ("vm_integration_service_info", {}, False),
    ("vm_integration_service_info", {"name": ["web01", "nosuch"]}, False),
    ("vm_integration_service_info", {"name": "db01"}, True),
    ("hvsocket_service", {"vsock_port": 2761, "name": "app"}, False),
    ("hvsocket_service", {"vsock_port": 2761, "name": "app"}, True),
    ("hvsocket_service", {"name": "by name only"}, False),
    ("hvsocket_service", {"service_id": "00000ac9-facb-11e6-bd58-64006a7986d3", "state": "absent"}, False),
    (
        "hvsocket_service",
        {
            "services": [
                {"vsock_port": 1, "name": "a"},
                {"name": "b", "state": "present"},
                {"vsock_port": 2, "state": "absent"},
            ]
        },
        False,
    ),
    ("hvsocket_service_info", {}, False),
    ("vm_kvp", {"name": "web01", "items": {"role": "web"}}, False),
    ("vm_kvp", {"name": ["web01", "db01"], "items": {"note": 'it\'s "q" $(x)', "grüße": "✓"}}, True),
    ("vm_kvp", {"name": "web01", "items": ["role"], "state": "absent"}, False),
    ("vm_kvp", {"name": "nosuch", "items": {"a": "1"}}, False),
    ("vm_kvp", {"name": "web01", "items": {"big": "v" * 1100}}, False),
    (
        "vm_kvp",
        {"vms": [{"name": "web01", "items": {"a": "1"}}, {"name": "db01", "items": ["b"], "state": "absent"}]},
        False,
    ),
    ("vm_kvp_info", {}, False),
    ("vm_kvp_info", {"name": ["web01", "nosuch"]}, False),
    ("vm_kvp_info", {"name": "db01"}, True),
]
GUEST_CASES: list[tuple[str, dict[str, t.Any], bool]] = [
    ("guest_integration_service", {"services": {"vss": "started"}}, False),
    ("guest_integration_service", {"services": {"vss": {"state": "stopped", "start_mode": "manual"}}}, False),
    ("guest_integration_service", {"services": {"heartbeat": {"start_mode": "automatic", "state": "started"}}}, True),
    ("guest_integration_service", {"host_time_samples": False}, False),
    ("guest_integration_service", {"services": {"time_synchronization": "restarted"}, "host_time_samples": True}, True),
    ("guest_integration_service_info", {}, False),
    ("guest_kvp", {"items": {"status": "ready", "grüße": "it's $(x)"}}, False),
    ("guest_kvp", {"items": ["status"], "state": "absent"}, True),
    ("guest_kvp", {"items": {"big": "v" * 1100}}, False),
    ("guest_kvp_info", {}, False),
]


# Every combination of the host modules' option forms (one name, a list, a number, hostile text; each
# services spelling; check mode; wait), on top of the hand-picked cases above.
NAME_FORMS: list[t.Any] = ["web01", ["web01", "db01"], ["Prüf'VM $(x)"], 2019, ["nosuch"]]
SERVICES_FORMS: list[dict[str, t.Any]] = [
    {"guest_service_interface": "enabled"},
    {"Takt": False, "vss": "disabled", "Gastdienstschnittstelle": True},
    {"time_synchronization": True, "key_value_pair_exchange": "enabled", "shutdown": "enabled", "heartbeat": True},
]
# Every name form with every services form; check mode and wait (which adds a second request) go round
# their four combinations over those pairs, so each name form meets both waits and both modes. Check
# mode is not part of params, so the full product would repeat requests (it was 60 cases, now 15).
CHECK_AND_WAIT = list(itertools.product((False, True), (False, True)))
HOST_CASES += [
    ("vm_integration_service", {"name": name, "services": services, "wait": wait, "wait_timeout": 0}, check)
    for index, (name, services) in enumerate(itertools.product(NAME_FORMS, SERVICES_FORMS))
    for check, wait in [CHECK_AND_WAIT[index % len(CHECK_AND_WAIT)]]
]
HOST_CASES += [
    (
        "vm_integration_service",
        {"vms": [{"name": n, "services": s} for n, s in zip(names, SERVICES_FORMS, strict=False)]},
        check,
    )
    for names, check in itertools.product(
        [["web01"], ["web01", "db01"], ["db01", "Prüf'VM $(x)", "web01"]], (False, True)
    )
]
HOST_CASES += [
    ("hvsocket_service", dict(wish, state=state, force=force), force)  # check mode alternates with force
    for wish, state, force in itertools.product(
        [
            {"vsock_port": 80, "name": "web"},
            {"service_id": "{0000abcd-facb-11e6-bd58-64006a7986d3}", "name": "x"},
            {"name": "only a name"},
        ],
        ("present", "absent"),
        (False, True),
    )
]


@pytest.mark.parametrize(("module", "args", "check_mode"), HOST_CASES, ids=lambda v: json.dumps(v)[:60])
def test_host_requests_satisfy_the_library_reads(module: str, args: dict, check_mode: bool) -> None:
    result, connection = run_action(HOST_ACTIONS[module], dict(args), "hv01", check_mode)
    if module == "vm_integration_service" and args.get("name") == []:
        assert connection.requests == [] and result["changed"] is False  # nothing to ask: nothing sent
        return
    assert_strictly_readable(connection)
    assert "PropertyNotFoundException" not in str(result.get("msg")), result


@pytest.mark.parametrize(("module", "args", "check_mode"), GUEST_CASES, ids=lambda v: json.dumps(v)[:60])
def test_windows_guest_requests_satisfy_the_library_reads(module: str, args: dict, check_mode: bool) -> None:
    result, connection = run_action(GUEST_ACTIONS[module], dict(args), "web01", check_mode)
    assert_strictly_readable(connection)
    assert "PropertyNotFoundException" not in str(result.get("msg")), result


def _tasks_of(data: t.Any) -> t.Iterator[dict[str, t.Any]]:
    """Every mapping in a YAML document that calls one of the collection's modules."""
    if isinstance(data, dict):
        yield data
        for value in data.values():
            yield from _tasks_of(value)
    elif isinstance(data, list):
        for value in data:
            yield from _tasks_of(value)


def _untemplated(value: t.Any) -> t.Any:
    """Templated strings become a VM name of the lab (the request's shape does not depend on them)."""
    if isinstance(value, str) and "{{" in value:
        return "web01"
    if isinstance(value, dict):
        return {k: _untemplated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untemplated(v) for v in value]
    return value


def documented_calls() -> list[tuple[str, str, dict[str, t.Any]]]:
    """(where, module, args) for every call of a host or guest module in the README, examples/ and the
    modules' EXAMPLES."""
    texts: list[tuple[str, str]] = []
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    texts += [("README.md", block) for block in re.findall(r"```yaml\n(.*?)```", readme, re.S)]
    texts += [
        (str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in sorted((REPO / "examples").glob("*.yml"))
    ]
    for path in sorted((REPO / "plugins/modules").glob("*.py")):
        match = re.search(r'EXAMPLES = r"""(.*?)"""', path.read_text(encoding="utf-8"), re.S)
        if match:
            texts.append((str(path.relative_to(REPO)), match.group(1)))
    calls = []
    for where, text in texts:
        for task in _tasks_of(yaml.safe_load(text)):
            for key, args in task.items():
                module = str(key).removeprefix("hyperv.integration.")
                if module in HOST_ACTIONS or module in GUEST_ACTIONS:
                    calls.append((where, module, _untemplated(args or {})))
    return calls


DOCUMENTED = documented_calls()


def test_the_readme_quick_start_is_among_the_documented_calls() -> None:
    readme = [(m, a) for where, m, a in DOCUMENTED if where == "README.md"]
    assert (
        "vm_integration_service",
        {"name": "web01", "services": {"guest_service_interface": "enabled", "time_synchronization": "enabled"}},
    ) in readme
    assert len({where for where, _m, _a in DOCUMENTED}) >= 8  # README, examples, EXAMPLES of the modules


@pytest.mark.parametrize(("where", "module", "args"), DOCUMENTED, ids=lambda v: str(v)[:50])
def test_documented_calls_satisfy_the_library_reads(where: str, module: str, args: dict) -> None:
    cls = HOST_ACTIONS.get(module) or GUEST_ACTIONS[module]
    endpoint = "hv01" if module in HOST_ACTIONS else "web01"
    if module == "vm_file_copy" and not args.get("remote_src"):
        args = dict(args, src=__file__)  # a file on this controller (the request does not depend on it)
    result, connection = run_action(cls, args, endpoint)
    if not connection.requests and module in GUEST_ACTIONS:
        # A Linux-guest example (hv_sock, enabled): the Windows side refuses it before sending anything.
        assert result["failed"] is True and "Windows guest" in result["msg"], result
        return
    assert_strictly_readable(connection)


def test_a_request_missing_an_unguarded_key_fails_in_the_lab_as_strict_mode_would() -> None:
    # The seeded defect of the review: a change without the key the library reads.
    lab = Lab(labfile.parse(LAB), "lab-admin", "secret", linux_guest=None)
    library = _powershell.library_text(_powershell.HOST_LIBRARY)
    params = _requests.build_params(
        "vm_integration_service_set",
        vm_names=["web01"],
        changes=[{"guid": "6C09BB55-D683-4DA0-8931-C9BF705F6480", "enabled": True, "vm": None}],
    )
    del params["changes"][0]["enabled"]
    request = _powershell.build_request("vm_integration_service_set", params, False)
    stdin = _powershell.build_stdin(library, request)
    words = _powershell.build_command(ShellModule()).split()
    answer = lab.endpoints["hv01"].backend.run(words[0], words[1:], stdin)
    response = _powershell.parse_output(
        answer.stdout.decode(), answer.stderr.decode(), answer.exit_code, request["nonce"]
    )
    assert response["ok"] is False
    assert response["error"]["type"] == "System.Management.Automation.PropertyNotFoundException"
    assert (
        response["error"]["message"]
        == "The property 'enabled' cannot be found on this object. Verify that the property exists."
    )
    assert lab.host.counters.snapshot().get("writes", 0) == 0


def test_the_library_reads_only_keys_of_the_schema_and_optional_ones_through_the_helper() -> None:
    """Static cross-check: every read of a request key names a key of that operation's schema; a read
    through Get-RequestValue is of a key the schema marks optional, and an unguarded one of a required key."""
    for body in (_powershell.HOST_LIBRARY, _powershell.WINDOWS_GUEST_LIBRARY):
        library = _powershell.library_text(body)
        for read in library_reads.request_reads(library):
            if read.path == ("params",):
                continue  # the params object itself, always sent (protocol doc section 2)
            if read.path[0] != "params":
                assert read.path[0] in ("operation", "nonce", "check_mode"), read
                continue
            spec = _schema_field(library, read)
            assert spec is not None, "%s: %s reads %s, which no operation's schema has" % (
                body,
                read.function,
                read.dotted(),
            )
            assert spec.optional == read.guarded, "%s line %d: %s is %s in the schema but read %s" % (
                body,
                read.line,
                read.dotted(),
                "optional" if spec.optional else "required",
                "through the helper" if read.guarded else "unguarded",
            )


def _schema_field(library: str, read: library_reads.Read) -> _requests.Field | None:
    from hvlab import pstree

    table = pstree.operation_table(pstree.parse(library))
    candidates = [op for op, function in table.items() if function == read.function] or list(table)
    for operation in candidates:
        spec: t.Any = _requests.SCHEMAS[operation]
        for step in read.path[1:]:
            if isinstance(spec, dict):
                spec = spec.get(step)
            elif step == library_reads.ELEMENT:
                spec = spec.items
            else:
                spec = spec.keys.get(step)
            if spec is None:
                break
        if spec is not None:
            return spec
    return None


# -- the checks above catch the defects they are for (seeded into copies of the shipped library) --------


SHIPPED_HOST_LIBRARY = _powershell.library_text(_powershell.HOST_LIBRARY)


def _seeded_host_library(old: str, new: str) -> str:
    library = SHIPPED_HOST_LIBRARY
    assert old in library
    return library.replace(old, new, 1)


def test_seeded_unguarded_read_of_a_key_the_controller_does_not_send_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # The review's defect: the library reads $change.vm unguarded; a request without it fails.
    seeded = _seeded_host_library("$only = Get-RequestValue -Object $change -Name 'vm'", "$only = $change.vm_name")
    monkeypatch.setattr(_powershell, "library_text", lambda _body: seeded)
    result, connection = run_action(HOST_ACTIONS["vm_integration_service"], {"name": "web01", "services": GSI}, "hv01")
    assert library_reads.strict_mode_violation(seeded, connection.requests[0]) == (
        "vm_name",
        "params.changes[].vm_name",
    )
    assert result["failed"] is True
    assert "The property 'vm_name' cannot be found on this object" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    with pytest.raises(AssertionError):
        assert_strictly_readable(connection)


def test_seeded_read_that_disagrees_with_the_schema_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # An optional key read unguarded, and a key no schema has: both reported by the static cross-check.
    seeded = _seeded_host_library("$only = Get-RequestValue -Object $change -Name 'vm'", "$only = $change.vm")
    monkeypatch.setattr(_powershell, "library_text", lambda _body: seeded)
    with pytest.raises(AssertionError, match=r"params.changes\[\].vm is optional in the schema but read unguarded"):
        test_the_library_reads_only_keys_of_the_schema_and_optional_ones_through_the_helper()
    seeded = _seeded_host_library("[bool]$change.enabled", "[bool]$change.wanted")
    monkeypatch.setattr(_powershell, "library_text", lambda _body: seeded)
    with pytest.raises(AssertionError, match=r"reads params.changes\[\].wanted, which no operation's schema has"):
        test_the_library_reads_only_keys_of_the_schema_and_optional_ones_through_the_helper()


def test_the_shipped_library_uses_request_values_only_in_forms_the_lab_follows() -> None:
    for body in (_powershell.HOST_LIBRARY, _powershell.WINDOWS_GUEST_LIBRARY):
        assert library_reads.untracked_uses(_powershell.library_text(body)) == (), body


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        # Each would hide reads from the derivation, so the lab would accept what a host refuses.
        (
            "foreach ($change in @($Request.params.changes)) {",
            "foreach ($change in @($Request.params.changes | ForEach-Object { $_ })) {",
            "piped into a command",
        ),
        (
            "Resolve-VmName -Names @($Request.params.vm_names)",
            "Resolve-VmName @($Request.params.vm_names)",
            "positionally",
        ),
        (
            "Resolve-VmName -Names @($Request.params.vm_names)",
            "Resolve-VmName -Na @($Request.params.vm_names)",
            "full name",
        ),
        (
            "$checkMode = [bool]$Request.check_mode",
            "$checkMode = [bool]$Request['check_mode']",
            "indexed with a string",
        ),
        (
            "$checkMode = [bool]$Request.check_mode",
            # (.ForEach( does not even parse with tree-sitter-powershell: the parse test refuses it.)
            "$checkMode = [bool]$Request.params.changes.Where({ $_.x })",
            "where() on a request value",
        ),
        (
            "$checkMode = [bool]$Request.check_mode",
            "$p = $Request.params; $checkMode = [bool]$Request.check_mode; $p = $Request.params.changes",
            "bound to two request paths",
        ),
    ],
)
def test_seeded_untracked_use_is_reported_and_the_lab_refuses_the_library(old: str, new: str, why: str) -> None:
    seeded = _seeded_host_library(old, new)
    found = library_reads.untracked_uses(seeded)
    assert found and any(why in text for _line, text in found), found
    lab = Lab(labfile.parse(LAB), "lab-admin", "secret", linux_guest=None)
    request = _powershell.build_request("vm_integration_service_info", {"vm_names": None}, False)
    words = _powershell.build_command(ShellModule()).split()
    answer = lab.endpoints["hv01"].backend.run(words[0], words[1:], _powershell.build_stdin(seeded, request))
    assert answer.exit_code == 1 and b"forms the lab cannot follow" in answer.stderr
