# Stand-ins for the Windows cmdlets the libraries call besides Hyper-V's: services and Win32_* (Windows
# guest library), the registry (VMICTimeProvider on a guest, GuestCommunicationServices on the host).
# ContractRunner.ps1 dot-sources this file inside the function that runs the library, so these functions
# shadow the real cmdlets for that call only (functions win over cmdlets) and never for Pester itself.
# They run under the library's Set-StrictMode -Version 3.0 and $ErrorActionPreference = 'Stop', and
# refuse any path or class they do not model. State: Hyper-V\Get-StubLab (StubLab.ps1).

$StubGcsKey = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\GuestCommunicationServices'
$StubTimeProviderKey = 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time\TimeProviders\VMICTimeProvider'

function Get-StubGuestVm {
    $vm = (Hyper-V\Get-StubLab).GuestVm
    if ($null -eq $vm) { throw 'stub: a guest cmdlet was called on the Hyper-V host endpoint' }
    return $vm
}

function Add-StubWrite {
    $lab = Hyper-V\Get-StubLab
    $lab.Writes = $lab.Writes + 1
}

function Get-StubServiceModel {
    # The guest's service of that name (case-insensitive, as Windows), W32Time included; $null if none.
    param ([string]$Name)
    $vm = Get-StubGuestVm
    if ($Name -eq 'W32Time') {
        $time = $vm.TimeProvider
        return @{ Name = 'W32Time'; DisplayName = 'Windows Time'; Status = $time.W32TimeStatus; StartMode = 'Manual'; HasRun = $true; Time = $time }
    }
    foreach ($key in @($vm.Services.Keys)) {
        if ($key -eq $Name) { return $vm.Services[$key] }
    }
    return $null
}

function ConvertTo-StubService {
    param ($Model)
    [pscustomobject]@{ Name = $Model.Name; ServiceName = $Model.Name; DisplayName = $Model.DisplayName; Status = $Model.Status; StartType = $Model.StartMode }
}

function Get-Service {
    [CmdletBinding()]
    param ([Parameter(Position = 0)] [string[]]$Name)
    if ($null -eq $Name) {
        $vm = Get-StubGuestVm
        foreach ($key in @($vm.Services.Keys)) { ConvertTo-StubService $vm.Services[$key] }
        ConvertTo-StubService (Get-StubServiceModel 'W32Time')
        return
    }
    foreach ($one in $Name) {
        if ([System.Management.Automation.WildcardPattern]::ContainsWildcardCharacters($one)) {
            throw "stub Get-Service: wildcard name '$one'"
        }
        $model = Get-StubServiceModel $one
        if ($null -ne $model) { ConvertTo-StubService $model; continue }
        $exception = New-Object -TypeName System.InvalidOperationException -ArgumentList "Cannot find any service with service name '$one'."
        $PSCmdlet.WriteError((Hyper-V\New-StubErrorRecord -Exception $exception -ErrorId 'NoServiceFoundForGivenName' -Category ObjectNotFound -Target $one))
    }
}

function Get-CimInstance {
    [CmdletBinding()]
    param ([Parameter(Position = 0)] [string]$ClassName)
    if ($ClassName -eq 'Win32_ComputerSystem') {
        return [pscustomobject]@{ Manufacturer = 'Microsoft Corporation'; Model = 'Virtual Machine' }
    }
    if ($ClassName -eq 'Win32_Service') {
        $vm = Get-StubGuestVm
        foreach ($key in @($vm.Services.Keys)) {
            $model = $vm.Services[$key]
            $mode = if ($model.StartMode -eq 'Automatic') { 'Auto' } else { $model.StartMode }
            [pscustomobject]@{ Name = $model.Name; State = $model.Status; StartMode = $mode }
        }
        return
    }
    throw "stub Get-CimInstance: class '$ClassName' is not modelled"
}

# Key-Value Pair Exchange on the host (hyperv_host.ps1 vm_kvp_*, root/virtualization/v2) is not modelled
# yet: ContractRunner.ps1 skips those cases, and these refuse, so a call never reaches the real cmdlets.
function Get-CimAssociatedInstance {
    [CmdletBinding()]
    param ([Parameter(Position = 0)] $InputObject, [Parameter(Position = 1)] [string]$Association, [string]$ResultClassName, [string]$Namespace)
    throw "stub Get-CimAssociatedInstance: '$ResultClassName' is not modelled"
}

function Invoke-CimMethod {
    [CmdletBinding()]
    param ($InputObject, [string]$MethodName, $Arguments)
    throw "stub Invoke-CimMethod: '$MethodName' is not modelled"
}

function Start-Sleep {
    [CmdletBinding()]
    param ([int]$Milliseconds, [int]$Seconds)
    throw 'stub Start-Sleep: no job is modelled, so nothing waits'
}

function Get-StubExistingService {
    param ([string]$Name)
    $model = Get-StubServiceModel $Name
    if ($null -eq $model) { throw "stub: service '$Name' does not exist" }
    return $model
}

function Set-StubServiceStatus {
    # Start (or the start half of a restart): Windows refuses a Disabled service (ServiceCommandException).
    param ($Model, [string]$Status, $Cmdlet)
    if ($Status -eq 'Running' -and $Model.StartMode -eq 'Disabled') {
        $message = "Service '$($Model.DisplayName) ($($Model.Name))' cannot be started due to the following error: " +
            "Cannot start service $($Model.Name) on computer '.'."
        $exception = New-Object -TypeName Microsoft.PowerShell.Commands.ServiceCommandException -ArgumentList $message
        $Cmdlet.ThrowTerminatingError((Hyper-V\New-StubErrorRecord -Exception $exception -ErrorId 'CouldNotStartService' -Category OpenError -Target $Model.Name))
    }
    if ($Model.Name -eq 'W32Time') { $Model.Time.W32TimeStatus = $Status }
    else {
        $Model.Status = $Status
        if ($Status -eq 'Running') { $Model.HasRun = $true }
    }
}

function Set-Service {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$Name, [string]$StartupType)
    $model = Get-StubExistingService $Name
    if (-not $StartupType) { throw 'stub Set-Service: only -StartupType is modelled' }
    if ($model.StartMode -ne $StartupType) {
        $model.StartMode = $StartupType
        Add-StubWrite
    }
}

function Set-StubServiceRunState {
    # Start-Service and Stop-Service: the service to $Status unless it is there already (then one write).
    param ([string]$Name, [string]$Status, $Cmdlet)
    $model = Get-StubExistingService $Name
    if ($model.Status -ne $Status) {
        Set-StubServiceStatus -Model $model -Status $Status -Cmdlet $Cmdlet
        Add-StubWrite
    }
}

function Start-Service {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$Name)
    Set-StubServiceRunState -Name $Name -Status 'Running' -Cmdlet $PSCmdlet
}

function Stop-Service {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$Name, [switch]$Force)
    Set-StubServiceRunState -Name $Name -Status 'Stopped' -Cmdlet $PSCmdlet
}

function Restart-Service {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$Name, [switch]$Force)
    $model = Get-StubExistingService $Name
    Add-StubWrite  # one write per restart, as the lab counts it
    Set-StubServiceStatus -Model $model -Status 'Stopped' -Cmdlet $PSCmdlet
    Set-StubServiceStatus -Model $model -Status 'Running' -Cmdlet $PSCmdlet
    if ($model.Name -eq 'W32Time') { $model.Time.Restarts = $model.Time.Restarts + 1 }
}

# -- registry --------------------------------------------------------------------------------------------
function Get-StubSubkey {
    # 'GCS\<name>' -> '<name>'; anything else is not modelled.
    param ([string]$Path)
    if ($Path.StartsWith($StubGcsKey + '\', [System.StringComparison]::OrdinalIgnoreCase)) { return $Path.Substring($StubGcsKey.Length + 1) }
    throw "stub: registry path '$Path' is not modelled"
}

function Find-StubSubkey {
    param ([string]$Subkey)
    foreach ($entry in (Hyper-V\Get-StubLab).Registry) {
        if ([string]::Equals($entry.Key, $Subkey, [System.StringComparison]::OrdinalIgnoreCase)) { return $entry }
    }
    return $null
}

function Assert-StubRegistryWrite {
    # Fault registry_error: the write of that service's subkey is denied (tests/lab/README.md, Faults).
    param ([string]$Subkey, $Cmdlet)
    $guid = Hyper-V\Get-StubGuid $Subkey
    if ($null -eq $guid) { return }
    $fault = Hyper-V\Use-StubFault -Type 'registry_error' -ServiceId $guid
    if ($null -eq $fault) { return }
    $default = "Access to the registry key 'HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\GuestCommunicationServices\$Subkey' is denied."
    $exception = New-Object -TypeName System.UnauthorizedAccessException -ArgumentList ([string](Hyper-V\Get-StubMember $fault 'message' $default))
    $Cmdlet.ThrowTerminatingError((Hyper-V\New-StubErrorRecord -Exception $exception -ErrorId 'System.UnauthorizedAccessException' -Category PermissionDenied -Target $Subkey))
}

function Join-Path {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$Path, [Parameter(Mandatory = $true)] [string]$ChildPath)
    return $Path.TrimEnd('\') + '\' + $ChildPath
}

function Test-Path {
    [CmdletBinding()]
    param ([string]$LiteralPath, [string]$PathType)
    if ($LiteralPath -eq $StubGcsKey) { return $true }
    if ($LiteralPath -eq $StubTimeProviderKey) {
        $time = (Get-StubGuestVm).TimeProvider
        return [bool]$time.Present
    }
    throw "stub Test-Path: '$LiteralPath' is not modelled"
}

function Get-Item {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$LiteralPath)
    if ($LiteralPath -ne $StubTimeProviderKey) { throw "stub Get-Item: '$LiteralPath' is not modelled" }
    $time = (Get-StubGuestVm).TimeProvider
    $key = [pscustomobject]@{ PSChildName = 'VMICTimeProvider'; Time = $time }
    $key | Add-Member -MemberType ScriptMethod -Name GetValue -Value {
        param ([string]$Name, $Default)
        if ($Name -eq 'Enabled' -and $null -ne $this.Time.Kind) { return $this.Time.Enabled }
        return $Default
    }
    $key | Add-Member -MemberType ScriptMethod -Name GetValueKind -Value {
        param ([string]$Name)
        if ($Name -ne 'Enabled' -or $null -eq $this.Time.Kind) { throw "stub: no registry value '$Name'" }
        return $this.Time.Kind
    }
    $key | Add-Member -MemberType ScriptMethod -Name Close -Value { return }
    return $key
}

function New-ItemProperty {
    [CmdletBinding()]
    param ([string]$LiteralPath, [string]$Name, $Value, [string]$PropertyType, [switch]$Force)
    if ($LiteralPath -ne $StubTimeProviderKey -or $Name -ne 'Enabled' -or $PropertyType -ne 'DWord') {
        throw "stub New-ItemProperty: '$LiteralPath' $Name ($PropertyType) is not modelled"
    }
    $time = (Get-StubGuestVm).TimeProvider
    $time.Enabled = [int]$Value
    $time.Kind = 'DWord'
    Add-StubWrite
    return [pscustomobject]@{ Enabled = $time.Enabled }
}

function Get-ChildItem {
    [CmdletBinding()]
    param ([string]$LiteralPath)
    if ($LiteralPath -ne $StubGcsKey) { throw "stub Get-ChildItem: '$LiteralPath' is not modelled" }
    foreach ($entry in (Hyper-V\Get-StubRegistryOrder)) {
        $key = [pscustomobject]@{ PSChildName = $entry.Key; ElementName = $entry.Name }
        $key | Add-Member -MemberType ScriptMethod -Name GetValue -Value {
            param ([string]$Name, $Default)
            if ($Name -eq 'ElementName' -and $null -ne $this.ElementName) { return $this.ElementName }
            return $Default
        }
        $key
    }
}

function New-Item {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$Path, [switch]$Force)
    $subkey = Get-StubSubkey $Path
    if ($null -ne (Find-StubSubkey $subkey)) { return [pscustomobject]@{ PSChildName = $subkey } }
    Assert-StubRegistryWrite -Subkey $subkey -Cmdlet $PSCmdlet
    (Hyper-V\Get-StubLab).Registry.Add(@{ Key = $subkey; Name = $null })
    $null = (Hyper-V\Get-StubLab).Created.Add($subkey)
    Add-StubWrite
    return [pscustomobject]@{ PSChildName = $subkey }
}

function Set-ItemProperty {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$LiteralPath, [string]$Name, $Value, [string]$Type)
    $entry = Find-StubSubkey (Get-StubSubkey $LiteralPath)
    if ($null -eq $entry -or $Name -ne 'ElementName' -or $Type -ne 'String') { throw "stub Set-ItemProperty: '$LiteralPath' $Name is not modelled" }
    if ($entry.Name -ceq [string]$Value) { return }
    $created = (Hyper-V\Get-StubLab).Created.Contains($entry.Key)
    if (-not $created) { Assert-StubRegistryWrite -Subkey $entry.Key -Cmdlet $PSCmdlet }
    $entry.Name = [string]$Value
    if (-not $created) { Add-StubWrite }  # creating a subkey with its ElementName counts one write
}

function Remove-Item {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] [string]$LiteralPath, [switch]$Recurse)
    $entry = Find-StubSubkey (Get-StubSubkey $LiteralPath)
    if ($null -eq $entry) { throw "stub Remove-Item: '$LiteralPath' does not exist" }
    Assert-StubRegistryWrite -Subkey $entry.Key -Cmdlet $PSCmdlet
    $null = (Hyper-V\Get-StubLab).Registry.Remove($entry)
    Add-StubWrite
}
