"""The structural contract rules (tests/pscheck/structure_rules.py) on the PowerShell the collection ships.

For every rule: the shipped code has no violations; a defect of that kind seeded into a copy of the real
library text (a small string replacement) is reported on its line; small snippets show the guarded forms
the rule accepts. A seed whose anchor is gone fails with "seed anchor": update the seed to the library.
"""

# ruff: noqa: E501 -- the PowerShell fixtures below are verbatim library lines, longer than Python's limit.
from __future__ import annotations

import re

import pytest
from hvlab import pstree
from pscheck import structure_rules as sr
from pscheck.shipped import BOOTSTRAP, GUEST, HOST, SHIPPED, line_of, locate, seed, source

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
# Rule 1: write-inside-item-try


def test_write_outside_any_try_is_reported() -> None:
    text = seed(
        source(GUEST),
        "    $restart = $false\n",
        "    $restart = $false\n    Set-Service -Name 'vmicvss' -StartupType Manual  # SEEDED\n",
    )
    found = sr.write_inside_item_try(text)
    assert lines(found, "write-inside-item-try") == {line_of(text, "# SEEDED")}
    assert "not inside a try" in found[0].message and found[0].function == "set-oneguestservice"


def test_write_in_a_try_whose_catch_does_not_record_the_error_is_reported() -> None:
    text = seed(
        source(HOST),
        "        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $guid\n",
        "        Write-Verbose -Message 'failed'\n",
    )
    found = sr.write_inside_item_try(text)
    assert lines(found, "write-inside-item-try") == {
        line_of(text, "Remove-Item -LiteralPath (Join-Path"),
        line_of(text, "$null = New-Item -Path $path -Force"),
        line_of(text, "Set-ItemProperty -LiteralPath $path"),
    }
    assert all("does not record the error" in v.message for v in found)


def test_write_in_a_catch_block_is_reported() -> None:
    text = seed(
        source(GUEST),
        "Write-Verbose -Message 'read-back of VMICTimeProvider failed; keeping the value recorded before'",
        "Remove-ItemProperty -LiteralPath $TimeProviderKey -Name 'Enabled'  # SEEDED",
    )
    found = sr.write_inside_item_try(text)
    assert lines(found, "write-inside-item-try") == {line_of(text, "# SEEDED")}
    assert "catch or finally" in found[0].message


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


@pytest.mark.parametrize("case", sorted(ITEM_TRY_CASES))
def test_which_catches_protect_a_write(case: str) -> None:
    clause, accepted = ITEM_TRY_CASES[case]
    text = snippet(
        STUB + "function f {\n    param ($e)\n    try { Remove-Item -LiteralPath 'HKLM:\\x' }\n    %s\n}\n" % clause
    )
    assert (sr.write_inside_item_try(text) == []) is accepted, sr.write_inside_item_try(text)


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

# Frozen copies of the defects the issue found (commit effab67), so the rule keeps catching them after
# the library is fixed. Host: Set-OneHvSocketEntry read (Get-HvSocketEntry)[$guid] after its writes,
# outside any try.
FROZEN_HVSOCKET = r"""
$GuestCommunicationServices = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\GuestCommunicationServices'

function Get-HvSocketEntry {
    $entries = [ordered]@{}
    if (-not (Test-Path -LiteralPath $GuestCommunicationServices)) { return $entries }
    foreach ($key in @(Get-ChildItem -LiteralPath $GuestCommunicationServices)) {
        $parsed = [guid]::Empty
        if (-not [guid]::TryParse($key.PSChildName.Trim('{', '}'), [ref]$parsed)) { continue }
        $value = $key.GetValue('ElementName', $null)
        $entries[$parsed.ToString().ToUpperInvariant()] = @{ key = $key.PSChildName; name = $value }
    }
    return $entries
}

function Set-OneHvSocketEntry {
    param ($Entries, $Item, [bool]$CheckMode)
    $guid = $Item.guid
    $existing = $Entries[$guid]
    $before = @{ present = ($null -ne $existing); name = if ($existing) { $existing.name } else { $null } }
    $entry = @{ service_id = $guid; before = $before; after = @{ present = $before.present; name = $before.name }; changed = $false; error = $null }
    try {
        if ($Item.state -eq 'absent') {
            if ($existing) {
                if (-not $CheckMode) { Remove-Item -LiteralPath (Join-Path -Path $GuestCommunicationServices -ChildPath $existing.key) -Recurse }
                $entry.after = @{ present = $false; name = $null }
            }
        }
        else {
            $path = Join-Path -Path $GuestCommunicationServices -ChildPath $(if ($existing) { $existing.key } else { $guid })
            if (-not $existing -and -not $CheckMode) { $null = New-Item -Path $path -Force }
            $entry.after.present = $true
            if ($null -ne $Item.name -and $Item.name -cne $before.name) {
                if (-not $CheckMode) { Set-ItemProperty -LiteralPath $path -Name 'ElementName' -Value ([string]$Item.name) -Type String }
                $entry.after.name = [string]$Item.name
            }
        }
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $guid
    }
    if (-not $CheckMode) {
        $now = (Get-HvSocketEntry)[$guid]
        $entry.after = @{ present = ($null -ne $now); name = if ($now) { $now.name } else { $null } }
    }
    $entry.changed = ($entry.after.present -ne $before.present) -or ($entry.after.name -cne $before.name)
    return $entry
}

function Invoke-HvSocketServiceSet {
    param ($Request)
    $items = @(foreach ($wish in @($Request.params.services)) {
            @{ guid = [guid]::Parse([string]$wish.service_id).ToString().ToUpperInvariant(); name = $wish.name; state = [string]$wish.state }
        })
    $entries = Get-HvSocketEntry
    @{ services = @(foreach ($item in $items) { Set-OneHvSocketEntry -Entries $entries -Item $item -CheckMode ([bool]$Request.check_mode) }) }
}

$operations = @{ hvsocket_service_set = ${function:Invoke-HvSocketServiceSet} }
"""

# Guest: Invoke-GuestServiceSet called Set-TimeProvider after Set-OneGuestService's service writes, and
# Set-TimeProvider started with Get-ServiceState -Name 'W32Time' outside a try.
FROZEN_GUEST = r"""
function Get-ServiceState {
    param ([string]$Name)
    $service = Get-Service | Where-Object { $_.Name -eq $Name } | Select-Object -First 1
    if ($null -eq $service) { return $null }
    if ($service.PSObject.Properties['StartType']) {
        $mode = $service.StartType.ToString()
    }
    else {
        $wmi = Get-CimInstance -ClassName Win32_Service | Where-Object { $_.Name -eq $Name } | Select-Object -First 1
        $mode = if ($wmi.StartMode -eq 'Auto') { 'Automatic' } else { [string]$wmi.StartMode }
    }
    @{
        status       = $service.Status.ToString()
        start_mode   = $mode
        display_name = $service.DisplayName
    }
}

function Get-TimeProviderState {
    if (-not (Test-Path -LiteralPath $TimeProviderKey -PathType Container)) {
        return @{ present = $false; enabled = $null; kind = $null }
    }
    $key = Get-Item -LiteralPath $TimeProviderKey
    try {
        $value = $key.GetValue('Enabled', $null)
        $kind = if ($null -eq $value) { $null } else { $key.GetValueKind('Enabled').ToString() }
    }
    finally {
        $key.Close()
    }
    if ($kind -eq 'DWord') { $value = [int]$value }
    elseif ($null -ne $value) { $value = [string]$value }
    @{ present = $true; enabled = $value; kind = $kind }
}

function Set-TimeProvider {
    param ($Before, [int]$Wanted, [bool]$CheckMode)
    $entry = @{
        present = $true
        before  = @{ enabled = $Before.enabled; kind = $Before.kind }
        after   = @{ enabled = $Before.enabled; kind = $Before.kind }
        changed = $false
        w32time = $null
        error   = $null
    }
    $w32time = Get-ServiceState -Name 'W32Time'
    if ($null -ne $w32time) { $entry.w32time = @{ status = $w32time.status; restarted = $false; error = $null } }
    if ($Before.kind -eq 'DWord' -and $Before.enabled -eq $Wanted) { return $entry }
    if ($CheckMode) {
        $entry.after = @{ enabled = $Wanted; kind = 'DWord' }
        $entry.changed = $true
        if ($null -ne $entry.w32time -and $w32time.status -eq 'Running') { $entry.w32time.restarted = $true }
        return $entry
    }
    try {
        New-ItemProperty -LiteralPath $TimeProviderKey -Name 'Enabled' -Value $Wanted -PropertyType DWord -Force | Out-Null
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $null
    }
    try {
        $now = Get-TimeProviderState
        $entry.after = @{ enabled = $now.enabled; kind = $now.kind }
    }
    catch {
        Write-Verbose -Message 'read-back of VMICTimeProvider failed; keeping the value recorded before'
    }
    $entry.changed = ($entry.after.enabled -ne $entry.before.enabled) -or ($entry.after.kind -ne $entry.before.kind)
    if ($entry.changed -and $null -ne $entry.w32time -and $w32time.status -eq 'Running') {
        try {
            Restart-Service -Name 'W32Time' -Force
            $entry.w32time.restarted = $true
            $entry.w32time.status = (Get-ServiceState -Name 'W32Time').status
        }
        catch {
            $entry.w32time.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service 'W32Time'
        }
    }
    return $entry
}

function Set-OneGuestService {
    param ($Wish, [bool]$CheckMode)
    $name = [string]$Wish.name
    $entry = @{ name = $name; before = $null; after = $null; changed = $false; error = $null }
    try {
        $before = Get-ServiceState -Name $name
        if ($null -eq $before) { throw [System.InvalidOperationException]::new("service '$name' no longer exists") }
        $entry.before = @{ status = $before.status; start_mode = $before.start_mode }
        $entry.after = @{ status = $before.status; start_mode = $before.start_mode }
        if ($Wish.start_mode -and $Wish.start_mode -ne $before.start_mode) {
            if (-not $CheckMode) { Set-Service -Name $name -StartupType $Wish.start_mode }
            $entry.after.start_mode = [string]$Wish.start_mode
            $entry.changed = $true
        }
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $name
    }
    return $entry
}

function Invoke-GuestServiceSet {
    param ($Request)
    $wishes = @($Request.params.services)
    $wanted = $null
    if ($Request.params.PSObject.Properties['time_provider_enabled'] -and $null -ne $Request.params.time_provider_enabled) {
        $wanted = [int]$Request.params.time_provider_enabled
    }
    $timeBefore = $null
    if ($null -ne $wanted) { $timeBefore = Get-TimeProviderState }
    $done = @(foreach ($wish in $wishes) { Set-OneGuestService -Wish $wish -CheckMode ([bool]$Request.check_mode) })
    $time = $null
    if ($null -ne $wanted) { $time = Set-TimeProvider -Before $timeBefore -Wanted $wanted -CheckMode ([bool]$Request.check_mode) }
    @{ services = $done; time_provider = $time }
}

$operations = @{ guest_service_set = ${function:Invoke-GuestServiceSet} }
"""


def _frozen(body: str) -> str:
    return "\n".join((read_text("_prelude.ps1"), body, read_text("_dispatch.ps1")))


def test_catches_the_hvsocket_read_back_after_the_writes() -> None:
    text = _frozen(FROZEN_HVSOCKET)
    assert parse_errors(text) == []
    found = sr.nothing_throws_after_first_write(text)
    target = line_of(text, "$now = (Get-HvSocketEntry)[$guid]")
    hits = [v for v in found if v.line == target]
    assert len(hits) == 1, report(HOST, found)
    assert hits[0].function == "set-onehvsocketentry"
    assert "Get-HvSocketEntry" in hits[0].message and "not item-safe" in hits[0].message
    # ... and so the call of Set-OneHvSocketEntry in the loop is not item-safe either.
    loop = line_of(text, "Set-OneHvSocketEntry -Entries $entries")
    assert any(v.line == loop and "calls Set-OneHvSocketEntry" in v.message for v in found)


def test_catches_set_time_provider_after_the_service_writes() -> None:
    text = _frozen(FROZEN_GUEST)
    assert parse_errors(text) == []
    found = sr.nothing_throws_after_first_write(text)
    target = line_of(text, "$time = Set-TimeProvider")
    calls = [v for v in found if v.line == target and "calls Set-TimeProvider" in v.message]
    assert len(calls) == 1, report(GUEST, found)
    assert "Get-ServiceState -Name 'W32Time'" in calls[0].message
    assert "line %d" % line_of(text, "$done = @(foreach ($wish in $wishes)") in calls[0].message  # the writes


def test_a_throwing_read_after_the_writes_is_reported() -> None:
    text = seed(
        source(HOST),
        "    $entry.changed = ($entry.after.present -ne $before.present)",
        "    $again = (Get-HvSocketEntry)[$guid]  # SEEDED\n    $entry.changed = ($entry.after.present -ne $before.present)",
    )
    found = sr.nothing_throws_after_first_write(text)
    hits = [v for v in found if v.line == line_of(text, "# SEEDED")]
    assert len(hits) == 1 and "Get-HvSocketEntry" in hits[0].message, report(HOST, found)


def test_a_call_after_the_writes_of_a_function_that_is_not_item_safe_is_reported() -> None:
    text = seed(
        source(GUEST),
        "    $time = $null\n",
        "    $again = Get-ComputerIdentity  # SEEDED\n    $time = $null\n",
    )
    found = sr.nothing_throws_after_first_write(text)
    hits = [v for v in found if v.line == line_of(text, "# SEEDED")]
    assert len(hits) == 1, report(GUEST, found)
    assert "calls Get-ComputerIdentity, which is not item-safe" in hits[0].message
    assert "Get-CimInstance" in hits[0].message


def test_a_throwing_statement_before_the_write_in_the_same_loop_is_reported() -> None:
    # Earlier in the loop body than the write, but the next round runs it after this round's write.
    text = seed(
        source(HOST),
        "                        Set-OneIntegrationService -Vm $entry.vm",
        "                        $null = $entry.vm.Name  # SEEDED\n                        Set-OneIntegrationService -Vm $entry.vm",
    )
    found = sr.nothing_throws_after_first_write(text)
    hits = [v for v in found if v.line == line_of(text, "# SEEDED")]
    assert len(hits) == 1 and "in the same loop as" in hits[0].message, report(HOST, found)


def test_an_item_function_that_stops_being_item_safe_is_reported_at_its_call() -> None:
    text = seed(
        source(HOST),
        "    $entry = @{ guid = $Item.guid; name = $null;",
        "    $null = $Vm.Name  # SEEDED\n    $entry = @{ guid = $Item.guid; name = $null;",
    )
    found = sr.nothing_throws_after_first_write(text)
    call = line_of(text, "Set-OneIntegrationService -Vm $entry.vm")
    hits = [v for v in found if v.line == call]
    assert len(hits) == 1, report(HOST, found)
    assert "not item-safe (line %d" % line_of(text, "# SEEDED") in hits[0].message


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
        LATER
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


@pytest.mark.parametrize("case", sorted(AFTER_WRITE_CASES))
def test_what_may_run_after_the_first_write(case: str) -> None:
    statement, accepted = AFTER_WRITE_CASES[case]
    text = snippet(STUB + OPERATION.replace("LATER", statement))
    found = sr.nothing_throws_after_first_write(text)
    assert (found == []) is accepted, found
    if not accepted:
        assert line_of(text, statement.split(";")[-1].strip()) in {v.line for v in found}, found


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


def test_new_item_not_assigned_is_reported() -> None:
    text = seed(source(HOST), "{ $null = New-Item -Path $path -Force }", "{ New-Item -Path $path -Force }")
    found = sr.no_stray_output(text)
    assert lines(found, "no-stray-output") == {line_of(text, "{ New-Item -Path $path -Force }")}


def test_new_itemproperty_not_piped_to_out_null_is_reported() -> None:
    text = seed(source(GUEST), "-PropertyType DWord -Force | Out-Null", "-PropertyType DWord -Force")
    found = sr.no_stray_output(text)
    assert lines(found, "no-stray-output") == {line_of(text, "-PropertyType DWord -Force")}


def test_arraylist_add_as_a_statement_is_reported() -> None:
    # List[T].Add is void; ArrayList.Add returns the index: the same line becomes stray output.
    text = seed(
        source(HOST),
        "    $found = New-Object -TypeName 'System.Collections.Generic.List[object]'",
        "    $found = New-Object -TypeName 'System.Collections.ArrayList'",
    )
    found = sr.no_stray_output(text)
    expected = {n for n, content in enumerate(text.splitlines(), 1) if "$found.Add(" in content}
    assert len(expected) >= 2
    assert lines(found, "no-stray-output") == expected
    assert "arraylist" in found[0].message


def test_a_library_call_whose_output_joins_the_functions_output_is_reported() -> None:
    text = seed(source(GUEST), "    $time = $null\n", "    Get-ComputerIdentity  # SEEDED\n    $time = $null\n")
    found = sr.no_stray_output(text)
    assert lines(found, "no-stray-output") == {line_of(text, "# SEEDED")}


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


@pytest.mark.parametrize("case", sorted(STRAY_CASES))
def test_what_counts_as_stray_output(case: str) -> None:
    statement, accepted = STRAY_CASES[case]
    text = snippet(
        """
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
""".replace("STATEMENT", statement)
    )
    found = sr.no_stray_output(text)
    assert (found == []) is accepted, found
    if not accepted:
        assert {v.line for v in found} == {line_of(text, statement)}


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


def test_indexing_a_pipeline_variable_is_reported() -> None:
    text = seed(
        source(HOST),
        "$fresh = @(Hyper-V\\Get-VMIntegrationService -VM $Vm | Where-Object { (Get-IcGuid $_) -eq $Item.guid })",
        "$fresh = Hyper-V\\Get-VMIntegrationService -VM $Vm | Where-Object { (Get-IcGuid $_) -eq $Item.guid }",
    )
    found = sr.array_through_at(text)
    assert lines(found, "array-through-at") == {line_of(text, "if ($fresh.Count -eq 1)")}
    assert {v.text for v in found} == {"$fresh.Count", "$fresh[0]"}


def test_indexing_a_pipeline_variable_in_the_bootstrap_is_reported() -> None:
    text = seed(
        source(BOOTSTRAP),
        "$lines = @($input | ForEach-Object -Process { ([string]$_).Trim() } | Where-Object -FilterScript { $_ })",
        "$lines = $input | ForEach-Object -Process { ([string]$_).Trim() } | Where-Object -FilterScript { $_ }",
    )
    found = sr.array_through_at(text)
    assert lines(found, "array-through-at") == {line_of(text, "$lines[0]"), line_of(text, "$lines[1]")}


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


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_what_must_go_through_at(case: str) -> None:
    statements, accepted = ARRAY_CASES[case]
    text = snippet(
        """
function Get-Map {
    $m = [ordered]@{}
    $m['a'] = @{ x = 1 }
    return $m
}
function Get-Many {
    foreach ($i in 1, 2) { @{ i = $i } }
}
function f {
    STATEMENTS
}
""".replace("STATEMENTS", statements)
    )
    found = sr.array_through_at(text)
    assert (found == []) is accepted, found
    if not accepted:
        assert {v.line for v in found} == {line_of(text, "$r = ")}


# ----------------------------------------------------------------------------------------------------------
# Rule 5: convertto-json-inputobject


def test_convertto_json_from_the_pipeline_is_reported() -> None:
    text = seed(
        source(HOST),
        "$json = ConvertTo-Json -InputObject $response -Depth 10 -Compress",
        "$json = $response | ConvertTo-Json -Depth 10 -Compress",
    )
    found = sr.convertto_json_inputobject(text)
    assert lines(found, "convertto-json-inputobject") == {line_of(text, "$json = ")}
    assert "pipeline" in found[0].message and "-InputObject is missing" in found[0].message


def test_convertto_json_without_depth_is_reported() -> None:
    text = seed(source(GUEST), "-InputObject $response -Depth 10 -Compress", "-InputObject $response -Compress")
    found = sr.convertto_json_inputobject(text)
    assert lines(found, "convertto-json-inputobject") == {line_of(text, "$json = ")}
    assert found[0].message.startswith("-Depth is missing")


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


def test_powershell_7_syntax_seeded_into_the_library_is_reported() -> None:
    text = source(HOST)
    text = seed(text, "ForEach-Object { $_.Id.ToString() }", "ForEach-Object -Parallel { $_.Id.ToString() }")
    text = seed(
        text,
        "$request = ConvertFrom-Json -InputObject $RequestJson",
        "$request = ConvertFrom-Json -InputObject $RequestJson -AsHashtable",
    )
    text = seed(
        text, "    if ($null -eq $Value) { return $null }", "    if ($IsWindows -and $null -eq $Value) { return $null }"
    )
    found = sr.no_ps7_syntax(text)
    assert lines(found, "no-ps7-syntax") == {
        line_of(text, "-Parallel"),
        line_of(text, "-AsHashtable"),
        line_of(text, "$IsWindows"),
    }


def test_ternary_seeded_into_the_library_fails_both_the_rule_and_the_parse() -> None:
    text = seed(source(GUEST), "    $time = $null\n", "    $time = $wanted ? 1 : $null\n")
    assert parse_errors(text)
    found = sr.no_ps7_syntax(text)
    assert line_of(text, "$wanted ? 1") in {v.line for v in found}


# ----------------------------------------------------------------------------------------------------------
# Rule 7: count-on-collections


def test_count_on_a_string_is_reported() -> None:
    text = seed(source(HOST), "if ($fresh.Count -eq 1)", "if ($Item.guid.Count -eq 1)")
    found = sr.count_on_collections(text)
    assert lines(found, "count-on-collections") == {line_of(text, "$Item.guid.Count")}
    assert "#2798" in found[0].message


def test_count_on_a_typed_scalar_parameter_is_reported() -> None:
    text = seed(
        source(GUEST), "    if ($found.Count -eq 0) { return $null }", "    if ($Name.Count -eq 0) { return $null }"
    )
    found = sr.count_on_collections(text)
    assert lines(found, "count-on-collections") == {line_of(text, "$Name.Count")}


def test_count_on_a_member_that_is_not_a_collection_any_more_is_reported() -> None:
    # Resolve-VmName's missing list becomes a pipeline result: its callers' .Count is not proven.
    text = seed(
        source(HOST),
        "    $missing = New-Object -TypeName 'System.Collections.Generic.List[string]'",
        "    $missing = Get-ChildItem -LiteralPath 'x'",
    )
    found = sr.count_on_collections(text)
    assert lines(found, "count-on-collections") == {line_of(text, "$resolved.missing.Count")}


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


@pytest.mark.parametrize("case", sorted(COUNT_CASES))
def test_what_count_may_be_asked_of(case: str) -> None:
    expression, accepted = COUNT_CASES[case]
    text = snippet(
        """
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
    $n = EXPRESSION
}
""".replace("EXPRESSION", expression)
    )
    found = sr.count_on_collections(text)
    assert (found == []) is accepted, found
    if not accepted:
        assert {v.line for v in found} == {line_of(text, "$n = ")}


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
