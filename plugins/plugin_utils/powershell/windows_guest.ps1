# Body of the Windows guest library (prelude: _prelude.ps1, dispatch: _dispatch.ps1): the guest half
# of the integration services, the vmic* services, addressed by service name, which is not localized;
# display names are (hyperv-facts.md section 2; protocol doc section 7).

function Get-ServiceState {
    # $null when the service does not exist.
    param ([string]$Name)
    $service = Get-Service -Name $Name -ErrorAction SilentlyContinue | Where-Object { $_.Name -eq $Name }
    if ($null -eq $service) { return $null }
    @{
        status       = $service.Status.ToString()
        start_mode   = $service.StartType.ToString()
        display_name = $service.DisplayName
    }
}

function Invoke-GuestServiceInfo {
    param ($Request)
    $system = Get-CimInstance -ClassName Win32_ComputerSystem
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
        computer = @{ manufacturer = [string]$system.Manufacturer; model = [string]$system.Model }
        services = @($services)
    }
}

function Set-OneGuestService {
    # Start mode first, then the state. Every failure is recorded on this item only.
    param ($Wish, [bool]$CheckMode)
    $name = [string]$Wish.name
    $before = Get-ServiceState -Name $name
    $entry = @{
        name    = $name
        before  = @{ status = $before.status; start_mode = $before.start_mode }
        after   = @{ status = $before.status; start_mode = $before.start_mode }
        changed = $false
        error   = $null
    }
    try {
        if ($Wish.start_mode -and $Wish.start_mode -ne $before.start_mode) {
            if (-not $CheckMode) { Set-Service -Name $name -StartupType $Wish.start_mode }
            $entry.after.start_mode = [string]$Wish.start_mode
            $entry.changed = $true
        }
        $state = [string]$Wish.state
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
    if (-not $CheckMode) {
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
    $missing = @(foreach ($wish in $wishes) {
            if ($null -eq (Get-ServiceState -Name ([string]$wish.name))) { [string]$wish.name }
        })
    if ($missing.Count) { return @{ missing = $missing; services = @() } }
    @{
        missing  = @()
        services = @(foreach ($wish in $wishes) { Set-OneGuestService -Wish $wish -CheckMode ([bool]$Request.check_mode) })
    }
}

$operations = @{
    guest_service_info = ${function:Invoke-GuestServiceInfo}
    guest_service_set  = ${function:Invoke-GuestServiceSet}
}
