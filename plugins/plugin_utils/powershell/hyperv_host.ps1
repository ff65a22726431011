# Body of the Hyper-V host library (prelude: _prelude.ps1, dispatch: _dispatch.ps1). ICs are selected
# by the GUID suffix of their Id, never by Name: the Name is localized (docs/dev/hyperv-facts.md section 1;
# HyperVDsc issues 73 and 76).

function ConvertTo-EnumName {
    # Enum values become their names on the host; ConvertTo-Json would write numbers.
    param ($Value)
    if ($null -eq $Value) { return $null }
    return $Value.ToString()
}

function Get-IcGuid {
    # Id is 'Microsoft:<VMID>\<IC GUID>' (docs/dev/hyperv-facts.md section 1).
    param ($IntegrationService)
    return ($IntegrationService.Id -split '\\')[-1].Trim('{', '}').ToUpperInvariant()
}

# Cmdlets are module-qualified (Hyper-V\...): with VMware PowerCLI installed, a bare Get-VM resolves to
# PowerCLI's (hashicorp/vagrant#8862, hashicorp/packer#5337).

function Resolve-VmName {
    # Exact, ordinal case-insensitive match; Get-VM -Name would treat [ ] * ? as wildcards. A VM named
    # twice in the request (in two spellings) is returned once, for the first spelling: requested maps
    # each VM's Id to the name that selected it (empty when every VM is listed), and repeated lists each
    # such VM with the names that selected it. A VM that Get-VM cannot
    # read is a non-terminating error: it is answered in list_errors, and the other VMs are still listed.
    param ([object[]]$Names)
    $listErrors = $null
    $allVms = @(Hyper-V\Get-VM -ErrorAction SilentlyContinue -ErrorVariable listErrors)
    $errors = @(foreach ($record in @($listErrors)) { Get-ErrorRecordData -ErrorRecord $record -VmName $null -Service $null })
    $found = New-Object -TypeName 'System.Collections.Generic.List[object]'
    $missing = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $ambiguous = @{}
    $requested = @{}
    $repeated = New-Object -TypeName 'System.Collections.Generic.List[object]'
    $repeatedById = @{}
    if ($null -eq $Names) {
        foreach ($vm in $allVms) { $found.Add($vm) }
        return @{ vms = $found; missing = $missing; ambiguous = $ambiguous; errors = $errors; requested = $requested; repeated = $repeated }
    }
    $byName = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,System.Collections.Generic.List[object]]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
    foreach ($vm in $allVms) {
        if (-not $byName.ContainsKey($vm.Name)) {
            $byName[$vm.Name] = New-Object -TypeName 'System.Collections.Generic.List[object]'
        }
        $byName[$vm.Name].Add($vm)
    }
    foreach ($name in $Names) {
        $name = [string]$name
        if (-not $byName.ContainsKey($name)) { $missing.Add($name) }
        elseif ($byName[$name].Count -gt 1) { $ambiguous[$name] = @($byName[$name] | ForEach-Object { $_.Id.ToString() }) }
        elseif (-not $requested.ContainsKey($byName[$name][0].Id.ToString())) {
            $requested[$byName[$name][0].Id.ToString()] = $name
            $found.Add($byName[$name][0])
        }
        else {
            # One entry per VM, with every name that selected it, in request order.
            $id = $byName[$name][0].Id.ToString()
            if (-not $repeatedById.ContainsKey($id)) {
                # Not $names: PowerShell variable names ignore case, and $Names is the parameter.
                $spellings = New-Object -TypeName 'System.Collections.Generic.List[string]'
                $spellings.Add($requested[$id])
                $repeatedById[$id] = @{ vm = [string]$byName[$name][0].Name; names = $spellings }
                $repeated.Add($repeatedById[$id])
            }
            $repeatedById[$id].names.Add($name)
        }
    }
    return @{ vms = $found; missing = $missing; ambiguous = $ambiguous; errors = $errors; requested = $requested; repeated = $repeated }
}

function Get-VmIntegrationStatus {
    # One VM's answer; an error reading it (deleted or inaccessible since Get-VM) is answered on that
    # VM, and the other VMs are still read. RequestedName: the name that selected it ($null: every VM).
    param ($Vm, $RequestedName)
    try {
        return Get-VmIntegrationDetail -Vm $Vm -RequestedName $RequestedName
    }
    catch {
        return @{
            name                         = [string]$Vm.Name
            requested_name               = $RequestedName
            id                           = $Vm.Id.ToString()
            state                        = $null
            heartbeat                    = $null
            integration_services_version = $null
            integration_services_state   = $null
            integration_services         = @()
            error                        = Get-ErrorRecordData -ErrorRecord $_ -VmName ([string]$Vm.Name) -Service $null
        }
    }
}

function Get-VmIntegrationDetail {
    param ($Vm, $RequestedName)
    $services = foreach ($ic in @(Hyper-V\Get-VMIntegrationService -VM $Vm)) {
        @{
            id               = $ic.Id
            guid             = Get-IcGuid $ic
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
        requested_name               = $RequestedName
        id                           = $Vm.Id.ToString()
        state                        = $Vm.State.ToString()
        heartbeat                    = ConvertTo-EnumName $Vm.Heartbeat  # $null when Off
        integration_services_version = $version
        # Text as the host gives it (it may be in the host's language).
        integration_services_state   = if ($Vm.IntegrationServicesState) { [string]$Vm.IntegrationServicesState } else { $null }
        integration_services         = @($services)
        error                        = $null
    }
}

function Invoke-VmIntegrationServiceInfo {
    param ($Request)
    $resolved = Resolve-VmName -Names $Request.params.vm_names
    @{
        vms            = @(foreach ($vm in $resolved.vms) { Get-VmIntegrationStatus -Vm $vm -RequestedName $resolved.requested[$vm.Id.ToString()] })
        missing        = @($resolved.missing)
        ambiguous      = $resolved.ambiguous
        vm_list_errors = $resolved.errors
    }
}

function Set-OneIntegrationService {
    # One VM/IC: write when it differs, read it back. This runs after earlier items' writes, so every
    # statement that can throw is inside a try whose catch records the error on this item: nothing
    # after the first write may end the call as a whole-call error that would claim nothing was written.
    param ($Vm, [string]$VmName, $Item, [bool]$CheckMode)
    $entry = @{ guid = $Item.guid; name = $null; before = $null; after = $null; changed = $false; error = $null; primary_status = $null }
    try {
        $entry.name = [string]$Item.ic.Name
        $entry.before = [bool]$Item.ic.Enabled
        $entry.after = $entry.before
        if ($entry.before -eq $Item.wish) {
            # Unchanged, so the status read with it is current (it lets a wait end without another read).
            $entry.primary_status = ConvertTo-EnumName $Item.ic.PrimaryOperationalStatus
            return $entry
        }
        if ($CheckMode) {
            $entry.after = $Item.wish
            $entry.changed = $true
            return $entry
        }
        if ($Item.wish) { Hyper-V\Enable-VMIntegrationService -VMIntegrationService $Item.ic }
        else { Hyper-V\Disable-VMIntegrationService -VMIntegrationService $Item.ic }
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $VmName -Service $Item.guid
        if ($null -eq $entry.before) { return $entry }  # failed before anything was read or written
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
    $entry.changed = ($entry.after -ne $entry.before)
    return $entry
}

function Invoke-VmIntegrationServiceSet {
    param ($Request)
    $result = @{ vms = @(); missing = @(); ambiguous = @{}; named_twice = @(); missing_services = @(); vm_list_errors = @() }
    $resolved = Resolve-VmName -Names @($Request.params.vm_names)
    $result.vm_list_errors = $resolved.errors
    if ($resolved.missing.Count -or $resolved.ambiguous.Count) {
        $result.missing = @($resolved.missing)
        $result.ambiguous = $resolved.ambiguous
        return $result
    }
    # Changes for one VM only (vm set) under two names of one VM could disagree: write nothing.
    $perVm = @(foreach ($change in @($Request.params.changes)) { if ($null -ne (Get-RequestValue -Object $change -Name 'vm')) { $change } })
    if ($resolved.repeated.Count -and $perVm.Count) {
        $result.named_twice = @($resolved.repeated)
        return $result
    }

    # Read everything and validate before the first write. A VM whose integration services cannot be
    # read gets its error and no change; the other VMs go on.
    $checkMode = [bool]$Request.check_mode
    $plan = @(foreach ($vm in $resolved.vms) {
            $name = [string]$vm.Name
            try {
                $byGuid = @{}
                foreach ($ic in @(Hyper-V\Get-VMIntegrationService -VM $vm)) { $byGuid[(Get-IcGuid $ic)] = $ic }
                $state = $vm.State.ToString()
                $readError = $null
            }
            catch {
                $readError = Get-ErrorRecordData -ErrorRecord $_ -VmName $name -Service $null
            }
            $items = @(foreach ($change in @($Request.params.changes)) {
                    if ($null -ne $readError) { break }
                    # A change with a vm is for that VM only (names matched ordinal case-insensitively above).
                    $only = Get-RequestValue -Object $change -Name 'vm'
                    if ($null -ne $only -and -not [string]::Equals([string]$only, $name, [System.StringComparison]::OrdinalIgnoreCase)) { continue }
                    $guid = ([string]$change.guid).ToUpperInvariant()
                    if (-not $byGuid.ContainsKey($guid)) {
                        $result.missing_services += @{ vm = $name; guid = $guid }
                        continue
                    }
                    @{ ic = $byGuid[$guid]; guid = $guid; wish = [bool]$change.enabled }
                })
            $requestedName = $resolved.requested[$vm.Id.ToString()]
            if ($null -ne $readError) {
                @{ vm = $vm; name = $name; requested_name = $requestedName; id = $vm.Id.ToString(); state = $null; items = @(); error = $readError }
            }
            else {
                @{ vm = $vm; name = $name; requested_name = $requestedName; id = $vm.Id.ToString(); state = $state; items = $items; error = $null }
            }
        })
    if ($result.missing_services.Count) { return $result }

    # From here on only Set-OneIntegrationService touches the host, one item at a time, and catches
    # everything itself: nothing after the first write may end the call (protocol doc section 4).
    $result.vms = @(foreach ($entry in $plan) {
            @{
                name                 = $entry.name
                requested_name       = $entry.requested_name
                id                   = $entry.id
                state                = $entry.state
                error                = $entry.error
                integration_services = @(foreach ($item in $entry.items) {
                        Set-OneIntegrationService -Vm $entry.vm -VmName $entry.name -Item $item -CheckMode $checkMode
                    })
            }
        })
    return $result
}

$operations = @{
    vm_integration_service_info = ${function:Invoke-VmIntegrationServiceInfo}
    vm_integration_service_set  = ${function:Invoke-VmIntegrationServiceSet}
}

# --- Hyper-V socket service registrations (protocol doc section 8; docs/dev/hyperv-facts.md section 4) ---

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
        # Read back after the write: inside a try, since nothing after a write may end the call.
        try {
            $now = (Get-HvSocketEntry)[$guid]
            $entry.after = @{ present = ($null -ne $now); name = if ($now) { $now.name } else { $null } }
        }
        catch {
            Write-Verbose -Message "read-back of $guid failed; keeping the state recorded above"
        }
    }
    $entry.changed = ($entry.after.present -ne $before.present) -or ($entry.after.name -cne $before.name)
    return $entry
}

function Invoke-HvSocketServiceSet {
    param ($Request)
    # Every GUID parses before the first write ([guid]::Parse throws, wrapped by PowerShell in a
    # MethodInvocationException, and the call answers ok: false with nothing written).
    $items = @(foreach ($wish in @($Request.params.services)) {
            @{ guid = [guid]::Parse([string]$wish.service_id).ToString().ToUpperInvariant(); name = $wish.name; state = [string]$wish.state }
        })
    $entries = Get-HvSocketEntry
    $checkMode = [bool]$Request.check_mode  # read before the first write, like everything from the request
    @{ services = @(foreach ($item in $items) { Set-OneHvSocketEntry -Entries $entries -Item $item -CheckMode $checkMode }) }
}

$operations['hvsocket_service_info'] = ${function:Invoke-HvSocketServiceInfo}
$operations['hvsocket_service_set'] = ${function:Invoke-HvSocketServiceSet}
