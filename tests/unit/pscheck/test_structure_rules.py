"""The structural contract rules (tests/pscheck/structure_rules.py) on the PowerShell the collection ships.

For every rule: the shipped code has no violations; a defect of that kind seeded into the shipped library
text (a small, explicit mutation of it: a string replacement, or a try statement unwrapped) is reported on
exactly its lines, and the shipped text it was derived from is not; small snippets show the forms the rule
accepts and refuses. A seed whose anchor is gone fails with "seed anchor": update the seed to the library.
"""

# ruff: noqa: E501 -- the PowerShell fixtures below are verbatim library lines, longer than Python's limit.
from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hvlab import pstree
from pscheck import structure_rules as sr
from pscheck.shipped import BOOTSTRAP, GUEST, HOST, SHIPPED, line_of, locate, seed, source, unwrap_try


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


def replace(old: str, new: str) -> Callable[[str], str]:
    """A seed: ``old`` (found exactly once) becomes ``new``."""
    return lambda text: seed(text, old, new)


def unwrap(function: str, needle: str) -> Callable[[str], str]:
    """A seed: the try statement of ``function`` around ``needle`` is gone, its statements stay."""
    return lambda text: unwrap_try(text, function, needle)


@dataclass(frozen=True)
class Report:
    """One violation the rule must report: on the line of ``needle`` (in the seeded text), in ``function``
    ('' outside functions), with each of ``words`` in its message ('^word': the message starts with it;
    '{line of X}': the number of the line that holds X) and, when given, exactly ``text``."""

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


@dataclass(frozen=True)
class Seeded:
    """A defect seeded into a shipped library and every violation its rule must report (no others)."""

    name: str
    rule: str
    seeds: tuple[Callable[[str], str], ...]
    reports: tuple[Report, ...]
    parses: bool = True  # does the seeded text still parse (False: the parse test fails on it too)


SEEDED = {
    # Rule 1: write-inside-item-try
    "write outside any try": Seeded(
        GUEST,
        "write-inside-item-try",
        (
            replace(
                "    $restart = $false\n",
                "    $restart = $false\n    Set-Service -Name 'vmicvss' -StartupType Manual  # SEEDED\n",
            ),
        ),
        (Report("# SEEDED", "set-oneguestservice", ("not inside a try",)),),
    ),
    "write in a try whose catch does not record the error": Seeded(
        HOST,
        "write-inside-item-try",
        (
            replace(
                "        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $guid\n",
                "        Write-Verbose -Message 'failed'\n",
            ),
        ),
        tuple(
            Report(needle, "set-onehvsocketentry", ("does not record the error",))
            for needle in (
                "Remove-Item -LiteralPath (Join-Path",
                "$null = New-Item -Path $path -Force",
                "Set-ItemProperty -LiteralPath $path",
            )
        ),
    ),
    "write in a catch block": Seeded(
        GUEST,
        "write-inside-item-try",
        (
            replace(
                "Write-Verbose -Message 'read-back of VMICTimeProvider failed; keeping the value recorded before'",
                "Remove-ItemProperty -LiteralPath $TimeProviderKey -Name 'Enabled'  # SEEDED",
            ),
        ),
        (Report("# SEEDED", "set-timeprovider", ("catch or finally",)),),
    ),
    # Rule 2: nothing-throws-after-first-write. The first two are the defects the issue found (commit
    # effab67), re-made from today's library so the rule keeps catching them after the fix: the host's
    # Set-OneHvSocketEntry read (Get-HvSocketEntry)[$guid] after its writes, outside any try, so the call of
    # it in the loop is not item-safe either...
    "hvsocket read-back after the writes (effab67)": Seeded(
        HOST,
        "nothing-throws-after-first-write",
        (unwrap("Set-OneHvSocketEntry", "$now = (Get-HvSocketEntry)[$guid]"),),
        (
            Report(
                "$now = (Get-HvSocketEntry)[$guid]",
                "set-onehvsocketentry",
                ("calls Get-HvSocketEntry, which is not item-safe", "after a write"),
            ),
            Report(
                "Set-OneHvSocketEntry -Entries $entries",
                "invoke-hvsocketserviceset",
                (
                    "calls Set-OneHvSocketEntry, which is not item-safe (line {line of $now = (Get-HvSocketEntry)[$guid]}",
                ),
            ),
        ),
    ),
    # ... and the guest's Invoke-GuestServiceSet called Set-TimeProvider after Set-OneGuestService's service
    # writes, while Set-TimeProvider asked Get-ServiceState -Name 'W32Time' outside a try.
    "Set-TimeProvider after the service writes (effab67)": Seeded(
        GUEST,
        "nothing-throws-after-first-write",
        (unwrap("Set-TimeProvider", "$w32time = Get-ServiceState -Name 'W32Time'"),),
        (
            Report(
                "$time = Set-TimeProvider",
                "invoke-guestserviceset",
                (
                    "calls Set-TimeProvider, which is not item-safe",
                    "Get-ServiceState -Name 'W32Time'",
                    "after a write (line {line of $done = @(foreach ($wish in $wishes)}",
                ),
            ),
        ),
    ),
    "a throwing read after the writes": Seeded(
        HOST,
        "nothing-throws-after-first-write",
        (
            replace(
                "    $entry.changed = ($entry.after.present -ne $before.present)",
                "    $again = (Get-HvSocketEntry)[$guid]  # SEEDED\n    $entry.changed = ($entry.after.present -ne $before.present)",
            ),
        ),
        (
            Report("# SEEDED", "set-onehvsocketentry", ("Get-HvSocketEntry",)),
            Report(
                "Set-OneHvSocketEntry -Entries $entries",
                "invoke-hvsocketserviceset",
                ("calls Set-OneHvSocketEntry, which is not item-safe (line {line of # SEEDED}",),
            ),
        ),
    ),
    "a call after the writes of a function that is not item-safe": Seeded(
        GUEST,
        "nothing-throws-after-first-write",
        (replace("    $time = $null\n", "    $again = Get-ComputerIdentity  # SEEDED\n    $time = $null\n"),),
        (
            Report(
                "# SEEDED",
                "invoke-guestserviceset",
                ("calls Get-ComputerIdentity, which is not item-safe", "Get-CimInstance"),
            ),
        ),
    ),
    # Earlier in the loop body than the write, but the next round runs it after this round's write.
    "a throwing statement before the write in the same loop": Seeded(
        HOST,
        "nothing-throws-after-first-write",
        (
            replace(
                "                        Set-OneIntegrationService -Vm $entry.vm",
                "                        $null = $entry.vm.Name  # SEEDED\n                        Set-OneIntegrationService -Vm $entry.vm",
            ),
        ),
        (Report("# SEEDED", "invoke-vmintegrationserviceset", ("in the same loop as",)),),
    ),
    "an item function that stops being item-safe, at its call": Seeded(
        HOST,
        "nothing-throws-after-first-write",
        (
            replace(
                "    $entry = @{ guid = $Item.guid; name = $null;",
                "    $null = $Vm.Name  # SEEDED\n    $entry = @{ guid = $Item.guid; name = $null;",
            ),
        ),
        (
            Report(
                "Set-OneIntegrationService -Vm $entry.vm",
                "invoke-vmintegrationserviceset",
                ("not item-safe (line {line of # SEEDED}",),
            ),
        ),
    ),
    # Rule 3: no-stray-output
    "New-Item not assigned": Seeded(
        HOST,
        "no-stray-output",
        (replace("{ $null = New-Item -Path $path -Force }", "{ New-Item -Path $path -Force }"),),
        (Report("{ New-Item -Path $path -Force }", "set-onehvsocketentry", ("New-Item produces output",)),),
    ),
    "New-ItemProperty not piped to Out-Null": Seeded(
        GUEST,
        "no-stray-output",
        (replace("-PropertyType DWord -Force | Out-Null", "-PropertyType DWord -Force"),),
        (Report("-PropertyType DWord -Force", "set-timeprovider", ("New-ItemProperty produces output",)),),
    ),
    # List[T].Add is void; ArrayList.Add returns the index: the same lines become stray output.
    "ArrayList.Add as a statement": Seeded(
        HOST,
        "no-stray-output",
        (
            replace(
                "    $found = New-Object -TypeName 'System.Collections.Generic.List[object]'",
                "    $found = New-Object -TypeName 'System.Collections.ArrayList'",
            ),
        ),
        (
            Report("foreach ($vm in $allVms) { $found.Add($vm) }", "resolve-vmname", ("arraylist",)),
            Report("$found.Add($byName[$name][0])", "resolve-vmname", ("arraylist",)),
        ),
    ),
    "a library call whose output joins the function's output": Seeded(
        GUEST,
        "no-stray-output",
        (replace("    $time = $null\n", "    Get-ComputerIdentity  # SEEDED\n    $time = $null\n"),),
        (Report("# SEEDED", "invoke-guestserviceset", ("Get-ComputerIdentity has output",)),),
    ),
    # Rule 4: array-through-at
    "indexing a pipeline variable": Seeded(
        HOST,
        "array-through-at",
        (
            replace(
                "$fresh = @(Hyper-V\\Get-VMIntegrationService -VM $Vm | Where-Object { (Get-IcGuid $_) -eq $Item.guid })",
                "$fresh = Hyper-V\\Get-VMIntegrationService -VM $Vm | Where-Object { (Get-IcGuid $_) -eq $Item.guid }",
            ),
        ),
        (
            Report("if ($fresh.Count -eq 1)", "set-oneintegrationservice", ("is asked .Count",), "$fresh.Count"),
            Report("if ($fresh.Count -eq 1)", "set-oneintegrationservice", ("is indexed",), "$fresh[0]"),
        ),
    ),
    "indexing a pipeline variable in the bootstrap": Seeded(
        BOOTSTRAP,
        "array-through-at",
        (
            replace(
                "$lines = @($input | ForEach-Object -Process { ([string]$_).Trim() } | Where-Object -FilterScript { $_ })",
                "$lines = $input | ForEach-Object -Process { ([string]$_).Trim() } | Where-Object -FilterScript { $_ }",
            ),
        ),
        (Report("$lines[0]", "", text="$lines[0]"), Report("$lines[1]", "", text="$lines[1]")),
    ),
    # Rule 5: convertto-json-inputobject
    "ConvertTo-Json from the pipeline": Seeded(
        HOST,
        "convertto-json-inputobject",
        (
            replace(
                "$json = ConvertTo-Json -InputObject $response -Depth 10 -Compress",
                "$json = $response | ConvertTo-Json -Depth 10 -Compress",
            ),
        ),
        (Report("$json = ", "", ("pipeline", "-InputObject is missing")),),
    ),
    "ConvertTo-Json without -Depth": Seeded(
        GUEST,
        "convertto-json-inputobject",
        (replace("-InputObject $response -Depth 10 -Compress", "-InputObject $response -Compress"),),
        (Report("$json = ", "", ("^-Depth is missing",)),),
    ),
    # Rule 6: no-ps7-syntax
    "PowerShell 7 parameters and variables": Seeded(
        HOST,
        "no-ps7-syntax",
        (
            replace("ForEach-Object { $_.Id.ToString() }", "ForEach-Object -Parallel { $_.Id.ToString() }"),
            replace(
                "$request = ConvertFrom-Json -InputObject $RequestJson",
                "$request = ConvertFrom-Json -InputObject $RequestJson -AsHashtable",
            ),
            replace(
                "    if ($null -eq $Value) { return $null }",
                "    if ($IsWindows -and $null -eq $Value) { return $null }",
            ),
        ),
        (
            Report("-Parallel", "resolve-vmname", ("-parallel is a PowerShell 6/7 parameter",)),
            Report("-AsHashtable", "", ("-ashashtable is a PowerShell 6/7 parameter",)),
            Report("$IsWindows", "convertto-enumname", ("PowerShell 6/7 automatic variable",)),
        ),
    ),
    # The ternary fails both the rule and the parse.
    "a ternary": Seeded(
        GUEST,
        "no-ps7-syntax",
        (replace("    $time = $null\n", "    $time = $wanted ? 1 : $null\n"),),
        (Report("$wanted ? 1", "invoke-guestserviceset", ("does not parse",)),),
        parses=False,
    ),
    # Rule 7: count-on-collections
    "Count on a string": Seeded(
        HOST,
        "count-on-collections",
        (replace("if ($fresh.Count -eq 1)", "if ($Item.guid.Count -eq 1)"),),
        (Report("$Item.guid.Count", "set-oneintegrationservice", ("#2798",), "$Item.guid.Count"),),
    ),
    "Count on a typed scalar parameter": Seeded(
        GUEST,
        "count-on-collections",
        (replace("    if ($found.Count -eq 0) { return $null }", "    if ($Name.Count -eq 0) { return $null }"),),
        (Report("$Name.Count", "get-servicestate", ("it is a single value",), "$Name.Count"),),
    ),
    # Resolve-VmName's missing list becomes a pipeline result: its callers' .Count is not proven (nor,
    # through the answer's shape, the .Count of its neighbour ambiguous).
    "Count on a member that is not a collection any more": Seeded(
        HOST,
        "count-on-collections",
        (
            replace(
                "    $missing = New-Object -TypeName 'System.Collections.Generic.List[string]'",
                "    $missing = Get-ChildItem -LiteralPath 'x'",
            ),
        ),
        tuple(
            Report("$resolved.missing.Count", "invoke-vmintegrationserviceset", text=text)
            for text in ("$resolved.missing.Count", "$resolved.ambiguous.Count")
        ),
    ),
}


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

ITEM_TRY_TEMPLATE = (
    STUB + "function f {\n    param ($e)\n    try { Remove-Item -LiteralPath 'HKLM:\\x' }\n    STATEMENT\n}\n"
)

# catch clauses after a try around a write -> do they protect it?
ITEM_TRY_CASES = {
    "typed catch only": ("catch [System.IO.IOException] { $e.error = Get-ErrorRecordData -ErrorRecord $_ }", False),
    "catch rethrows": ("catch { $e.error = Get-ErrorRecordData -ErrorRecord $_; throw }", False),
    "catch sets error without the error": ("catch { $e.error = $null }", False),
    "finally only": ("finally { $x = 1 }", False),
    "records the error": ("catch { $e.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service 'x' }", True),
    "records on a nested member with $PSItem": (
        "catch { $e.w32time.error = Get-ErrorRecordData -ErrorRecord $PSItem }",
        True,
    ),
    "typed catch plus a recording catch-all": (
        "catch [System.IO.IOException] { throw }\n    catch { $e.error = Get-ErrorRecordData -ErrorRecord $_ }",
        True,
    ),
}


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

OPERATION = """
function Invoke-Op {
    param ($Request)
    $checkMode = [bool]$Request.check_mode
    $items = @(foreach ($w in @($Request.params.items)) { @{ name = [string]$w.name; n = [int]$w.n } })
    $result = @{ done = @(); error = $null }
    foreach ($item in $items) {
        $e = @{ name = $item.name; error = $null }
        try { Set-Service -Name $item.name -StartupType Manual } catch { $e.error = Get-ErrorRecordData -ErrorRecord $_ }
        $result.done += $e
        STATEMENT
    }
    $result
}
function Get-Safe {
    try {
        $t = Get-Item -LiteralPath 'HKLM:\\x'
        return @{ name = [string]$t.Name }
    }
    catch { return $null }
}
function Get-Risky {
    $item = Get-Item -LiteralPath 'HKLM:\\x'
    @{ name = [string]$item.Name }
}
function Set-Typed {
    param ([int]$Number)
    try { $x = $Number } catch { $y = 1 }
}
$operations = @{ op = ${function:Invoke-Op} }
"""

AFTER_WRITE_CASES = {
    # statement after the write (in the loop) -> accepted?
    "hashtable reads and literals": (
        '$v = @{ a = $item.name; b = $e.error; c = $checkMode; d = "$($item.name) x" }',
        True,
    ),
    "a call to an item-safe function": ("$s = Get-Safe", True),
    "a guarded command": ("try { $i = Get-Item -LiteralPath 'x' } catch { Write-Verbose -Message 'no' }", True),
    "continue and comparisons": ("if ($checkMode -and $item.n -eq 1) { continue }", True),
    "typed binding from a typed value": ("Set-Typed -Number $item.n", True),
    "a command": ("$i = Get-Item -LiteralPath 'x'", False),
    "a method call": ("$u = $item.name.ToUpperInvariant()", False),
    "a conversion": ("$u = [int]$item.name", False),
    "request data": ("$u = $Request.check_mode", False),
    "an array index": ("$u = $items[0]", False),
    "arithmetic": ("$u = $item.n + 1", False),
    "throw": ("throw 'late'", False),
    "a function that can throw": ("$t = Get-Risky", False),
    "typed binding from an untyped value": ("Set-Typed -Number $Request.n", False),
    "a typed catch only": ("try { $i = Get-Item -LiteralPath 'x' } catch [System.IO.IOException] { $z = 1 }", False),
}


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

STRAY_TEMPLATE = """
function f {
    param ($Unknown)
    $list = New-Object -TypeName 'System.Collections.ArrayList'
    $set = New-Object -TypeName 'System.Collections.Generic.HashSet[string]'
    $l = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $dict = [System.Collections.Generic.Dictionary[string,int]]::new()
    $sb = New-Object -TypeName System.Text.StringBuilder
    $h = @{}
    $o = [ordered]@{}
    STATEMENT
    @{ ok = $true }
}
"""

STRAY_CASES = {
    "ArrayList.Add": ("$list.Add(1)", False),
    "HashSet.Add in a loop building an array": ("$x = @(foreach ($a in 1, 2) { $set.Add($a); @{ a = $a } })", False),
    "Dictionary.Remove": ("$dict.Remove('k')", False),
    "StringBuilder.Append": ("$sb.Append('x')", False),
    "Add on a value of unknown type": ("$Unknown.Add(1)", False),
    "Add in a ForEach-Object block": ("Get-X | ForEach-Object { $list.Add($_) }", False),
    "Start-Service -PassThru": ("Start-Service -Name x -PassThru", False),
    "Add-Member -PassThru": ("Add-Member -InputObject $o -Name a -Value 1 -MemberType NoteProperty -PassThru", False),
    "New-Item": ("New-Item -Path x", False),
    "New-Object": ("New-Object -TypeName System.Object", False),
    "[void]": ("[void]$list.Add(1)", True),
    "$null =": ("$null = $set.Add('a')", True),
    "| Out-Null": ("$set.Add('b') | Out-Null", True),
    "assigned": ("$index = $list.Add(3)", True),
    "List.Add is void": ("$l.Add('c')", True),
    "Hashtable.Remove is void": ("$h.Remove('x')", True),
    "ordered Remove is void": ("$o.Remove('x')", True),
    "return": ("return (New-Item -Path y)", True),
    "Write-Output": ("Write-Output -InputObject (New-Item -Path z)", True),
    "pure methods map": ("$ids = @(Get-X | ForEach-Object { $_.Id.ToString() })", True),
    "used as a condition": ("if ($set.Add('c')) { $n = 1 }", True),
    "a Where-Object filter": ("$new = @($names | Where-Object { $set.Add($_) })", True),
    "$null = @()": ("$null = @(foreach ($a in 1, 2) { $set.Add($a) })", True),
}


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
# Rule 4: array-through-at

ARRAY_TEMPLATE = """
function Get-Map {
    $m = [ordered]@{}
    $m['a'] = @{ x = 1 }
    return $m
}
function Get-Many {
    foreach ($i in 1, 2) { @{ i = $i } }
}
function f {
    STATEMENT
}
"""

ARRAY_CASES = {
    "through @()": ("$a = @(Get-ChildItem -LiteralPath x)\n    $r = $a[0]", True),
    "a hashtable from a library function": ("$m = Get-Map\n    $r = $m['a']", True),
    "New-Object": ("$l = New-Object -TypeName 'System.Collections.Generic.List[string]'\n    $r = $l.Count", True),
    "a foreach then @()": ("$c = foreach ($n in 1, 2) { $n }\n    $r = @($c)[0]", True),
    "a command": ("$b = Get-ChildItem -LiteralPath x\n    $r = $b[0]", False),
    "a command, Count": ("$b = Get-ChildItem -LiteralPath x\n    $r = $b.Count", False),
    "a foreach statement": ("$c = foreach ($n in 1, 2) { $n }\n    $r = $c[0]", False),
    "a function with several outputs": ("$e = Get-Many\n    $r = $e[0]", False),
    "a parenthesized command": ("$r = (Get-ChildItem -LiteralPath x)[0]", False),
}


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
# Rule 7: count-on-collections

COUNT_TEMPLATE = """
function Get-Result {
    $missing = New-Object -TypeName 'System.Collections.Generic.List[string]'
    if ($true) { return @{ missing = $missing } }
    return @{ missing = $missing }
}
function f {
    param ([string[]]$Names, [object[]]$Objects, [array]$Array, $Untyped)
    $a = @(Get-ChildItem -LiteralPath x)
    $b = Get-ChildItem -LiteralPath x
    $c = foreach ($n in $Names) { $n }
    $h = @{}
    $o = [ordered]@{}
    $l = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $l2 = [System.Collections.Generic.List[object]]::new()
    $r = @{ items = @(); name = 'x'; list = $l }
    $byName = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,System.Collections.Generic.List[object]]'
    $n = STATEMENT
}
"""

COUNT_CASES = {
    "@() directly": ("@(Get-X).Count", True),
    "a variable from @()": ("$a.Count", True),
    "a hashtable": ("$h.Count", True),
    "an ordered dictionary's Keys": ("$o.Keys.Count", True),
    "[string[]] parameter": ("$Names.Count", True),
    "[object[]] parameter": ("$Objects.Count", True),
    "[array] parameter": ("$Array.Count", True),
    "a generic List": ("$l.Count", True),
    "a generic List from ::new()": ("$l2.Count", True),
    "a hashtable member holding @()": ("$r.items.Count", True),
    "a hashtable member holding a List": ("$r.list.Count", True),
    "a Dictionary's element List": ("$byName['x'].Count", True),
    "a library function's hashtable member": ("(Get-Result).missing.Count", True),
    "an untyped parameter": ("$Untyped.Count", False),
    "a pipeline variable": ("$b.Count", False),
    "a string member": ("$r.name.Count", False),
    "$_": ("@(Get-X | ForEach-Object { $_.Count })", False),
    "a foreach statement": ("$c.Count", False),
}


# ----------------------------------------------------------------------------------------------------------
# Every rule: snippets it accepts and refuses


@dataclass(frozen=True)
class Snippets:
    """Cases of one rule: ``template`` with STATEMENT replaced by a case's statement, and whether the rule
    accepts it. A refused case is reported on exactly one line: the one holding ``at`` (None: the
    statement itself)."""

    template: str
    cases: dict[str, tuple[str, bool]]
    at: str | None = None


SNIPPETS = {
    "write-inside-item-try": Snippets(ITEM_TRY_TEMPLATE, ITEM_TRY_CASES, at="Remove-Item"),
    "nothing-throws-after-first-write": Snippets(STUB + OPERATION, AFTER_WRITE_CASES),
    "no-stray-output": Snippets(STRAY_TEMPLATE, STRAY_CASES),
    "array-through-at": Snippets(ARRAY_TEMPLATE, ARRAY_CASES, at="$r = "),
    "count-on-collections": Snippets(COUNT_TEMPLATE, COUNT_CASES, at="$n = "),
}


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
