"""The API contract rules (tests/pscheck/api_rules.py) and their data (tests/pscheck/data) on the PowerShell
the collection ships.

For every rule: the shipped code has no violations; a defect of that kind seeded into a copy of the real
library text (a small string replacement) is reported on exactly its line; small snippets (api_snippets.yml)
pin down what the rule accepts and refuses. Type inference is checked to cover every variable assigned from
a cmdlet with a typed output, and every data entry to name its source. A seed whose anchor is gone fails with
"seed anchor": update the seed to the library.
"""

from __future__ import annotations

from typing import Any

import pytest
from hvlab import pstree
from pscheck import api_rules as ar
from pscheck.shipped import GUEST, HOST, SHIPPED, line_of, locate, read_cases, seed, source, strict

RULES = {
    ar.CMDLET_RULE: ar.check_cmdlets,
    ar.MEMBER_RULE: ar.check_members,
    ar.ENUM_RULE: ar.check_enum_text,
    ar.PATH_RULE: ar.check_literal_paths,
}


def report(name: str, violations: list[ar.Violation]) -> str:
    return "\n".join("%s: %s: %s [%s]" % (locate(name, v.line), v.text, v.problem, v.rule) for v in violations)


def rule_lines(violations: list[ar.Violation], rule: str) -> set[int]:
    return {v.line for v in violations if v.rule == rule}


# --- (i) the shipped PowerShell ---------------------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_powershell_has_no_violations(name: str, rule: str) -> None:
    found = RULES[rule](source(name))
    assert not found, "\n" + report(name, found)


def _typed_cmdlet(command: pstree.Command, catalog: ar.CmdletCatalog, types: ar.TypeCatalog) -> str | None:
    """The cmdlet when the data gives its output a type (independently of the inference code paths)."""
    cmdlet = catalog.get(command.name)
    if cmdlet is None:
        return None
    if (cmdlet.infer or {}).get("from") in ("type-name", "cim-class", "provider", "type"):
        return cmdlet.name
    outputs = [o for o in cmdlet.outputs if o != "None"]
    if len(outputs) == 1 and outputs[0].lower() in types.types:
        return cmdlet.name
    return None


def _assigned_from_typed_cmdlets(text: str) -> dict[str, str]:
    """'function:variable' -> cmdlet, for every variable assigned (or foreach-bound) from a pipeline whose
    own commands include a cmdlet with a typed output."""
    catalog, types = ar._catalogs()
    root = pstree.parse(text)
    functions = pstree.functions(root)
    found = {}
    for node in pstree.walk(root):
        if node.type == "assignment_expression":
            target, value = pstree.strip(node.named_children[0].named_children[0]), node.named_children[-1]
        elif node.type == "foreach_statement":
            target = next(c for c in node.named_children if c.type == "variable")
            value = next(c for c in node.named_children if c.type == "pipeline")
        else:
            continue
        name = pstree.variable_name(target)
        if target.type != "variable" or not name or name == "null":
            continue
        for command_node in pstree.walk(value):
            if command_node.type != "command" or _nested(command_node, value):
                continue
            command = pstree.command(command_node)
            if pstree.bare_name(command.name) in functions:
                continue
            cmdlet = _typed_cmdlet(command, catalog, types)
            if cmdlet:
                function = pstree.enclosing_function(node)
                found["%s:%s" % (pstree.function_name(function) if function else "<script>", name)] = cmdlet
    return found


_NESTING = frozenset(
    {"script_block_expression", "command", "statement_block", "foreach_statement", "if_statement", "while_statement"}
)


def _nested(command: pstree.Node, value: pstree.Node) -> bool:
    """Inside a script block, another command's argument or a compound statement (the collection of a
    foreach, an if condition): not what the assignment receives."""
    for parent in pstree.ancestors(command):
        if parent.type in _NESTING:
            return True
        if parent.id == value.id:
            return False
    return False


@pytest.mark.parametrize("name", SHIPPED)
def test_inference_types_every_variable_assigned_from_a_typed_cmdlet(name: str) -> None:
    expected = _assigned_from_typed_cmdlets(source(name))
    typed = ar.typed_variables(source(name))
    assert expected, "no variable is assigned from a typed cmdlet: the check would prove nothing"
    missing = {variable: cmdlet for variable, cmdlet in expected.items() if variable not in typed}
    assert not missing, "inference left these untyped (their members go unchecked): %s" % missing
    assert not ar.inference_gaps(source(name))


def test_a_variable_inference_cannot_type_is_reported() -> None:
    text = seed(source(GUEST), "$key = Get-Item -LiteralPath $TimeProviderKey", "$key = Get-Item -LiteralPath $Where")
    assert "get-timeproviderstate:key" in _assigned_from_typed_cmdlets(text)
    assert "get-timeproviderstate:key" not in ar.typed_variables(text)
    found = ar.check_members(text)
    assert rule_lines(found, ar.MEMBER_RULE) == {line_of(text, "$key = Get-Item -LiteralPath $Where")}
    assert "cannot infer the type of $key" in found[0].problem


def test_typed_variables_of_the_shipped_libraries() -> None:
    """What inference knows in the shipped code (the mechanisms of the module docstring, one each)."""
    host, guest = ar.typed_variables(source(HOST)), ar.typed_variables(source(GUEST))
    vm, ic = "Microsoft.HyperV.PowerShell.VirtualMachine", "Microsoft.HyperV.PowerShell.VMIntegrationComponent"
    assert host["resolve-vmname:allvms"] == "System.Array of " + vm  # @(Hyper-V\Get-VM)
    assert host["resolve-vmname:vm"] == vm  # foreach over it
    assert host["resolve-vmname:record"] == "System.Management.Automation.ErrorRecord"  # -ErrorVariable
    assert host["get-vmintegrationstatus:vm"] == vm  # declared $resolved.vms -> foreach -> -Vm $vm
    assert host["get-icguid:integrationservice"] == ic  # $_ of Where-Object, $ic of foreach: call sites agree
    assert host["set-oneintegrationservice:fresh"] == "System.Array of " + ic
    assert host["get-hvsocketentry:key"] == "Microsoft.Win32.RegistryKey"  # Get-ChildItem of a registry path
    assert host["get-errorrecorddata:errorrecord"] == "System.Management.Automation.ErrorRecord"  # $_ in catch
    assert guest["get-servicestate:service"] == "System.ServiceProcess.ServiceController"
    assert guest["get-servicestate:wmi"] == "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_Service"
    assert guest["get-timeproviderstate:key"] == "Microsoft.Win32.RegistryKey"  # Get-Item
    assert guest["assert-subkeywritable:key"] == "Microsoft.Win32.RegistryKey"  # [Registry]::...OpenSubKey()


def test_every_declaration_matches_the_shipped_code() -> None:
    stale = ar.unused_declarations([source(name) for name in SHIPPED])
    assert not stale, "types.yml declarations no expression matches any more: %s" % stale


# --- (ii) seeded defects: each reported on exactly its line -------------------------------------------

SEEDS = [
    # (library, rule, anchor, replacement, words the problem must contain)
    (
        HOST,
        ar.CMDLET_RULE,
        "Enable-VMIntegrationService -VMIntegrationService $Item.ic }",
        "Enable-VMIntegrationService -VMIntegrationService $Item.ic -Name 'x' }",
        "no parameter set of Enable-VMIntegrationService takes -VMIntegrationService -Name",
    ),
    (
        HOST,
        ar.CMDLET_RULE,
        "Get-ChildItem -LiteralPath $GuestCommunicationServices",
        "Get-ChildItem -Literal $GuestCommunicationServices",
        "-Literal abbreviates -LiteralPath",
    ),
    (
        HOST,
        ar.CMDLET_RULE,
        "ConvertFrom-Json -InputObject $RequestJson",
        "ConvertFrom-Json -InputObject $RequestJson -AsHashtable",
        "exists only in PowerShell 6.0+",
    ),
    (
        HOST,
        ar.CMDLET_RULE,
        "Test-Path -LiteralPath $GuestCommunicationServices",
        "Test-Paht -LiteralPath $GuestCommunicationServices",
        "Test-Paht is not in cmdlets.yml",
    ),
    (
        HOST,
        ar.CMDLET_RULE,
        "Hyper-V\\Get-VM -ErrorAction",
        "VMware.VimAutomation.Core\\Get-VM -ErrorAction",
        "Get-VM is in module Hyper-V",
    ),
    (
        GUEST,
        ar.CMDLET_RULE,
        "Restart-Service -Name 'W32Time' -Force",
        "Restart-Service -Force",
        "no parameter set of Restart-Service takes -Force",
    ),
    (
        GUEST,
        ar.CMDLET_RULE,
        "Get-Service -Name $Name -ErrorAction SilentlyContinue",
        "Get-Service -Name $Name -ErrorAct SilentlyContinue",
        "-ErrorAct abbreviates -ErrorAction",
    ),
    (
        HOST,
        ar.CMDLET_RULE,
        "Get-ErrorRecordData -ErrorRecord $_ -VmName $VmName",
        "Get-ErrorRecordData -ErrorRecord $_ -VmNam $VmName",
        "-VmNam abbreviates -VmName of Get-ErrorRecordData",
    ),
    (
        HOST,
        ar.MEMBER_RULE,
        "ConvertTo-EnumName $Vm.Heartbeat",
        "ConvertTo-EnumName $Vm.Heartbeats",
        "VirtualMachine has no member Heartbeats",
    ),
    (
        HOST,
        ar.MEMBER_RULE,
        "$fresh[0].Enabled",
        "$fresh[0].Enable",
        "VMIntegrationComponent has no member Enable",
    ),
    (
        HOST,
        ar.MEMBER_RULE,
        "$key.PSChildName.Trim",
        "$key.PSChildNam.Trim",
        "RegistryKey has no member PSChildNam",
    ),
    (
        GUEST,
        ar.MEMBER_RULE,
        "[string]$system.Manufacturer",
        "[string]$system.Manufactur",
        "Win32_ComputerSystem has no member Manufactur",
    ),
    (
        GUEST,
        ar.MEMBER_RULE,
        "display_name = $service.DisplayName",
        "display_name = $service.Description",
        "ServiceController.Description exists only in PowerShell 6.0+",
    ),
    (
        GUEST,
        ar.MEMBER_RULE,
        "if ($found.Count -eq 0)",
        "if ($service.Count -eq 0)",
        ".Count throws under Set-StrictMode",
    ),
    (
        GUEST,
        ar.MEMBER_RULE,
        "$key.GetValueKind('Enabled').ToString()",
        "$key.GetValueKnd('Enabled').ToString()",
        "RegistryKey has no member GetValueKnd()",
    ),
    (
        HOST,
        ar.ENUM_RULE,
        "state                        = $Vm.State.ToString()",
        "state                        = $Vm.State",
        "hashtable entry $Vm.State is a raw enum",
    ),
    (
        HOST,
        ar.ENUM_RULE,
        "id                           = $Vm.Id.ToString()\n        state                        = $Vm.State",
        "id                           = $Vm.Id  # seeded\n        state                        = $Vm.State",
        "raw guid (System.Guid)",
    ),
    (
        HOST,
        ar.ENUM_RULE,
        "$entry.primary_status = ConvertTo-EnumName $Item.ic.PrimaryOperationalStatus",
        "$entry.primary_status = $Item.ic.PrimaryOperationalStatus",
        "raw nullable-enum",
    ),
    (
        HOST,
        ar.ENUM_RULE,
        "heartbeat                    = ConvertTo-EnumName $Vm.Heartbeat",
        "heartbeat                    = $Vm.Heartbeat.ToString()",
        ".ToString() throws when it is $null",
    ),
    (
        HOST,
        ar.PATH_RULE,
        "if (Test-Path -LiteralPath $Path) { Remove-Item -LiteralPath $Path -Recurse -Force }",
        "if (Test-Path -LiteralPath $Path) { Remove-Item -Path $Path -Recurse -Force }",
        "Remove-Item gets its path through -Path, a wildcard pattern",
    ),
    (
        HOST,
        ar.PATH_RULE,
        "$removal.removed = -not (Test-Path -LiteralPath $Path)",
        "$removal.removed = -not (Test-Path $Path)",
        "Test-Path gets its path through a positional argument (-Path)",
    ),
    (
        GUEST,
        ar.PATH_RULE,
        "$key = Get-Item -LiteralPath $TimeProviderKey",
        "$key = $TimeProviderKey | Get-Item",
        "Get-Item gets its path through the pipeline (-Path)",
    ),
    (
        GUEST,
        ar.ENUM_RULE,
        "status       = $service.Status.ToString()",
        "status       = $service.Status",
        "raw enum (System.ServiceProcess.ServiceControllerStatus)",
    ),
]


@pytest.mark.parametrize(
    ("name", "rule", "old", "new", "words"), SEEDS, ids=["%s-%s" % (s[1], s[3].split()[-1][:24]) for s in SEEDS]
)
def test_a_seeded_defect_is_reported_on_its_line(name: str, rule: str, old: str, new: str, words: str) -> None:
    text = seed(source(name), old, new)
    found = [v for v in RULES[rule](text) if v.rule == rule]
    expected = line_of(text, new.splitlines()[0])
    assert rule_lines(found, rule) == {expected}, "\n" + report(name, found)
    assert any(words in v.problem for v in found), "\n" + report(name, found)


# --- snippets: what the rules accept and refuse -------------------------------------------------------


def _snippets() -> dict[str, Any]:
    """Rule -> its accepted snippets and refused ones (with the words a problem must hold)."""
    cases = read_cases(__file__, "api_snippets.yml")
    assert set(cases) == set(RULES), set(cases) ^ set(RULES)
    for rule, spec in cases.items():
        strict(spec, {"accepted", "refused"})
        assert spec["accepted"] and spec["refused"], rule
        for entry in spec["refused"]:
            strict(entry, {"text", "says"})
    return cases


SNIPPETS = _snippets()


@pytest.mark.parametrize(
    ("rule", "text"), [(rule, text) for rule, spec in sorted(SNIPPETS.items()) for text in spec["accepted"]]
)
def test_snippets_accepted(rule: str, text: str) -> None:
    assert [v.problem for v in RULES[rule](text)] == []


@pytest.mark.parametrize(
    ("rule", "text", "words"),
    [(rule, e["text"], e["says"]) for rule, spec in sorted(SNIPPETS.items()) for e in spec["refused"]],
)
def test_snippets_refused(rule: str, text: str, words: str) -> None:
    problems = [v.problem for v in RULES[rule](text)]
    assert any(words in p for p in problems), problems


# --- (iii) the data: every entry names its source -------------------------------------------------------


def _has_source(entry: dict) -> bool:
    source = entry.get("source")
    return isinstance(source, dict) and bool(source.get("repo")) and bool(source.get("path"))


def test_every_cmdlet_names_its_source() -> None:
    data = ar.load_cmdlets()
    missing = [name for name, entry in data["cmdlets"].items() if not _has_source(entry)]
    assert not missing
    assert _has_source(data["common_parameters"])
    repos = {entry["source"]["repo"] for entry in data["cmdlets"].values()}
    assert repos <= set(data["sources"]), "every source repository has its commit under sources"
    assert all(info.get("commit") for info in data["sources"].values())


def test_every_type_names_its_source() -> None:
    data = ar.load_types()
    missing = [name for name, entry in data["types"].items() if not _has_source(entry)]
    assert not missing
    assert _has_source(data["intrinsic"]) and _has_source(data["accelerators"])
    repos = {entry["source"]["repo"] for entry in data["types"].values()}
    assert repos <= set(data["sources"]["repositories"]), "every source repository has its commit under sources"
    assert all(info.get("commit") for info in data["sources"]["repositories"].values())
    assert all(d.get("why") and d.get("function") and d.get("type") for d in data["declarations"])


def test_cmdlet_data_is_consistent() -> None:
    """Sets name only documented parameters; since marks versions after 5.1; every member has a kind."""
    for name, entry in ar.load_cmdlets()["cmdlets"].items():
        assert entry["parameter_sets"], name
        for set_name, info in entry["parameter_sets"].items():
            unknown = set(info["parameters"]) - set(entry["parameters"])
            assert not unknown, "%s %s: %s" % (name, set_name, unknown)
        for param, attrs in entry["parameters"].items():
            if "since" in attrs:
                assert isinstance(attrs["since"], str) and float(attrs["since"]) >= 6, (name, param)
    kinds = {"enum", "nullable-enum", "guid", "version", "string", "bool", "int", "object", "collection", "method"}
    for name, entry in ar.load_types()["types"].items():
        for member, attrs in {**entry.get("members", {}), **entry.get("static", {})}.items():
            assert attrs.get("kind") in kinds, (name, member)


def test_hyperv_types_say_what_hyperv_facts_say() -> None:
    """docs/dev/hyperv-facts.md section 1, as types.yml has them from the HyperVDsc stubs."""
    types = ar.load_types()["types"]
    vm = types["Microsoft.HyperV.PowerShell.VirtualMachine"]["members"]
    ic = types["Microsoft.HyperV.PowerShell.VMIntegrationComponent"]["members"]
    assert vm["Heartbeat"] == {"kind": "nullable-enum", "type": "Microsoft.HyperV.PowerShell.VMHeartbeatStatus"}
    assert vm["IntegrationServicesVersion"]["kind"] == "version"
    assert vm["IntegrationServicesState"]["kind"] == "string"
    assert vm["State"]["kind"] == "enum" and vm["Id"]["kind"] == "guid"
    assert ic["Id"]["kind"] == "string" and ic["Enabled"]["kind"] == "bool"
    assert ic["PrimaryOperationalStatus"]["kind"] == "nullable-enum"
    status = types["Microsoft.HyperV.PowerShell.VMIntegrationComponentOperationalStatus"]["values"]
    assert status["Ok"] == 2 and status["Disabled"] == 32896
