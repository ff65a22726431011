# Body of the Windows guest library (prelude: _prelude.ps1, dispatch: _dispatch.ps1): the guest half
# of the integration services, the vmic* services, addressed by service name, which is not localized;
# display names are (docs/dev/hyperv-facts.md section 2; protocol doc section 7).

function Get-ServiceState {
    # $null when the service does not exist. Only the named service is queried: Get-Service with no
    # name lists every service, and PowerShell 6.0 to 7.5 run without elevation write an error for each
    # one they cannot query, which $ErrorActionPreference = 'Stop' would turn into a failed call
    # (docs/dev/powershell-facts.md). A name with wildcard characters is refused, so -Name is exact.
    param ([string]$Name)
    if ([System.Management.Automation.WildcardPattern]::ContainsWildcardCharacters($Name)) {
        throw [System.ArgumentException]::new("service name '$Name' contains wildcard characters")
    }
    $lookupErrors = $null
    # Get-Service -Name also matches a display name (ServiceController tries the name as a display name
    # first): keep only the service whose service name it is.
    $found = @(Get-Service -Name $Name -ErrorAction SilentlyContinue -ErrorVariable lookupErrors | Where-Object { $_.ServiceName -eq $Name })
    foreach ($record in @($lookupErrors)) {
        # Not found is an answer ($null); Windows PowerShell 5.1 also says not found for a service the
        # account may not open. PowerShell 6.0 to 7.5 write CouldNotGetServiceInfo when they cannot read
        # a service's extra properties, and still return it: not an error here. Anything else is.
        $id = [string]$record.FullyQualifiedErrorId
        if ($id -notlike 'NoServiceFoundForGivenName,*' -and $id -notlike 'CouldNotGetServiceInfo,*') { throw $record }
    }
    if ($found.Count -eq 0) { return $null }
    $service = $found[0]
    if ($service.PSObject.Properties['StartType']) {
        $mode = $service.StartType.ToString()
    }
    else {
        # ServiceController.StartType needs .NET 4.6.1; older hosts of WMF 5.1 ask WMI (Auto -> Automatic).
        $wmi = Get-CimInstance -ClassName Win32_Service | Where-Object { $_.Name -eq $Name } | Select-Object -First 1
        $mode = $null
        if ($null -ne $wmi) { $mode = if ($wmi.StartMode -eq 'Auto') { 'Automatic' } else { [string]$wmi.StartMode } }
    }
    @{
        status       = $service.Status.ToString()
        start_mode   = $mode
        display_name = $service.DisplayName
    }
}

function Get-ComputerIdentity {
    # A Hyper-V VM reports Microsoft Corporation / Virtual Machine (docs/dev/hyperv-facts.md section 2):
    # decided here, once, for both operations and the controller.
    $system = Get-CimInstance -ClassName Win32_ComputerSystem
    $manufacturer = [string]$system.Manufacturer
    $model = [string]$system.Model
    @{
        manufacturer = $manufacturer
        model        = $model
        hyperv_guest = ($manufacturer -eq 'Microsoft Corporation' -and $model -eq 'Virtual Machine')
    }
}

# W32Time's Hyper-V time provider (docs/dev/hyperv-facts.md section 2): Enabled (REG_DWORD) 0 stops W32Time
# taking time samples from the host. The path is a constant of this library, never request data; the
# answers give it (key) as users write it, so the controller's messages name it without a copy.
$TimeProviderKey = 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time\TimeProviders\VMICTimeProvider'
$TimeProviderSubKey = 'SYSTEM\CurrentControlSet\Services\W32Time\TimeProviders\VMICTimeProvider'
$TimeProviderName = 'HKLM\' + $TimeProviderSubKey

function Get-TimeProviderState {
    # key: the key's path. present: the key exists. enabled: the value Enabled as it is (an int for a
    # REG_DWORD, else its text), $null when absent. kind: the RegistryValueKind name, $null when absent.
    if (-not (Test-Path -LiteralPath $TimeProviderKey -PathType Container)) {
        return @{ key = $TimeProviderName; present = $false; enabled = $null; kind = $null }
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
    @{ key = $TimeProviderName; present = $true; enabled = $value; kind = $kind }
}

function Assert-SubKeyWritable {
    # Opens HKLM\$SubKey for writing and closes it again: nothing is written. A user who is not an
    # administrator gets System.Security.SecurityException ("Requested registry access is not allowed").
    param ([string]$SubKey)
    try {
        $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey($SubKey, $true)
    }
    catch [System.Management.Automation.MethodInvocationException] {
        throw $_.Exception.InnerException
    }
    if ($null -ne $key) { $key.Close() }
}

function Assert-TimeProviderWritable {
    # VMICTimeProvider's key: see Assert-SubKeyWritable.
    Assert-SubKeyWritable -SubKey $TimeProviderSubKey
}

function Set-TimeProvider {
    # Enabled := $Wanted (REG_DWORD) when it differs; then W32Time, when running, is restarted: it reads
    # its time providers' settings when it starts (MicrosoftDocs windowsserverdocs
    # windows-server-2016-improvements.md, "Virtualized Domains": "The registry entry requires that you
    # restart the w32time service after it is changed"). Every failure is recorded on the entry.
    param ($Before, [int]$Wanted, [bool]$CheckMode)
    $entry = @{
        key     = $TimeProviderName
        present = $true
        before  = @{ enabled = $Before.enabled; kind = $Before.kind }
        after   = @{ enabled = $Before.enabled; kind = $Before.kind }
        changed = $false
        w32time = $null
        error   = $null
    }
    # This runs after the service writes: every statement that can throw is inside a try.
    $w32time = $null
    try {
        $w32time = Get-ServiceState -Name 'W32Time'
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service 'W32Time'
        return $entry
    }
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
            $now = Get-ServiceState -Name 'W32Time'
            if ($null -ne $now) { $entry.w32time.status = $now.status }
        }
        catch {
            $entry.w32time.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service 'W32Time'
        }
    }
    return $entry
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
        computer      = Get-ComputerIdentity
        services      = @($services)
        time_provider = Get-TimeProviderState
    }
}

function Set-OneGuestService {
    # Start mode first, then the state. This runs after earlier items' writes, so every statement that
    # can throw is inside a try whose catch records the error on this item only. $Wish is a hashtable
    # Invoke-GuestServiceSet built from the request (name, state, start_mode).
    param ($Wish, [bool]$CheckMode)
    $entry = @{ name = $null; before = $null; after = $null; changed = $false; error = $null }
    $restart = $false
    try {
        $name = [string]$Wish.name
        $state = [string]$Wish.state
        $startMode = [string]$Wish.start_mode
        $entry.name = $name
        $restart = ($state -eq 'restarted')
        $before = Get-ServiceState -Name $name
        if ($null -eq $before) { throw [System.InvalidOperationException]::new("service '$name' no longer exists") }
        $entry.before = @{ status = $before.status; start_mode = $before.start_mode }
        $entry.after = @{ status = $before.status; start_mode = $before.start_mode }
        $mode = if ($startMode) { $startMode } else { $before.start_mode }
        if ($mode -eq 'Disabled' -and ($restart -or ($state -eq 'started' -and $before.status -ne 'Running'))) {
            # Windows refuses to start a disabled service: say so in check mode too.
            throw [System.InvalidOperationException]::new("service '$name' is disabled and cannot be started; set start_mode as well")
        }
        if ($startMode -and $startMode -ne $before.start_mode) {
            if (-not $CheckMode) { Set-Service -Name $name -StartupType $startMode }
            $entry.after.start_mode = $startMode
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
        elseif ($restart) {
            if (-not $CheckMode) { Restart-Service -Name $name -Force }
            $entry.after.status = 'Running'
            $entry.changed = $true
        }
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $entry.name
    }
    if (-not $CheckMode -and $null -ne $entry.before) {
        try {
            $now = Get-ServiceState -Name $entry.name
            $entry.after = @{ status = $now.status; start_mode = $now.start_mode }
        }
        catch {
            Write-Verbose -Message 'read-back of the service failed; keeping the state recorded above'
        }
        $entry.changed = ($entry.after.status -ne $entry.before.status) -or
            ($entry.after.start_mode -ne $entry.before.start_mode) -or
            ($restart -and $null -eq $entry.error)
    }
    return $entry
}

function Invoke-GuestServiceSet {
    param ($Request)
    # Everything from the request is read here, before the first write: into hashtables the library
    # built, whose keys exist, so nothing read after a write can throw.
    $wishes = @(foreach ($wish in @($Request.params.services)) {
            @{ name = [string]$wish.name; state = $wish.state; start_mode = $wish.start_mode }
        })
    $checkMode = [bool]$Request.check_mode
    $computer = Get-ComputerIdentity
    if (-not $computer.hyperv_guest) {
        # Not a Hyper-V guest (e.g. a task delegated to the host): its vmic* services are not ours to change.
        return @{ not_a_guest = $true; computer = $computer; missing = @(); services = @(); time_provider = $null }
    }
    $missing = @(foreach ($wish in $wishes) {
            if ($null -eq (Get-ServiceState -Name $wish.name)) { $wish.name }
        })
    if ($missing.Count) {
        return @{ not_a_guest = $false; computer = $computer; missing = $missing; services = @(); time_provider = $null }
    }
    # time_provider_enabled (0 or 1) is optional: absent or null leaves VMICTimeProvider alone.
    $raw = Get-RequestValue -Object $Request.params -Name 'time_provider_enabled'
    $wanted = $null
    if ($null -ne $raw) { $wanted = [int]$raw }
    $timeBefore = $null
    if ($null -ne $wanted) {
        $timeBefore = Get-TimeProviderState
        if (-not $timeBefore.present) {
            # Nothing is written: the caller reports the missing key.
            $absent = @{ key = $TimeProviderName; present = $false; before = $null; after = $null; changed = $false; w32time = $null; error = $null }
            return @{ not_a_guest = $false; computer = $computer; missing = @(); services = @(); time_provider = $absent }
        }
        if ($timeBefore.kind -ne 'DWord' -or $timeBefore.enabled -ne $wanted) {
            # Before the first write (and in check mode too): access denied fails the whole call.
            Assert-TimeProviderWritable
        }
    }
    $done = @(foreach ($wish in $wishes) { Set-OneGuestService -Wish $wish -CheckMode $checkMode })
    $time = $null
    if ($null -ne $wanted) { $time = Set-TimeProvider -Before $timeBefore -Wanted $wanted -CheckMode $checkMode }
    @{
        not_a_guest   = $false
        computer      = $computer
        missing       = @()
        services      = $done
        time_provider = $time
    }
}

$operations = @{
    guest_service_info = ${function:Invoke-GuestServiceInfo}
    guest_service_set  = ${function:Invoke-GuestServiceSet}
}

# --- Key-Value Pair Exchange, the guest's registry side (protocol doc section 7; docs/dev/hyperv-facts.md
# section 8, "Windows guest registry"). The paths are constants of this library, never request data, and
# every answer names them (keys / key), as users write them. Reads and REG_SZ writes go through the registry
# provider (-LiteralPath), a removal through RegistryKey.DeleteValue: Remove-ItemProperty -Name is a wildcard
# pattern unless -LiteralPath is given, and the provider takes the name '(default)' for a key's default
# value, which is therefore refused as a KVP key (docs/dev/powershell-facts.md, "The registry provider").
# Value names ignore case, as Windows does.
$KvpRootSubKey = 'SOFTWARE\Microsoft\Virtual Machine'
$KvpSubKeys = @{
    from_host  = 'SOFTWARE\Microsoft\Virtual Machine\External'
    to_host    = 'SOFTWARE\Microsoft\Virtual Machine\Guest'
    parameters = 'SOFTWARE\Microsoft\Virtual Machine\Guest\Parameters'
    auto       = 'SOFTWARE\Microsoft\Virtual Machine\Auto'
}
# Microsoft's Data Exchange page spells the host's description of itself Guest\Parameter; public scripts
# read Guest\Parameters. Parameters is read first, Parameter when only that one exists.
$KvpParameterSubKey = 'SOFTWARE\Microsoft\Virtual Machine\Guest\Parameter'
$KvpGuestPath = 'HKLM:\' + $KvpSubKeys.to_host
$KvpGuestName = 'HKLM\' + $KvpSubKeys.to_host

function Assert-KvpRegistryView {
    # A 32-bit PowerShell on a 64-bit Windows sees HKLM\SOFTWARE redirected to WOW6432Node (MicrosoftDocs
    # win32 WinProg64/shared-registry-keys.md): it would read and write keys Data Exchange never sees.
    if ([System.Environment]::Is64BitOperatingSystem -and -not [System.Environment]::Is64BitProcess) {
        throw [System.InvalidOperationException]::new('a 32-bit PowerShell on 64-bit Windows sees HKLM\SOFTWARE\WOW6432Node, not the Data Exchange keys; run the 64-bit PowerShell')
    }
}

function Read-KvpKey {
    # One key: $null when it does not exist; else items (value name -> text of each REG_SZ, as stored) and
    # other_kinds (value name -> RegistryValueKind name of every other value: not converted, not guessed).
    param ([string]$SubKey)
    $path = Join-Path -Path 'HKLM:\' -ChildPath $SubKey
    if (-not (Test-Path -LiteralPath $path -PathType Container)) { return $null }
    $key = Get-Item -LiteralPath $path
    try {
        $items = @{}
        $others = @{}
        foreach ($name in @($key.GetValueNames())) {
            $kind = $key.GetValueKind($name).ToString()
            if ($kind -eq 'String') {
                $items[$name] = [string]$key.GetValue($name, '', [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
            }
            else {
                $others[$name] = $kind
            }
        }
    }
    finally {
        $key.Close()
    }
    return @{ items = $items; other_kinds = $others }
}

function Invoke-GuestKvpInfo {
    param ($Request)
    Assert-KvpRegistryView
    $computer = Get-ComputerIdentity
    $paths = @{}
    $result = @{ hyperv_guest = $computer.hyperv_guest; keys = $paths; other_kinds = @{}; reasons = @{} }
    foreach ($name in @('from_host', 'to_host', 'parameters', 'auto')) {
        $subKey = $KvpSubKeys[$name]
        $read = Read-KvpKey -SubKey $subKey
        if ($null -eq $read -and $name -eq 'parameters') {
            $read = Read-KvpKey -SubKey $KvpParameterSubKey
            if ($null -ne $read) { $subKey = $KvpParameterSubKey }
        }
        $paths[$name] = 'HKLM\' + $subKey
        if ($null -eq $read) {
            # Never an empty mapping for a key that is not there.
            $result[$name] = $null
            $result.other_kinds[$name] = $null
            $result.reasons[$name] = if ($name -eq 'parameters') { "neither HKLM\$subKey nor HKLM\$KvpParameterSubKey exists" } else { "HKLM\$subKey does not exist" }
        }
        else {
            $result[$name] = $read.items
            $result.other_kinds[$name] = $read.other_kinds
            $result.reasons[$name] = $null
        }
    }
    return $result
}

function Get-KvpItemState {
    # present / value (the text of a REG_SZ, else $null) / kind (RegistryValueKind name) of one Guest value,
    # from a Read-KvpKey answer ($null: the key does not exist). Hashtable keys ignore case, as value names do.
    param ($Snapshot, [string]$Name)
    if ($null -ne $Snapshot -and $Snapshot.items.ContainsKey($Name)) { return @{ present = $true; value = $Snapshot.items[$Name]; kind = 'String' } }
    if ($null -ne $Snapshot -and $Snapshot.other_kinds.ContainsKey($Name)) { return @{ present = $true; value = $null; kind = $Snapshot.other_kinds[$Name] } }
    return @{ present = $false; value = $null; kind = $null }
}

function Get-KvpRefusal {
    # Why one item must not be written, $null when it may. $Seen: the keys of the items before it. The
    # limits are the request's: what reaches the host whole, in UTF-16 code units ([string].Length).
    param ($Item, $Seen, [int]$KeyLimit, [int]$ValueLimit)
    $key = [string]$Item.key
    if ($Item.state -ne 'present' -and $Item.state -ne 'absent') { return @{ key = $key; reason = 'state_unknown'; length = $null; limit = $null } }
    if ($key.Length -eq 0) { return @{ key = $key; reason = 'key_empty'; length = 0; limit = $null } }
    if ($key.Length -gt $KeyLimit) { return @{ key = $key; reason = 'key_too_long'; length = $key.Length; limit = $KeyLimit } }
    # The host reads guest items as CIM-XML (hyperv-facts section 8): text XML 1.0 cannot hold never arrives whole.
    if (-not (Test-XmlText -Text $key)) { return @{ key = $key; reason = 'key_invalid_characters'; length = $null; limit = $XmlCharacters } }
    # The registry provider's name for a key's default value (any case): not a value of that name.
    if ($key -eq '(default)') { return @{ key = $key; reason = 'key_reserved'; length = $null; limit = $null } }
    if ($Seen.ContainsKey($key)) { return @{ key = $key; reason = 'named_twice'; length = $null; limit = $null } }
    if ($Item.state -eq 'present') {
        if ($null -eq $Item.value) { return @{ key = $key; reason = 'value_missing'; length = $null; limit = $null } }
        if (([string]$Item.value).Length -gt $ValueLimit) { return @{ key = $key; reason = 'value_too_long'; length = ([string]$Item.value).Length; limit = $ValueLimit } }
        if (-not (Test-XmlText -Text ([string]$Item.value))) { return @{ key = $key; reason = 'value_invalid_characters'; length = $null; limit = $XmlCharacters } }
    }
    return $null
}

function Assert-KvpWritable {
    # Guest (or, when it is missing, Virtual Machine, where it will be created): see Assert-SubKeyWritable.
    $subKey = $KvpSubKeys.to_host
    if (-not (Test-Path -LiteralPath $KvpGuestPath -PathType Container)) { $subKey = $KvpRootSubKey }
    Assert-SubKeyWritable -SubKey $subKey
}

function Set-OneKvpItem {
    # One item, after earlier items' writes: every statement that can throw is inside a try whose catch
    # records the error on this item. $Item and $Before are hashtables Invoke-GuestKvpSet built.
    param ($Item, $Before, [bool]$CheckMode)
    $entry = @{ key = $Item.key; before = $Before; after = $Before; changed = $false; error = $null }
    $wanted = $null
    if ($Item.state -eq 'absent') {
        if ($Before.present) { $wanted = @{ present = $false; value = $null; kind = $null } }
    }
    elseif (-not ($Before.kind -eq 'String' -and $Before.value -ceq $Item.value)) {
        $wanted = @{ present = $true; value = $Item.value; kind = 'String' }
    }
    if ($null -eq $wanted) { return $entry }
    $entry.after = $wanted
    $entry.changed = $true
    if ($CheckMode) { return $entry }
    try {
        if ($Item.state -eq 'absent') {
            # RegistryKey.DeleteValue of that one name: exact, no wildcard pattern, no '(default)' token.
            $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey($KvpSubKeys.to_host, $true)
            if ($null -ne $key) {
                try { $key.DeleteValue($Item.key, $false) } finally { $key.Close() }
            }
        }
        else {
            if (-not (Test-Path -LiteralPath $KvpGuestPath -PathType Container)) {
                # Guest is not documented to exist on every guest: created under Virtual Machine. Never
                # New-Item -Force: on a registry key that exists it deletes the key and its values first.
                $null = New-Item -Path $KvpGuestPath
            }
            $null = New-ItemProperty -LiteralPath $KvpGuestPath -Name $Item.key -Value $Item.value -PropertyType String -Force
        }
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $null
    }
    try {
        $entry.after = Get-KvpItemState -Snapshot (Read-KvpKey -SubKey $KvpSubKeys.to_host) -Name $Item.key
    }
    catch {
        Write-Verbose -Message 'read-back of the Guest key failed; keeping the state recorded above'
    }
    $entry.changed = ($entry.after.present -ne $Before.present) -or ($entry.after.kind -ne $Before.kind) -or ($entry.after.value -cne $Before.value)
    return $entry
}

function Invoke-GuestKvpSet {
    param ($Request)
    # Everything from the request is read here, before the first write, into hashtables the library built.
    $items = @(foreach ($wish in @($Request.params.items)) {
            $value = $null
            if ($null -ne $wish.value) { $value = [string]$wish.value }
            @{ key = [string]$wish.key; value = $value; state = [string]$wish.state }
        })
    $keyLimit = [int]$Request.params.limits.key_units
    $valueLimit = [int]$Request.params.limits.value_units
    $checkMode = [bool]$Request.check_mode
    Assert-KvpRegistryView
    $computer = Get-ComputerIdentity
    $answer = @{ not_a_guest = $false; computer = $computer; key = $KvpGuestName; key_created = $false; refused = @(); items = @() }
    if (-not $computer.hyperv_guest) {
        # Not a Hyper-V guest (e.g. a task delegated to the host): no Data Exchange registry to write.
        $answer.not_a_guest = $true
        return $answer
    }
    # Every item is checked before anything is written, against the limits the controller sends (the only
    # size and character check for a Windows guest).
    $seen = @{}
    $refused = @(foreach ($item in $items) {
            $refusal = Get-KvpRefusal -Item $item -Seen $seen -KeyLimit $keyLimit -ValueLimit $valueLimit
            if ($null -ne $refusal) { $refusal }
            $seen[$item.key] = $true
        })
    if ($refused.Count) {
        $answer.refused = $refused
        return $answer
    }
    $snapshot = Read-KvpKey -SubKey $KvpSubKeys.to_host
    # Each item with its state before: pairs built here, so the write loop reads hashtables only.
    $plans = @(foreach ($item in $items) { @{ item = $item; before = (Get-KvpItemState -Snapshot $snapshot -Name $item.key) } })
    $writes = $false
    $creates = $false
    foreach ($plan in $plans) {
        if ($plan.item.state -eq 'absent' -and $plan.before.present) { $writes = $true }
        if ($plan.item.state -eq 'present' -and -not ($plan.before.kind -eq 'String' -and $plan.before.value -ceq $plan.item.value)) {
            $writes = $true
            if ($null -eq $snapshot) { $creates = $true }
        }
    }
    # Before the first write (and in check mode too): access denied fails the whole call.
    if ($writes) { Assert-KvpWritable }
    $done = @(foreach ($plan in $plans) { Set-OneKvpItem -Item $plan.item -Before $plan.before -CheckMode $checkMode })
    $answer.items = $done
    # key_created: Guest did not exist and an item now has a value there (check mode: would be created).
    foreach ($entry in $done) {
        if ($creates -and $entry.after.present) { $answer.key_created = $true }
    }
    return $answer
}

$operations['guest_kvp_info'] = ${function:Invoke-GuestKvpInfo}
$operations['guest_kvp_set'] = ${function:Invoke-GuestKvpSet}
