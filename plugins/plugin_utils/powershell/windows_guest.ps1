# Body of the Windows guest library (prelude: _prelude.ps1, dispatch: _dispatch.ps1): the guest half
# of the integration services, the vmic* services, addressed by service name, which is not localized;
# display names are (hyperv-facts.md section 2; protocol doc section 7).

function Get-ServiceState {
    # $null when the service does not exist. All services are listed and matched by exact name, so a
    # name is never read as a wildcard pattern.
    param ([string]$Name)
    $service = Get-Service | Where-Object { $_.Name -eq $Name } | Select-Object -First 1
    if ($null -eq $service) { return $null }
    if ($service.PSObject.Properties['StartType']) {
        $mode = $service.StartType.ToString()
    }
    else {
        # ServiceController.StartType needs .NET 4.6.1; older hosts of WMF 5.1 ask WMI (Auto -> Automatic).
        $wmi = Get-CimInstance -ClassName Win32_Service | Where-Object { $_.Name -eq $Name } | Select-Object -First 1
        $mode = if ($wmi.StartMode -eq 'Auto') { 'Automatic' } else { [string]$wmi.StartMode }
    }
    @{
        status       = $service.Status.ToString()
        start_mode   = $mode
        display_name = $service.DisplayName
    }
}

function Get-ComputerIdentity {
    # A Hyper-V VM reports Microsoft Corporation / Virtual Machine.
    $system = Get-CimInstance -ClassName Win32_ComputerSystem
    @{ manufacturer = [string]$system.Manufacturer; model = [string]$system.Model }
}

function Invoke-GuestServiceInfo {
    param ($Request)
    $services = foreach ($name in @($Request.params.names)) {
        $state = Get-ServiceState -Name ([string]$name)
        if ($null -eq $state) {
            @{ name = [string]$name; exists = $false; display_name = $null; status = $null; start_mode = $null }
        }
        else {
            @{ name = [string]$name; exists = $true; display_name = $state.display_name; status = $state.status; start_mode = $state.start_mode }
        }
    }
    @{
        computer = Get-ComputerIdentity
        services = @($services)
    }
}

function Set-OneGuestService {
    # Start mode first, then the state. Every failure is recorded on this item only.
    param ($Wish, [bool]$CheckMode)
    $name = [string]$Wish.name
    $entry = @{ name = $name; before = $null; after = $null; changed = $false; error = $null }
    try {
        $before = Get-ServiceState -Name $name
        if ($null -eq $before) { throw [System.InvalidOperationException]::new("service '$name' no longer exists") }
        $entry.before = @{ status = $before.status; start_mode = $before.start_mode }
        $entry.after = @{ status = $before.status; start_mode = $before.start_mode }
        $mode = if ($Wish.start_mode) { [string]$Wish.start_mode } else { $before.start_mode }
        $state = [string]$Wish.state
        if ($mode -eq 'Disabled' -and ($state -eq 'restarted' -or ($state -eq 'started' -and $before.status -ne 'Running'))) {
            # Windows refuses to start a disabled service: say so in check mode too.
            throw [System.InvalidOperationException]::new("service '$name' is disabled and cannot be started; set start_mode as well")
        }
        if ($Wish.start_mode -and $Wish.start_mode -ne $before.start_mode) {
            if (-not $CheckMode) { Set-Service -Name $name -StartupType $Wish.start_mode }
            $entry.after.start_mode = [string]$Wish.start_mode
            $entry.changed = $true
        }
        if ($state -eq 'started' -and $before.status -ne 'Running') {
            if (-not $CheckMode) { Start-Service -Name $name }
            $entry.after.status = 'Running'
            $entry.changed = $true
        }
        elseif ($state -eq 'stopped' -and $before.status -ne 'Stopped') {
            if (-not $CheckMode) { Stop-Service -Name $name -Force }
            $entry.after.status = 'Stopped'
            $entry.changed = $true
        }
        elseif ($state -eq 'restarted') {
            if (-not $CheckMode) { Restart-Service -Name $name -Force }
            $entry.after.status = 'Running'
            $entry.changed = $true
        }
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $name
    }
    if (-not $CheckMode -and $null -ne $entry.before) {
        try {
            $now = Get-ServiceState -Name $name
            $entry.after = @{ status = $now.status; start_mode = $now.start_mode }
        }
        catch {
            Write-Verbose -Message "read-back of $name failed; keeping the state recorded above"
        }
        $entry.changed = ($entry.after.status -ne $entry.before.status) -or
            ($entry.after.start_mode -ne $entry.before.start_mode) -or
            ([string]$Wish.state -eq 'restarted' -and $null -eq $entry.error)
    }
    return $entry
}

function Invoke-GuestServiceSet {
    param ($Request)
    $wishes = @($Request.params.services)
    $computer = Get-ComputerIdentity
    if ($computer.manufacturer -ne 'Microsoft Corporation' -or $computer.model -ne 'Virtual Machine') {
        # Not a Hyper-V guest (e.g. a task delegated to the host): its vmic* services are not ours to change.
        return @{ not_a_guest = $true; computer = $computer; missing = @(); services = @() }
    }
    $missing = @(foreach ($wish in $wishes) {
            if ($null -eq (Get-ServiceState -Name ([string]$wish.name))) { [string]$wish.name }
        })
    if ($missing.Count) { return @{ not_a_guest = $false; computer = $computer; missing = $missing; services = @() } }
    @{
        not_a_guest = $false
        computer = $computer
        missing  = @()
        services = @(foreach ($wish in $wishes) { Set-OneGuestService -Wish $wish -CheckMode ([bool]$Request.check_mode) })
    }
}

$operations = @{
    guest_service_info = ${function:Invoke-GuestServiceInfo}
    guest_service_set  = ${function:Invoke-GuestServiceSet}
}
