# The golden contract cases (tests/contract, format in its README.md) through the REAL PowerShell library
# with stub cmdlets: for each case the stub state is built from the case's LABFILE mapping, the library is
# assembled exactly as _powershell.library_text does (prelude + body + dispatch joined with "`n") and run
# as bootstrap.ps1 runs it ([ScriptBlock]::Create(library) with -RequestJson), and the answer between the
# nonce markers is compared with the case by the rules of tests/contract/lab_runner.py. Dot-source this
# file; ContractCases.Tests.ps1 (Pester 5) does. Windows PowerShell 5.1 syntax only.

Set-StrictMode -Version 3.0

function Get-ContractRoot {
    return Join-Path -Path (Split-Path -Parent $PSScriptRoot) -ChildPath 'contract'
}

function Get-ContractLibraryRoot {
    $repo = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    return Join-Path -Path $repo -ChildPath 'plugins\plugin_utils\powershell'
}

function Import-ContractStub {
    # The stub Hyper-V module, in place of any real one: Hyper-V\Get-VM resolves to the loaded module.
    Remove-Module -Name 'Hyper-V' -Force -ErrorAction SilentlyContinue
    $manifest = Join-Path -Path $PSScriptRoot -ChildPath 'Stubs\Hyper-V\Hyper-V.psd1'
    Import-Module -Name $manifest -Force -Global -DisableNameChecking
}

function Get-ContractCaseFile {
    $root = Get-ContractRoot
    foreach ($folder in @(Get-ChildItem -LiteralPath $root -Directory | Sort-Object -Property Name)) {
        Get-ChildItem -LiteralPath $folder.FullName -Filter '*.json' -File | Sort-Object -Property Name
    }
}

function Read-ContractCase {
    param ([string]$Path)
    return [System.IO.File]::ReadAllText($Path, [System.Text.Encoding]::UTF8) | ConvertFrom-Json
}

function Get-ContractSkipReason {
    # Why this runner cannot run the case ($null when it can).
    param ($Case)
    if ($null -ne $Case.expected.PSObject.Properties['refused']) {
        return 'the lab refuses this call (exit 1); a real machine would run it and fail in its own way'
    }
    if ([string]$Case.operation -like 'vm_kvp_*') {
        return 'the stub does not model Key-Value Pair Exchange on the host (root/virtualization/v2) yet'
    }
    if ([string]$Case.operation -like 'vm_file_copy*') {
        return 'the stub does not model Copy-VMFile, the host''s files or its root/virtualization/v2 (the copy record) yet'
    }
    if ([string]$Case.operation -like 'guest_kvp_*') {
        return 'the stub does not model the guest''s Data Exchange registry keys (HKLM:\SOFTWARE\Microsoft\Virtual Machine) yet'
    }
    $unsupported = Hyper-V\Get-StubUnsupported -Lab $Case.lab
    if ($null -ne $unsupported) { return "the stub does not model $unsupported" }
    return $null
}

function Get-ContractLibrary {
    # _powershell.library_text: the three parts, newlines normalised as Python's text mode reads them.
    param ([string]$Body)
    $root = Get-ContractLibraryRoot
    $parts = foreach ($name in @('_prelude.ps1', $Body, '_dispatch.ps1')) {
        [System.IO.File]::ReadAllText((Join-Path -Path $root -ChildPath $name), [System.Text.Encoding]::UTF8) -replace "`r`n?", "`n"
    }
    return $parts -join "`n"
}

function Invoke-StubbedLibrary {
    # The stand-in Windows cmdlets are defined in this function's scope only, then the library runs as
    # the bootstrap runs it, in a child scope that sees them.
    param ([string]$Library, [string]$RequestJson)
    . (Join-Path -Path $PSScriptRoot -ChildPath 'Stubs\WindowsStubs.ps1')
    & ([System.Management.Automation.ScriptBlock]::Create($Library)) -RequestJson $RequestJson
}

# -- comparison (lab_runner.differences) ----------------------------------------------------------------
function Get-ContractKind {
    param ($Value)
    if ($null -eq $Value) { return 'null' }
    if ($Value -is [bool]) { return 'bool' }
    if ($Value -is [string]) { return 'string' }
    if ($Value -is [int] -or $Value -is [long] -or $Value -is [double] -or $Value -is [decimal]) { return 'number' }
    if ($Value -is [System.Collections.IDictionary] -or $Value -is [System.Management.Automation.PSCustomObject]) { return 'object' }
    if ($Value -is [System.Collections.IEnumerable]) { return 'array' }
    return 'unknown ' + $Value.GetType().FullName
}

function ConvertTo-ContractMap {
    # An object's keys, compared exactly (PSCustomObject members are case-insensitive).
    param ($Object)
    $map = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,object]' -ArgumentList ([System.StringComparer]::Ordinal)
    if ($Object -is [System.Collections.IDictionary]) {
        foreach ($key in @($Object.Keys)) { $map[[string]$key] = $Object[$key] }
    }
    else {
        foreach ($property in $Object.PSObject.Properties) { $map[$property.Name] = $property.Value }
    }
    return $map
}

function ConvertTo-ContractText {
    param ($Value)
    if ($null -eq $Value) { return 'null' }
    return ConvertTo-Json -InputObject $Value -Depth 30 -Compress
}

function Compare-ContractValue {
    # Adds to $Problems every difference; $Subset: objects in $Actual may have more keys (arrays whole).
    param ($Expected, $Actual, [string]$Where, [bool]$Subset, [System.Collections.Generic.List[string]]$Problems)
    $kind = Get-ContractKind $Expected
    if ($kind -ne (Get-ContractKind $Actual)) {
        $Problems.Add("${Where}: expected $(ConvertTo-ContractText $Expected), got $(ConvertTo-ContractText $Actual)")
        return
    }
    if ($kind -eq 'object') {
        $wanted = ConvertTo-ContractMap $Expected
        $found = ConvertTo-ContractMap $Actual
        foreach ($key in $wanted.Keys) {
            if (-not $found.ContainsKey($key)) { $Problems.Add("$Where.${key}: missing"); continue }
            Compare-ContractValue -Expected $wanted[$key] -Actual $found[$key] -Where "$Where.$key" -Subset $Subset -Problems $Problems
        }
        if (-not $Subset) {
            foreach ($key in $found.Keys) {
                if (-not $wanted.ContainsKey($key)) { $Problems.Add("$Where.${key}: not expected (value $(ConvertTo-ContractText $found[$key]))") }
            }
        }
        return
    }
    if ($kind -eq 'array') {
        $wanted = @($Expected)
        $found = @($Actual)
        if ($wanted.Count -ne $found.Count) {
            $Problems.Add("${Where}: expected $($wanted.Count) items, got $($found.Count): $(ConvertTo-ContractText $Actual)")
            return
        }
        for ($index = 0; $index -lt $wanted.Count; $index++) {
            Compare-ContractValue -Expected $wanted[$index] -Actual $found[$index] -Where "$Where[$index]" -Subset $Subset -Problems $Problems
        }
        return
    }
    $same = switch ($kind) {
        'null' { $true }
        'number' { [decimal]$Expected -eq [decimal]$Actual }
        'string' { [string]::Equals($Expected, $Actual, [System.StringComparison]::Ordinal) }
        default { $Expected -eq $Actual }
    }
    if (-not $same) { $Problems.Add("${Where}: expected $(ConvertTo-ContractText $Expected), got $(ConvertTo-ContractText $Actual)") }
}

function Resolve-ContractPlaceholder {
    # <vm-id:NAME> -> the stub VM's id (lower case), <VM-ID:NAME> upper case, NAME#2 the second such VM.
    param ($Value, $Ids)
    $kind = Get-ContractKind $Value
    if ($kind -eq 'string') {
        $pattern = '<(vm-id|VM-ID):([^<>]+?)(?:#(\d+))?>'  # lab_runner.PLACEHOLDER
        $evaluator = {
            param ($Match)
            $name = $Match.Groups[2].Value
            $index = 1
            if ($Match.Groups[3].Success) { $index = [int]$Match.Groups[3].Value }
            if (-not $Ids.ContainsKey($name) -or $index -gt $Ids[$name].Count) {
                throw "placeholder $($Match.Value): no VM number $index named '$name' in the lab"
            }
            $id = $Ids[$name][$index - 1]
            if ($Match.Groups[1].Value -ceq 'VM-ID') { return $id.ToUpperInvariant() }
            return $id.ToLowerInvariant()
        }.GetNewClosure()
        return [regex]::Replace($Value, $pattern, [System.Text.RegularExpressions.MatchEvaluator]$evaluator)
    }
    if ($kind -eq 'array') {
        $items = @(foreach ($item in $Value) { , (Resolve-ContractPlaceholder -Value $item -Ids $Ids) })
        return , $items
    }
    if ($kind -eq 'object') {
        $copy = [ordered]@{}
        foreach ($property in $Value.PSObject.Properties) {
            $copy[(Resolve-ContractPlaceholder -Value $property.Name -Ids $Ids)] = Resolve-ContractPlaceholder -Value $property.Value -Ids $Ids
        }
        return [pscustomobject]$copy
    }
    return $Value
}

# -- one case ---------------------------------------------------------------------------------------------
function Invoke-ContractCase {
    # The problems of one case (none: it passes). Import-ContractStub must have run.
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$Path)
    $case = Read-ContractCase -Path $Path
    $problems = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $guestVm = $null
    if ($case.endpoint -isnot [string]) { $guestVm = [string]$case.endpoint.windows_guest }
    Hyper-V\Initialize-StubLab -Lab $case.lab -GuestVmName $guestVm
    $body = 'hyperv_host.ps1'
    if ($null -ne $guestVm) { $body = 'windows_guest.ps1' }
    if ($null -ne $case.PSObject.Properties['library']) { $body = [string]$case.library }

    $nonce = [guid]::NewGuid().ToString('N')
    $request = [ordered]@{ protocol = 1; nonce = $nonce; operation = [string]$case.operation; check_mode = [bool]$case.check_mode; params = $case.params }
    $requestJson = ConvertTo-Json -InputObject $request -Depth 30 -Compress
    $output = @(Invoke-StubbedLibrary -Library (Get-ContractLibrary -Body $body) -RequestJson $requestJson)
    $text = (@($output | ForEach-Object { [string]$_ })) -join "`n"
    $match = [regex]::Match($text, "HYPERV_INTEGRATION_BEGIN_$nonce\s+([A-Za-z0-9+/=]+)\s+HYPERV_INTEGRATION_END_$nonce")
    if (-not $match.Success) { return "no answer between the markers: $text" }
    $response = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($match.Groups[1].Value)) | ConvertFrom-Json

    $expected = Resolve-ContractPlaceholder -Value $case.expected -Ids (Hyper-V\Get-StubVmId)
    $envelope = [pscustomobject]@{ protocol = 1; operation = [string]$case.operation }
    Compare-ContractValue -Expected $envelope -Actual $response -Where 'response' -Subset $true -Problems $problems
    if ($expected.ok) {
        Compare-ContractValue -Expected ([pscustomobject]@{ ok = $true; error = $null }) -Actual $response -Where 'response' -Subset $true -Problems $problems
        Compare-ContractValue -Expected $expected.result -Actual $response.result -Where 'result' -Subset $false -Problems $problems
    }
    else {
        Compare-ContractValue -Expected ([pscustomobject]@{ ok = $false; result = $null }) -Actual $response -Where 'response' -Subset $true -Problems $problems
        $actualError = $response.error
        foreach ($key in @('type', 'category', 'vm', 'service')) {
            if ($null -ne $expected.error.PSObject.Properties[$key]) {
                $actualValue = $null
                if ($null -ne $actualError -and $null -ne $actualError.PSObject.Properties[$key]) { $actualValue = $actualError.$key }
                Compare-ContractValue -Expected $expected.error.$key -Actual $actualValue -Where "error.$key" -Subset $false -Problems $problems
            }
        }
        if ($null -ne $expected.error.PSObject.Properties['message_contains']) {
            $message = ''
            if ($null -ne $actualError) { $message = [string]$actualError.message }
            if (-not $message.Contains([string]$expected.error.message_contains)) {
                $problems.Add("error.message does not contain '$($expected.error.message_contains)': '$message'")
            }
        }
    }
    $view = Hyper-V\Get-StubLabView
    if ([int]$view.counters.writes -ne [int]$expected.writes) {
        $problems.Add("writes: expected $($expected.writes), the stubs counted $($view.counters.writes)")
    }
    if ($null -ne $expected.PSObject.Properties['state_after']) {
        Compare-ContractValue -Expected $expected.state_after -Actual $view -Where 'state' -Subset $true -Problems $problems
    }
    return $problems.ToArray()
}
