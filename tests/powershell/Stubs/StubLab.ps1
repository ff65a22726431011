# The stub host and guest state behind the stub cmdlets: built from a contract case's LABFILE mapping
# (tests/contract/README.md) with the lab's defaults and status rules (tests/lab/README.md, "The host
# model", "Status rules", "Windows guest doubles"), for en-US and de-DE hosts. Dot-sourced by
# Hyper-V.psm1, so it lives in that module's scope; WindowsStubs.ps1 reaches it through the module's
# exported Get-StubLab. Windows PowerShell 5.1 syntax only, and ASCII only: 5.1 reads a file without a
# byte order mark in the ANSI code page, so non-ASCII letters are written as [char] codes.

Set-StrictMode -Version 3.0

function ConvertFrom-StubTable {
    # A table of '|'-separated cells, one row a line (blank lines skipped), as one hashtable a row with
    # the cells, white space around them trimmed, under $Columns.
    param ([string]$Text, [string[]]$Columns)
    foreach ($row in ($Text -split "`r?`n")) {
        if (-not $row.Trim()) { continue }
        $cells = @($row -split '\|' | ForEach-Object { $_.Trim() })
        if ($cells.Count -ne $Columns.Count) { throw "stub table: '$row' has $($cells.Count) cells, not $($Columns.Count)" }
        $entry = @{}
        for ($i = 0; $i -lt $Columns.Count; $i++) { $entry[$Columns[$i]] = $cells[$i] }
        $entry
    }
}

# The integration services: key | GUID | enabled by default | the guest's service | en-US name | de-DE name.
$script:IcCatalog = @(
    foreach ($row in (ConvertFrom-StubTable -Columns 'Key', 'Guid', 'Default', 'Service', 'EnUs', 'DeDe' -Text @"
guest_service_interface | 6C09BB55-D683-4DA0-8931-C9BF705F6480 | false | vmicguestinterface | Guest Service Interface | Gastdienstschnittstelle
heartbeat | 84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47 | true | vmicheartbeat | Heartbeat | Takt
key_value_pair_exchange | 2A34B1C2-FD73-4043-8A5B-DD2159BC743F | true | vmickvpexchange | Key-Value Pair Exchange | Austausch von Schl$([char]0x00FC)sselwertepaaren
shutdown | 9F8233AC-BE49-4C79-8EE3-E7E1985B2077 | true | vmicshutdown | Shutdown | Herunterfahren
time_synchronization | 2497F4DE-E9FA-4204-80E4-4B75C46419C0 | true | vmictimesync | Time Synchronization | Zeitsynchronisierung
vss | 5CED1297-4598-4915-A5FC-AD21BB4D02A4 | true | vmicvss | VSS | VSS
"@)) {
        @{ Key = $row.Key; Guid = $row.Guid; Default = ($row.Default -eq 'true'); Service = $row.Service
            Names = @{ 'en-US' = $row.EnUs; 'de-DE' = $row.DeDe } }
    }
)

# A Windows guest's vmic* services: name | status at boot | en-US display name | de-DE display name.
$script:GuestServiceCatalog = @(
    foreach ($row in (ConvertFrom-StubTable -Columns 'Name', 'Status', 'EnUs', 'DeDe' -Text @"
vmicguestinterface | Running | Hyper-V Guest Service Interface | Hyper-V-Gastdienstschnittstelle
vmicheartbeat | Running | Hyper-V Heartbeat Service | Hyper-V-Taktdienst
vmickvpexchange | Running | Hyper-V Data Exchange Service | Hyper-V-Datenaustauschdienst
vmicrdv | Running | Hyper-V Remote Desktop Virtualization Service | Hyper-V-Remotedesktopvirtualisierungsdienst
vmicshutdown | Running | Hyper-V Guest Shutdown Service | Hyper-V-Dienst zum Herunterfahren des Gasts
vmictimesync | Running | Hyper-V Time Synchronization Service | Hyper-V-Dienst f$([char]0x00FC)r Zeitsynchronisierung
vmicvmsession | Stopped | Hyper-V VM Session Service | Hyper-V-VM-Sitzungsdienst
vmicvss | Running | Hyper-V Volume Shadow Copy Requestor | Hyper-V-Volumeschattenkopie-Anforderer
"@)) {
        @{ Name = $row.Name; Status = $row.Status; DisplayNames = @{ 'en-US' = $row.EnUs; 'de-DE' = $row.DeDe } }
    }
)

$script:BuiltinHvSocketServices = @(
    @{ Key = '999E53D4-3D5C-4C3E-8779-BED06EC056E1'; Name = 'VM Session Service' }
    @{ Key = 'A5201C21-2770-4C11-A68E-F182EDB29220'; Name = 'VM Session Service-2' }
)

$script:StubLanguages = @('en-US', 'de-DE')
$script:StubFaultTypes = @('write_error', 'vm_read_error', 'access_denied', 'registry_error')
$script:StubLab = $null

function Get-StubMember {
    # A member of a JSON object (PSCustomObject) or $Default when it has none. Arrays unroll: wrap in @().
    param ($Object, [string]$Name, $Default = $null)
    if ($null -ne $Object -and $null -ne $Object.PSObject.Properties[$Name]) { return $Object.PSObject.Properties[$Name].Value }
    return $Default
}

function Get-StubGuid {
    # 'XXXXXXXX-...' upper case for a registry subkey name or params GUID ({braces} allowed); $null if none.
    param ([string]$Text)
    $parsed = [guid]::Empty
    if ([guid]::TryParse($Text.Trim().Trim('{', '}'), [ref]$parsed)) { return $parsed.ToString().ToUpperInvariant() }
    return $null
}

function Initialize-StubLab {
    # The state of one case: VMs (host order), their ICs and guest services, the registry key, faults.
    param ($Lab, [string]$GuestVmName)
    $hostSpec = Get-StubMember $Lab 'host'
    $language = [string](Get-StubMember $hostSpec 'language' 'en-US')
    $vms = New-Object -TypeName 'System.Collections.Generic.List[object]'
    foreach ($spec in @(Get-StubMember $Lab 'vms' @())) {
        $guest = [string](Get-StubMember $spec 'guest' 'none')
        $version = $null
        if ($null -ne $spec.PSObject.Properties['integration_services_version']) { $version = $spec.integration_services_version }
        elseif ($guest -eq 'windows') { $version = '10.0.20348' }
        $icState = $null
        if ($null -ne $spec.PSObject.Properties['integration_services_state']) { $icState = $spec.integration_services_state }
        elseif ($version) { $icState = 'Up to date' }
        $wishes = Get-StubMember $spec 'integration_services'
        $ics = New-Object -TypeName System.Collections.Specialized.OrderedDictionary
        foreach ($definition in $script:IcCatalog) {
            $wish = Get-StubMember $wishes $definition.Key $definition.Default
            if ($wish -is [string]) { continue }  # 'absent': this VM has no such IC
            $ics[$definition.Key] = @{ Definition = $definition; Enabled = [bool]$wish }
        }
        $services = New-Object -TypeName System.Collections.Specialized.OrderedDictionary
        if ($guest -eq 'windows') {
            $overrides = Get-StubMember $spec 'guest_services'
            foreach ($definition in $script:GuestServiceCatalog) {
                $override = Get-StubMember $overrides $definition.Name
                $status = [string](Get-StubMember $override 'status' $definition.Status)
                $services[$definition.Name] = @{
                    Name        = $definition.Name
                    DisplayName = $definition.DisplayNames[$language]
                    Status      = $status
                    StartMode   = [string](Get-StubMember $override 'start_mode' 'Manual')
                    HasRun      = ($status -eq 'Running')  # Running at lab start: it ran at boot
                }
            }
        }
        $number = $vms.Count + 1
        $vms.Add(@{
                Name         = [string]$spec.name
                Id           = [guid]('{0:x8}-5354-4b42-8000-{0:x12}' -f $number)
                State        = [string](Get-StubMember $spec 'state' 'Running')
                Guest        = $guest
                Version      = $version
                IcState      = $icState
                Ics          = $ics
                Services     = $services
                TimeProvider = @{ Present = $true; Enabled = 1; Kind = 'DWord'; W32TimeStatus = 'Running'; Restarts = 0 }
            })
    }
    $registry = New-Object -TypeName 'System.Collections.Generic.List[object]'
    foreach ($entry in $script:BuiltinHvSocketServices) { $registry.Add(@{ Key = $entry.Key; Name = $entry.Name }) }
    $extra = Get-StubMember $Lab 'hvsocket_services'
    if ($null -ne $extra) {
        foreach ($property in $extra.PSObject.Properties) {
            $guid = Get-StubGuid $property.Name
            foreach ($old in @($registry.ToArray())) {
                # An entry for a built-in GUID replaces it.
                if ($null -ne $guid -and (Get-StubGuid $old.Key) -eq $guid) { $null = $registry.Remove($old) }
            }
            $registry.Add(@{ Key = $property.Name; Name = $property.Value })
        }
    }
    $faults = New-Object -TypeName 'System.Collections.Generic.List[object]'
    foreach ($fault in @(Get-StubMember $Lab 'faults' @())) {
        $faults.Add(@{ Type = [string]$fault.type; Params = $fault; Left = [int](Get-StubMember $fault 'times' -1) })
    }
    $guestVm = $null
    foreach ($vm in $vms) { if ($GuestVmName -and $vm.Name -ceq $GuestVmName) { $guestVm = $vm } }
    $script:StubLab = @{
        HostName = [string](Get-StubMember $hostSpec 'name' 'hv01')
        Language = $language
        Vms      = $vms
        Registry = $registry
        Faults   = $faults
        Writes   = 0
        Created  = New-Object -TypeName 'System.Collections.Generic.HashSet[string]'
        GuestVm  = $guestVm
    }
}

function Get-StubLab {
    if ($null -eq $script:StubLab) { throw 'stub lab: Initialize-StubLab was not called' }
    return $script:StubLab
}

function Get-StubUnsupported {
    # Why the stub cannot run this LABFILE ($null when it can).
    param ($Lab)
    $language = [string](Get-StubMember (Get-StubMember $Lab 'host') 'language' 'en-US')
    if ($script:StubLanguages -notcontains $language) { return "host language $language (the stub knows $($script:StubLanguages -join ', '))" }
    if ($null -ne (Get-StubMember (Get-StubMember $Lab 'host') 'guest_answer_delay')) { return 'guest_answer_delay' }
    foreach ($vm in @(Get-StubMember $Lab 'vms' @())) {
        if ($null -ne (Get-StubMember $vm 'guest_answer_delay')) { return 'guest_answer_delay' }
    }
    foreach ($fault in @(Get-StubMember $Lab 'faults' @())) {
        if ($script:StubFaultTypes -notcontains [string]$fault.type) { return "fault $($fault.type) (a transport fault of the lab)" }
    }
    return $null
}

function Use-StubFault {
    # The first fault of this type matching the VM / IC key / service GUID that has uses left, consumed;
    # $null when none applies (faults.py FaultSet.take).
    param ([string]$Type, [string]$VmName, [string]$Service, [string]$ServiceId)
    foreach ($fault in (Get-StubLab).Faults) {
        if ($fault.Type -ne $Type -or $fault.Left -eq 0) { continue }
        $params = $fault.Params
        if ($VmName -and -not [string]::Equals([string](Get-StubMember $params 'vm'), $VmName, [System.StringComparison]::OrdinalIgnoreCase)) { continue }
        if ($Service -and [string](Get-StubMember $params 'service') -ne $Service) { continue }
        if ($ServiceId -and (Get-StubGuid ([string](Get-StubMember $params 'service_id'))) -ne $ServiceId) { continue }
        if ($fault.Left -gt 0) { $fault.Left = $fault.Left - 1 }
        return $params
    }
    return $null
}

function New-StubErrorRecord {
    param ([System.Exception]$Exception, [string]$ErrorId, [System.Management.Automation.ErrorCategory]$Category, $Target = $null)
    return New-Object -TypeName System.Management.Automation.ErrorRecord -ArgumentList $Exception, $ErrorId, $Category, $Target
}

function Get-StubSilentStatus {
    # A guest service that is not running: LostCommunication if it ran in this lab's life, else NoContact.
    param ($Service)
    if ($Service.HasRun) { return 'LostCommunication' }
    return 'NoContact'
}

function Get-StubIcStatus {
    # @{ Primary; Secondary } as enum names (tests/lab/README.md, "Status rules").
    param ($Vm, $Ic)
    if ($Vm.State -eq 'Off' -or $Vm.State -eq 'Saved') { return @{ Primary = $null; Secondary = $null } }
    if (-not $Ic.Enabled) { return @{ Primary = 'Ok'; Secondary = $null } }
    $okSecondary = $null
    if ($Ic.Definition.Key -eq 'heartbeat') { $okSecondary = 'Ok' }
    if ($Vm.Guest -eq 'none') { return @{ Primary = 'NoContact'; Secondary = $null } }
    if ($Vm.Guest -eq 'linux') { return @{ Primary = 'Ok'; Secondary = $okSecondary } }
    $service = $Vm.Services[$Ic.Definition.Service]
    if ($service.Status -eq 'Running') { return @{ Primary = 'Ok'; Secondary = $okSecondary } }
    return @{ Primary = (Get-StubSilentStatus $service); Secondary = $null }
}

function Get-StubHeartbeat {
    param ($Vm)
    if ($Vm.State -eq 'Off' -or $Vm.State -eq 'Saved') { return $null }
    if ($Vm.State -eq 'Paused') { return 'Paused' }
    $heartbeat = $Vm.Ics['heartbeat']
    if ($null -eq $heartbeat -or -not $heartbeat.Enabled) { return 'Disabled' }
    if ($Vm.Guest -eq 'none') { return 'NoContact' }
    if ($Vm.Guest -eq 'linux') { return 'OkApplicationsHealthy' }
    $service = $Vm.Services['vmicheartbeat']
    if ($service.Status -eq 'Running') { return 'OkApplicationsHealthy' }
    return Get-StubSilentStatus $service
}

function Get-StubRegistryOrder {
    # Subkeys sorted by name case-insensitively (upper-case ordinal), as the registry enumerates them.
    $entries = @((Get-StubLab).Registry.ToArray())
    $keys = [string[]]@($entries | ForEach-Object { $_.Key.ToUpperInvariant() + [char]0 + $_.Key })
    [System.Array]::Sort($keys, $entries, [System.StringComparer]::Ordinal)
    return , $entries
}

function Get-StubVmId {
    # VM name -> ids (LABFILE order), for the cases' <vm-id:NAME> placeholders.
    $ids = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,System.Collections.Generic.List[string]]' -ArgumentList ([System.StringComparer]::Ordinal)
    foreach ($vm in (Get-StubLab).Vms) {
        if (-not $ids.ContainsKey($vm.Name)) { $ids[$vm.Name] = New-Object -TypeName 'System.Collections.Generic.List[string]' }
        $ids[$vm.Name].Add($vm.Id.ToString())
    }
    return $ids
}

function Get-StubLabView {
    # The part of `lab state` the cases' state_after may name (lab_runner.PORTABLE_STATE), same shape.
    $lab = Get-StubLab
    $vms = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,object]' -ArgumentList ([System.StringComparer]::Ordinal)
    foreach ($vm in $lab.Vms) {
        $ics = @{}
        foreach ($key in $vm.Ics.Keys) { $ics[$key] = @{ enabled = $vm.Ics[$key].Enabled } }
        $services = @{}
        foreach ($name in $vm.Services.Keys) {
            $services[$name] = @{ status = $vm.Services[$name].Status; start_mode = $vm.Services[$name].StartMode }
        }
        $time = $vm.TimeProvider
        $guest = @{
            services      = $services
            time_provider = @{
                present = $time.Present; enabled = $time.Enabled; kind = $time.Kind
                w32time = @{ status = $time.W32TimeStatus; restarts = $time.Restarts }
            }
        }
        $key = $vm.Name
        if ($vms.ContainsKey($key)) { $key = '{0}#{1}' -f $vm.Name, $vm.Id }
        $vms[$key] = @{ state = $vm.State; integration_services = $ics; guest = $guest }
    }
    $registry = @(foreach ($entry in (Get-StubRegistryOrder)) {
            @{ key = $entry.Key; service_id = (Get-StubGuid $entry.Key); name = $entry.Name }
        })
    $services = New-Object -TypeName System.Collections.Specialized.OrderedDictionary
    foreach ($entry in $registry) {
        if ($null -ne $entry.service_id -and -not $services.Contains($entry.service_id)) { $services[$entry.service_id] = $entry.name }
    }
    return @{ vms = $vms; hvsocket_services = $services; hvsocket_registry = $registry; counters = @{ writes = $lab.Writes } }
}
