"""The structural contract rules (tests/pscheck/structure_rules.py) on the PowerShell the collection ships.

For every rule: the shipped code has no violations; defects of that kind seeded into the shipped library
text (seeded_defects.yml: small, explicit mutations of it, a string replaced or a try statement unwrapped)
are reported on exactly their lines, and the shipped text they were derived from is not; small snippets
show the forms the rule accepts and refuses. A seed whose anchor is gone fails with "seed anchor": update
the seed to the library.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hvlab import pstree
from pscheck import structure_rules as sr
from pscheck.shipped import GUEST, HOST, SHIPPED, line_of, locate, read_cases, seed, source, strict, unwrap_try

from ansible_collections.hyperv.integration.plugins.plugin_utils._powershell import read_text


def report(name: str, violations: list[sr.Violation]) -> str:
    """One line per violation, every line it cites as file:line."""

    def cite(match: re.Match[str]) -> str:
        return locate(name, int(match.group(1)))

    return "\n".join(
        "%s: [%s] %s: %s" % (locate(name, v.line), v.rule, v.text, re.sub(r"\bline (\d+)", cite, v.message))
        for v in violations
    )


def lines(violations: list[sr.Violation], rule: str) -> set[int]:
    assert all(v.rule == rule for v in violations), violations
    return {v.line for v in violations}


def parse_errors(text: str) -> list[str]:
    return [pstree.text(n) for n in pstree.walk(pstree.parse(text)) if n.type == "ERROR" or n.is_missing]


def snippet(text: str) -> str:
    """A test snippet, asserted to parse (so an accepted snippet is not accepted for being an ERROR)."""
    assert parse_errors(text) == [], parse_errors(text)
    return text


# The error formatter as the prelude defines it (trusted by rule 2 by name), for snippets.
STUB = """
function Get-ErrorRecordData {
    param ($ErrorRecord, $VmName, $Service)
    @{ type = 'x'; message = 'y' }
}
"""


# ----------------------------------------------------------------------------------------------------------
# Every rule on the shipped code


@pytest.mark.parametrize("rule", sorted(sr.RULES))
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_code_has_no_violations(name: str, rule: str) -> None:
    found = sr.RULES[rule](source(name))
    assert found == [], "\n" + report(name, found)


def test_the_shipped_code_gives_every_rule_something_to_check() -> None:
    # The rules are not vacuous: writes, operations that reach them, .Count, ConvertTo-Json all exist.
    for name in (HOST, GUEST):
        lib = sr.analyse(source(name))
        assert any(lib.is_write(n) for n in pstree.walk(lib.root)), name
        assert any(lib.writes(f) for f in lib.reachable()), name
        assert any(lib.writing_nodes(lib.functions[f]) for f in lib.operations.values()), name
        assert any(n.type == "member_access" and pstree.member_name(n) == "count" for n in pstree.walk(lib.root))
        assert "convertto-json" in {pstree.bare_name(c.name) for c in pstree.commands(lib.root)}


def test_check_runs_every_rule_and_sorts_by_line() -> None:
    text = snippet("function f {\n    New-Item -Path x\n    $a = Get-X\n    $a.Count\n}\n")
    found = sr.check(text)
    assert {v.rule for v in found} == {
        "write-inside-item-try",
        "no-stray-output",
        "array-through-at",
        "count-on-collections",
    }
    assert [v.line for v in found] == sorted(v.line for v in found)
    assert str(found[0]).startswith("2: [")


# ----------------------------------------------------------------------------------------------------------
# Every rule: defects seeded into the shipped code


@dataclass(frozen=True)
class Report:
    """One violation a rule must report (see seeded_defects.yml: reports)."""

    needle: str
    function: str
    words: tuple[str, ...] = ()
    text: str | None = None

    def matches(self, seeded: str, violation: sr.Violation) -> bool:
        def number(match: re.Match[str]) -> str:
            return str(line_of(seeded, match.group(1)))

        words = [re.sub(r"\{line of ([^}]+)\}", number, word) for word in self.words]
        return (
            violation.line == line_of(seeded, self.needle)
            and violation.function == self.function
            and all(violation.message.startswith(w[1:]) if w.startswith("^") else w in violation.message for w in words)
            and (self.text is None or violation.text == self.text)
        )


def _mutation(entry: dict[str, Any]) -> Callable[[str], str]:
    if "replace" in entry:
        strict(entry, {"replace", "with"})
        return lambda text: seed(text, entry["replace"], entry["with"])
    strict(entry, {"unwrap", "around"})
    return lambda text: unwrap_try(text, entry["unwrap"], entry["around"])


@dataclass(frozen=True)
class Seeded:
    """A defect seeded into a shipped library and every violation its rule must report (no others)."""

    name: str
    rule: str
    seeds: tuple[Callable[[str], str], ...]
    reports: tuple[Report, ...]
    parses: bool

    @classmethod
    def load(cls, entry: dict[str, Any]) -> Seeded:
        strict(entry, {"library", "rule", "seeds", "reports"}, frozenset({"parses"}))
        assert entry["library"] in SHIPPED and entry["rule"] in sr.RULES, entry
        assert entry["seeds"] and entry["reports"], entry
        reports = []
        for report in entry["reports"]:
            strict(report, {"at", "in"}, frozenset({"says", "text"}))
            reports.append(Report(report["at"], report["in"], tuple(report.get("says", ())), report.get("text")))
        seeds = tuple(_mutation(s) for s in entry["seeds"])
        return cls(entry["library"], entry["rule"], seeds, tuple(reports), entry.get("parses", True))


SEEDED = {case: Seeded.load(entry) for case, entry in read_cases(__file__, "structure_seeded.yml").items()}


def test_every_rule_has_seeded_defects() -> None:
    assert {spec.rule for spec in SEEDED.values()} == set(sr.RULES)


def _matched(seeded: str, reports: tuple[Report, ...], found: list[sr.Violation]) -> bool:
    """Every violation matches one report and every report one violation."""
    if len(reports) != len(found):
        return False
    return any(
        all(r.matches(seeded, v) for r, v in zip(order, found, strict=True))
        for order in itertools.permutations(reports)
    )


@pytest.mark.parametrize("case", sorted(SEEDED))
def test_a_seeded_defect_is_reported_on_exactly_its_lines(case: str) -> None:
    spec = SEEDED[case]
    shipped = source(spec.name)
    seeded = shipped
    for mutate in spec.seeds:
        seeded = mutate(seeded)  # each seed asserts its anchor is there, once
    assert seeded != shipped
    assert (parse_errors(seeded) == []) is spec.parses, parse_errors(seeded)
    found = sr.RULES[spec.rule](seeded)
    assert _matched(seeded, spec.reports, found), "\n" + report(spec.name, found)
    # The shipped text the defect was derived from is clean: the rule reports the seed, not the library.
    assert sr.RULES[spec.rule](shipped) == []


# ----------------------------------------------------------------------------------------------------------
# Rule 1: write-inside-item-try


def test_accepted_write_forms() -> None:
    text = snippet(
        STUB
        + """
function f {
    param ($e, $key)
    try {
        try { $z = 1 } catch { Remove-Item -LiteralPath 'HKLM:\\f' } finally { Remove-Item -LiteralPath 'HKLM:\\g' }
        if (-not $e.check) { $null = New-Item -Path 'HKLM:\\h' -Force }
        $key.SetValue('Enabled', 1)
    }
    catch { $e.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $null }
}
"""
    )
    assert sr.write_inside_item_try(text) == []


def test_write_methods_count_as_writes() -> None:
    text = snippet("function f {\n    param ($key)\n    $key.SetValue('Enabled', 1)\n}\n")
    assert lines(sr.write_inside_item_try(text), "write-inside-item-try") == {3}


def test_a_try_around_a_function_definition_does_not_protect_its_body() -> None:
    text = snippet(
        STUB + "try {\n    function f {\n        Remove-Item -LiteralPath x\n    }\n}\n"
        "catch { $e.error = Get-ErrorRecordData -ErrorRecord $_ }\n"
    )
    assert lines(sr.write_inside_item_try(text), "write-inside-item-try") == {line_of(text, "Remove-Item")}


# ----------------------------------------------------------------------------------------------------------
# Rule 2: nothing-throws-after-first-write


def test_what_runs_before_the_first_write_is_free() -> None:
    text = snippet(
        STUB
        + """
function Invoke-Op {
    param ($Request)
    $u = [int]$Request.n
    $i = Get-Item -LiteralPath 'x'
    $e = @{ error = $null }
    try { Set-Service -Name 'x' -StartupType Manual } catch { $e.error = Get-ErrorRecordData -ErrorRecord $_ }
    $e
}
function Set-Unused {
    $e = @{ error = $null }
    try { Set-Service -Name 'x' -StartupType Manual } catch { $e.error = Get-ErrorRecordData -ErrorRecord $_ }
    $late = Get-Item -LiteralPath 'x'
}
$operations = @{ op = ${function:Invoke-Op} }
"""
    )
    # Set-Unused is no operation and no operation calls it: it is not checked.
    assert sr.nothing_throws_after_first_write(text) == []


# ----------------------------------------------------------------------------------------------------------
# Rule 3: no-stray-output


def test_library_calls_that_are_the_intended_output_are_accepted() -> None:
    text = snippet(
        """
function Get-One {
    @{ a = 1 }
}
function Get-Delegated {
    Get-One
}
function Get-All {
    $x = 1
    @(foreach ($i in 1, 2) { Get-One })
}
function Get-Mixed {
    Get-One  # MIXED
    @{ b = 2 }
}
function Get-Either {
    param ($Flag)
    if ($Flag) { Get-One }
    else { @{ c = 3 } }
}
"""
    )
    found = sr.no_stray_output(text)
    assert [(v.line, v.function) for v in found] == [(line_of(text, "# MIXED"), "get-mixed")]


# ----------------------------------------------------------------------------------------------------------
# Rule 5: convertto-json-inputobject


@pytest.mark.parametrize(
    "statement",
    ["$j = ConvertTo-Json -InputObject $r -Depth 10 -Compress", "$j = ConvertTo-Json -InputObject:$r -Depth:5"],
)
def test_accepted_convertto_json_calls(statement: str) -> None:
    assert sr.convertto_json_inputobject(snippet(statement + "\n")) == []


# ----------------------------------------------------------------------------------------------------------
# Rule 6: no-ps7-syntax

# snippet -> does tree-sitter-powershell parse it (True) or give an ERROR node the parse test also fails on
PS7_CASES = {
    "ternary": ("$x = $a ? 1 : 2", False),
    "ternary with parentheses": ("$x = ($a) ? 'y' : 'n'", False),
    "null-coalescing": ("$y = $a ?? 1", False),
    "null-coalescing assignment": ("$z ??= 1", False),
    "null-conditional member": ("$v = ${a}?.b", False),
    "null-conditional index": ("$v = ${a}?[0]", False),
    "pipeline chain &&": ("Test-Path x && Write-Verbose y", True),
    "pipeline chain ||": ("Test-Path x || Write-Verbose y", True),
    "background &": ("Get-Foo &", False),
    "ForEach-Object -Parallel": ("$r = 1, 2 | ForEach-Object -Parallel { $_ }", True),
    "ForEach-Object -ThrottleLimit": ("$r = 1, 2 | ForEach-Object -Process { $_ } -ThrottleLimit 2", True),
    "clean block alone": ("function f {\n    clean { 1 }\n}", True),
    "clean block with a redirection": ("clean { 1 } 2>&1", True),
    "clean block after begin": ("function f {\n    begin { }\n    clean { }\n}", False),
    "ConvertFrom-Json -AsHashtable": ("$j = ConvertFrom-Json -InputObject $t -AsHashtable", True),
    "ConvertFrom-Json -Depth": ("$j = ConvertFrom-Json -InputObject $t -Depth 3", True),
    "ConvertFrom-Json -NoEnumerate": ("$j = ConvertFrom-Json -InputObject $t -NoEnumerate", True),
    "ConvertTo-Json -EnumsAsStrings": ("$j = ConvertTo-Json -InputObject $t -Depth 3 -EnumsAsStrings", True),
    "ConvertTo-Json -AsArray": ("$j = ConvertTo-Json -InputObject $t -Depth 3 -AsArray", True),
    "abbreviated -AsHash": ("$j = ConvertFrom-Json -InputObject $t -AsHash", True),
    "Get-Error": ("Get-Error", True),
    "Join-String": ("$s = Join-String -InputObject $t", True),
    "Test-Json": ("$ok = Test-Json -Json $t", True),
    "$IsWindows": ("if ($IsWindows) { $x = 1 }", True),
    "$IsLinux": ("if ($IsLinux) { $x = 1 }", True),
    "$IsMacOS": ("if ($IsMacOS) { $x = 1 }", True),
}


@pytest.mark.parametrize("case", sorted(PS7_CASES))
def test_powershell_7_syntax_is_reported(case: str) -> None:
    text, parses = PS7_CASES[case]
    assert (parse_errors(text) == []) is parses, parse_errors(text)
    found = sr.no_ps7_syntax(text + "\n")
    assert found and all(v.rule == "no-ps7-syntax" for v in found)


def test_accepted_windows_powershell_5_1_forms() -> None:
    text = snippet(
        """
$ok = Get-X | ? { $_ } | % { $_ }
$s = "what? ?? ?. && ||"
$t = 'x ? y'
# a comment with ?? and && and $IsWindows
$j = ConvertFrom-Json -InputObject $t
$m = ConvertTo-Json -InputObject $t -Depth 3 -Compress -ErrorAction Stop
$b = $a -and $b -or -not $c
$o = [ordered]@{}
$l = [System.Collections.Generic.List[object]]::new()
$r = 1, 2 | ForEach-Object -Process { $_ } -End { 3 }
"""
    )
    assert sr.no_ps7_syntax(text) == []


# ----------------------------------------------------------------------------------------------------------
# Every rule: snippets it accepts and refuses


@dataclass(frozen=True)
class Snippets:
    """Cases of one rule (see structure_snippets.yml): the template and each case's statement, accepted or
    not, and where a refused case is reported."""

    template: str
    cases: dict[str, tuple[str, bool]]
    at: str | None

    @classmethod
    def load(cls, entry: dict[str, Any]) -> Snippets:
        strict(entry, {"template", "accepted", "refused"}, frozenset({"stub", "at"}))
        assert "STATEMENT" in entry["template"] and entry["accepted"] and entry["refused"], entry
        assert not set(entry["accepted"]) & set(entry["refused"]), entry
        cases = {name: (statement, True) for name, statement in entry["accepted"].items()}
        cases.update({name: (statement, False) for name, statement in entry["refused"].items()})
        return cls((STUB if entry.get("stub") else "") + entry["template"], cases, entry.get("at"))


SNIPPETS = {rule: Snippets.load(entry) for rule, entry in read_cases(__file__, "structure_snippets.yml").items()}


@pytest.mark.parametrize(
    ("rule", "case"), [(rule, case) for rule, spec in sorted(SNIPPETS.items()) for case in sorted(spec.cases)]
)
def test_what_each_rule_accepts_and_refuses(rule: str, case: str) -> None:
    spec = SNIPPETS[rule]
    statement, accepted = spec.cases[case]
    text = snippet(spec.template.replace("STATEMENT", statement))
    found = sr.RULES[rule](text)
    assert (found == []) is accepted, found
    if not accepted:
        assert lines(found, rule) == {line_of(text, spec.at or statement)}, found


# ----------------------------------------------------------------------------------------------------------
# The shape inference the rules share


@pytest.mark.parametrize(
    ("typename", "kind", "cls"),
    [
        ("System.Collections.Generic.List[object]", sr.COLL, "list"),
        ("'System.Collections.ArrayList'", sr.COLL, "arraylist"),
        (
            "System.Collections.Generic.Dictionary[string,System.Collections.Generic.List[object]]",
            sr.COLL,
            "dictionary",
        ),
        ("System.Collections.Specialized.OrderedDictionary", sr.HASH, "ordered"),
        ("hashtable", sr.HASH, "hashtable"),
        ("string[]", sr.COLL, "array"),
        ("int", sr.SCALAR, "int"),
        ("System.Text.StringBuilder", sr.OBJECT, "stringbuilder"),
    ],
)
def test_type_shapes(typename: str, kind: str, cls: str) -> None:
    shape = sr.type_shape(typename)
    assert (shape.kind, shape.cls) == (kind, cls)


def test_dictionary_element_shape_comes_from_its_value_type() -> None:
    shape = sr.type_shape("System.Collections.Generic.Dictionary[string,System.Collections.Generic.List[object]]")
    assert shape.element is not None and (shape.element.kind, shape.element.cls) == (sr.COLL, "list")


def test_shapes_cross_function_calls() -> None:
    # The shipped host library: Resolve-VmName's answer is a hashtable whose missing is a List.
    lib = sr.analyse(source(HOST))
    result = lib.result_shape("resolve-vmname")
    assert result.kind == sr.HASH
    missing = result.key("missing")
    assert missing is not None and (missing.kind, missing.cls) == (sr.COLL, "list")
    # Set-OneIntegrationService's $Item is a plan item (a hashtable) at its only call site.
    function = lib.functions["set-oneintegrationservice"]
    assert lib.chain_shape(function, "item", ()).kind == sr.HASH


def test_an_answer_found_through_a_cycle_does_not_depend_on_the_order_of_questions() -> None:
    # inference_cycle.ps1 (two older functions, in place of the shipped ones) closes a cycle through
    # Get-ErrorRecordData's -VmName. The shape of $resolved.missing used to be kept as unknown once a rule
    # had met the cycle from inside, so count-on-collections reported a .Count on a List there; asked first
    # from outside, it was a List.
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inference_cycle.ps1")
    with open(fixture, encoding="utf-8") as handle:
        older = handle.read()
    replaced = re.findall(r"(?m)^function (\S+) \{", older)
    parts = re.split(r"(?m)^(?=function |\$operations\[|# ---)", read_text(HOST))
    body = "".join(p for p in parts if not any(p.startswith("function %s {" % name) for name in replaced))
    text = "\n".join([read_text("_prelude.ps1"), body, older, read_text("_dispatch.ps1")])
    assert sr.RULES["count-on-collections"](text) == []
