# Body of the Hyper-V host library (prelude: _prelude.ps1, dispatch: _dispatch.ps1). ICs are selected
# by the GUID suffix of their Id, never by Name: the Name is localized (hyperv-facts.md section 1;
# HyperVDsc issues 73 and 76).

function ConvertTo-EnumName {
    # Enum values become their names on the host; ConvertTo-Json would write numbers.
    param ($Value)
    if ($null -eq $Value) { return $null }
    return $Value.ToString()
}

function Get-IcGuid {
    # Id is 'Microsoft:<VMID>\<IC GUID>' (hyperv-facts.md section 1).
    param ($IntegrationService)
    return ($IntegrationService.Id -split '\\')[-1].Trim('{', '}').ToUpperInvariant()
}

# Cmdlets are module-qualified (Hyper-V\...): with VMware PowerCLI installed, a bare Get-VM resolves to
# PowerCLI's (hashicorp/vagrant#8862, hashicorp/packer#5337).

function Resolve-VmName {
    # Exact, ordinal case-insensitive match; Get-VM -Name would treat [ ] * ? as wildcards. A VM named
    # twice in the request (in two spellings) is returned once.
    param ([object[]]$Names)
    $allVms = @(Hyper-V\Get-VM)
    $found = New-Object -TypeName 'System.Collections.Generic.List[object]'
    $missing = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $ambiguous = @{}
    if ($null -eq $Names) {
        foreach ($vm in $allVms) { $found.Add($vm) }
        return @{ vms = $found; missing = $missing; ambiguous = $ambiguous }
    }
    $byName = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,System.Collections.Generic.List[object]]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
    foreach ($vm in $allVms) {
        if (-not $byName.ContainsKey($vm.Name)) {
            $byName[$vm.Name] = New-Object -TypeName 'System.Collections.Generic.List[object]'
        }
        $byName[$vm.Name].Add($vm)
    }
    $seenIds = @{}
    foreach ($name in $Names) {
        $name = [string]$name
        if (-not $byName.ContainsKey($name)) { $missing.Add($name) }
        elseif ($byName[$name].Count -gt 1) { $ambiguous[$name] = @($byName[$name] | ForEach-Object { $_.Id.ToString() }) }
        elseif (-not $seenIds.ContainsKey($byName[$name][0].Id.ToString())) {
            $seenIds[$byName[$name][0].Id.ToString()] = $true
            $found.Add($byName[$name][0])
        }
    }
    return @{ vms = $found; missing = $missing; ambiguous = $ambiguous }
}

function Get-VmIntegrationStatus {
    param ($Vm)
    $services = foreach ($ic in @(Hyper-V\Get-VMIntegrationService -VM $Vm)) {
        @{
            id               = $ic.Id
            name             = $ic.Name
            enabled          = [bool]$ic.Enabled
            primary_status   = ConvertTo-EnumName $ic.PrimaryOperationalStatus
            secondary_status = ConvertTo-EnumName $ic.SecondaryOperationalStatus
        }
    }
    # A guest that never reported its integration services shows version 0.0: report none.
    $version = $null
    if ($Vm.IntegrationServicesVersion -and $Vm.IntegrationServicesVersion.ToString() -ne '0.0') {
        $version = $Vm.IntegrationServicesVersion.ToString()
    }
    @{
        name                         = $Vm.Name
        id                           = $Vm.Id.ToString()
        state                        = $Vm.State.ToString()
        heartbeat                    = ConvertTo-EnumName $Vm.Heartbeat  # $null when Off
        integration_services_version = $version
        # Text as the host gives it (it may be in the host's language).
        integration_services_state   = if ($Vm.IntegrationServicesState) { [string]$Vm.IntegrationServicesState } else { $null }
        integration_services         = @($services)
    }
}

function Invoke-VmIntegrationServiceInfo {
    param ($Request)
    $resolved = Resolve-VmName -Names $Request.params.vm_names
    @{
        vms       = @($resolved.vms | ForEach-Object { Get-VmIntegrationStatus -Vm $_ })
        missing   = @($resolved.missing)
        ambiguous = $resolved.ambiguous
    }
}

function Set-OneIntegrationService {
    # One VM/IC: write when it differs, read it back. Everything that can throw after a write is inside
    # this try, so a failure is reported on its item and never as a whole-call error that would claim
    # nothing was written.
    param ($Vm, $Item, [bool]$CheckMode)
    $before = [bool]$Item.ic.Enabled
    $entry = @{ guid = $Item.guid; name = $Item.ic.Name; before = $before; after = $before; changed = $false; error = $null; primary_status = $null }
    if ($before -eq $Item.wish) {
        # Unchanged, so the status read with it is current (it lets a wait end without another read).
        $entry.primary_status = ConvertTo-EnumName $Item.ic.PrimaryOperationalStatus
        return $entry
    }
    if ($CheckMode) {
        $entry.after = $Item.wish
        $entry.changed = $true
        return $entry
    }
    try {
        if ($Item.wish) { Hyper-V\Enable-VMIntegrationService -VMIntegrationService $Item.ic }
        else { Hyper-V\Disable-VMIntegrationService -VMIntegrationService $Item.ic }
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $Vm.Name -Service $Item.guid
    }
    try {
        $fresh = @(Hyper-V\Get-VMIntegrationService -VM $Vm | Where-Object { (Get-IcGuid $_) -eq $Item.guid })
        if ($fresh.Count -eq 1) { $entry.after = [bool]$fresh[0].Enabled }
        elseif ($null -eq $entry.error) { $entry.after = $Item.wish }  # written without error; not readable now
    }
    catch {
        # Written (or not) as recorded above; only the read-back failed.
        if ($null -eq $entry.error) { $entry.after = $Item.wish }
    }
    $entry.changed = ($entry.after -ne $before)
    return $entry
}

function Invoke-VmIntegrationServiceSet {
    param ($Request)
    $result = @{ vms = @(); missing = @(); ambiguous = @{}; missing_services = @() }
    $resolved = Resolve-VmName -Names @($Request.params.vm_names)
    if ($resolved.missing.Count -or $resolved.ambiguous.Count) {
        $result.missing = @($resolved.missing)
        $result.ambiguous = $resolved.ambiguous
        return $result
    }

    # Read everything and validate before the first write.
    $plan = foreach ($vm in $resolved.vms) {
        $byGuid = @{}
        foreach ($ic in @(Hyper-V\Get-VMIntegrationService -VM $vm)) { $byGuid[(Get-IcGuid $ic)] = $ic }
        $items = foreach ($change in @($Request.params.changes)) {
            # A change with "vm" is for that VM only (names were matched ordinal case-insensitively above).
            if ($null -ne $change.vm -and -not [string]::Equals([string]$change.vm, [string]$vm.Name, [System.StringComparison]::OrdinalIgnoreCase)) { continue }
            $guid = ([string]$change.guid).ToUpperInvariant()
            if (-not $byGuid.ContainsKey($guid)) {
                $result.missing_services += @{ vm = $vm.Name; guid = $guid }
                continue
            }
            @{ ic = $byGuid[$guid]; guid = $guid; wish = [bool]$change.enabled }
        }
        @{ vm = $vm; name = $vm.Name; id = $vm.Id.ToString(); state = $vm.State.ToString(); items = @($items) }
    }
    if ($result.missing_services.Count) { return $result }

    # From here on only Set-OneIntegrationService touches the host, one item at a time.
    $result.vms = @(foreach ($entry in @($plan)) {
            @{
                name                 = $entry.name
                id                   = $entry.id
                state                = $entry.state
                integration_services = @(foreach ($item in $entry.items) {
                        Set-OneIntegrationService -Vm $entry.vm -Item $item -CheckMode ([bool]$Request.check_mode)
                    })
            }
        })
    return $result
}

$operations = @{
    vm_integration_service_info = ${function:Invoke-VmIntegrationServiceInfo}
    vm_integration_service_set  = ${function:Invoke-VmIntegrationServiceSet}
}

# --- Hyper-V socket service registrations (protocol doc section 8; hyperv-facts.md section 4) -------

$GuestCommunicationServices = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\GuestCommunicationServices'

function Get-HvSocketEntry {
    # GUID (upper, no braces) -> @{ key = subkey name as it is; name = ElementName or $null }.
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

function Invoke-HvSocketServiceInfo {
    param ($Request)
    $entries = Get-HvSocketEntry
    @{
        services = @(foreach ($guid in $entries.Keys) {
                @{ service_id = $guid; key = $entries[$guid].key; name = $entries[$guid].name }
            })
    }
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
    # Every GUID parses before the first write ([guid]::Parse throws FormatException otherwise).
    $items = @(foreach ($wish in @($Request.params.services)) {
            @{ guid = [guid]::Parse([string]$wish.service_id).ToString().ToUpperInvariant(); name = $wish.name; state = [string]$wish.state }
        })
    $entries = Get-HvSocketEntry
    @{ services = @(foreach ($item in $items) { Set-OneHvSocketEntry -Entries $entries -Item $item -CheckMode ([bool]$Request.check_mode) }) }
}

$operations['hvsocket_service_info'] = ${function:Invoke-HvSocketServiceInfo}
$operations['hvsocket_service_set'] = ${function:Invoke-HvSocketServiceSet}
