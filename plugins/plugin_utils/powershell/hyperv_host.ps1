#Requires -Version 5.1
# HYPERV_INTEGRATION_LIBRARY protocol=1
# hyperv.integration host library. It runs on the Hyper-V host, reads one request (JSON data, never
# code), does one operation and writes the answer as base64 JSON between markers. See
# docs/dev/powershell-protocol.md. ICs are selected by the GUID suffix of their Id, never by Name: the
# Name is localized (hyperv-facts.md section 1; HyperVDsc issues 73 and 76).
[CmdletBinding()]
param (
    [Parameter(Mandatory = $true)]
    [string]
    $RequestJson
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

function ConvertTo-EnumName {
    # Enum values become their names on the host; ConvertTo-Json would write numbers.
    param ($Value)
    if ($null -eq $Value) { return $null }
    return $Value.ToString()
}

function Get-ErrorRecordData {
    param ($ErrorRecord, [string]$VmName, [string]$Guid)
    @{
        type    = $ErrorRecord.Exception.GetType().FullName
        message = $ErrorRecord.Exception.Message
        # Category is not localized, unlike the message: the controller decides on it.
        category = $ErrorRecord.CategoryInfo.Category.ToString()
        vm      = $VmName
        service = $Guid
    }
}

function Get-IcGuid {
    # Id is 'Microsoft:<VMID>\<IC GUID>' (hyperv-facts.md section 1).
    param ($IntegrationService)
    return ($IntegrationService.Id -split '\\')[-1].Trim('{', '}').ToUpperInvariant()
}

function Resolve-VmName {
    # Exact, ordinal case-insensitive match; Get-VM -Name would treat [ ] * ? as wildcards.
    param ([object[]]$Names)
    $byName = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,System.Collections.Generic.List[object]]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
    foreach ($vm in @(Get-VM)) {
        if (-not $byName.ContainsKey($vm.Name)) {
            $byName[$vm.Name] = New-Object -TypeName 'System.Collections.Generic.List[object]'
        }
        $byName[$vm.Name].Add($vm)
    }
    $found = New-Object -TypeName 'System.Collections.Generic.List[object]'
    $missing = New-Object -TypeName 'System.Collections.Generic.List[string]'
    $ambiguous = @{}
    if ($null -eq $Names) {
        foreach ($list in $byName.Values) { foreach ($vm in $list) { $found.Add($vm) } }
    }
    else {
        foreach ($name in $Names) {
            $name = [string]$name
            if (-not $byName.ContainsKey($name)) { $missing.Add($name) }
            elseif ($byName[$name].Count -gt 1) { $ambiguous[$name] = @($byName[$name] | ForEach-Object { $_.Id.ToString() }) }
            else { $found.Add($byName[$name][0]) }
        }
    }
    return @{ vms = $found; missing = $missing; ambiguous = $ambiguous }
}

function Get-VmIntegrationStatus {
    param ($Vm)
    $services = foreach ($ic in @(Get-VMIntegrationService -VM $Vm)) {
        @{
            id               = $ic.Id
            name             = $ic.Name
            enabled          = [bool]$ic.Enabled
            primary_status   = ConvertTo-EnumName $ic.PrimaryOperationalStatus
            secondary_status = ConvertTo-EnumName $ic.SecondaryOperationalStatus
        }
    }
    @{
        name                         = $Vm.Name
        id                           = $Vm.Id.ToString()
        state                        = $Vm.State.ToString()
        heartbeat                    = ConvertTo-EnumName $Vm.Heartbeat  # $null when Off
        integration_services_version = if ($Vm.IntegrationServicesVersion) { $Vm.IntegrationServicesVersion.ToString() } else { $null }
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
        foreach ($ic in @(Get-VMIntegrationService -VM $vm)) { $byGuid[(Get-IcGuid $ic)] = $ic }
        $items = foreach ($change in @($Request.params.changes)) {
            $guid = ([string]$change.guid).ToUpperInvariant()
            if (-not $byGuid.ContainsKey($guid)) {
                $result.missing_services += @{ vm = $vm.Name; guid = $guid }
                continue
            }
            @{ ic = $byGuid[$guid]; guid = $guid; wish = [bool]$change.enabled }
        }
        @{ vm = $vm; items = @($items) }
    }
    if ($result.missing_services.Count) { return $result }

    $result.vms = @(foreach ($entry in @($plan)) {
            $services = foreach ($item in $entry.items) {
                $before = [bool]$item.ic.Enabled
                $after = $before
                $errorData = $null
                if ($before -ne $item.wish) {
                    if ($Request.check_mode) {
                        $after = $item.wish
                    }
                    else {
                        try {
                            if ($item.wish) { Enable-VMIntegrationService -VMIntegrationService $item.ic }
                            else { Disable-VMIntegrationService -VMIntegrationService $item.ic }
                        }
                        catch {
                            $errorData = Get-ErrorRecordData -ErrorRecord $_ -VmName $entry.vm.Name -Guid $item.guid
                        }
                        $fresh = @(Get-VMIntegrationService -VM $entry.vm | Where-Object { (Get-IcGuid $_) -eq $item.guid })
                        $after = [bool]$fresh[0].Enabled
                    }
                }
                @{
                    guid    = $item.guid
                    name    = $item.ic.Name
                    before  = $before
                    after   = $after
                    changed = ($before -ne $after)
                    error   = $errorData
                }
            }
            @{
                name                 = $entry.vm.Name
                id                   = $entry.vm.Id.ToString()
                state                = $entry.vm.State.ToString()
                integration_services = @($services)
            }
        })
    return $result
}

$operations = @{
    vm_integration_service_info = ${function:Invoke-VmIntegrationServiceInfo}
    vm_integration_service_set  = ${function:Invoke-VmIntegrationServiceSet}
}

$request = ConvertFrom-Json -InputObject $RequestJson
$response = @{ protocol = 1; operation = $request.operation; ok = $true; result = $null; error = $null }
try {
    if (-not $operations.ContainsKey([string]$request.operation)) {
        throw [System.ArgumentException]::new("unknown operation '$($request.operation)'")
    }
    $response.result = & $operations[[string]$request.operation] -Request $request
}
catch {
    $response.ok = $false
    $response.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Guid $null
}

$json = ConvertTo-Json -InputObject $response -Depth 10 -Compress
$encoded = [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($json))
Write-Output -InputObject "HYPERV_INTEGRATION_BEGIN_$($request.nonce)"
Write-Output -InputObject $encoded
Write-Output -InputObject "HYPERV_INTEGRATION_END_$($request.nonce)"
