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

function New-VmReadFailure {
    # One VM's info entry when reading it failed (deleted or inaccessible since Get-VM): its name and id,
    # each entry of $Unread (the operation's other entries, in the answer's order: $null or empty) and
    # the error, answered on that VM; the other VMs are still read.
    param ($Vm, $RequestedName, $Unread, $ErrorRecord)
    $entry = @{ name = [string]$Vm.Name; requested_name = $RequestedName; id = $Vm.Id.ToString(); state = $null }
    foreach ($key in @($Unread.Keys)) { $entry[$key] = $Unread[$key] }
    $entry.error = Get-ErrorRecordData -ErrorRecord $ErrorRecord -VmName ([string]$Vm.Name) -Service $null
    return $entry
}

function New-VmInfoAnswer {
    # The answer of an info operation: the VMs' entries (built by the caller, one a VM of $Resolved.vms)
    # and what Resolve-VmName found missing, ambiguous or could not list.
    param ($Resolved, $Vms)
    @{
        vms            = $Vms
        missing        = @($Resolved.missing)
        ambiguous      = $Resolved.ambiguous
        vm_list_errors = $Resolved.errors
    }
}

function Add-ResolutionAnswer {
    # Get-VM's errors, and the names Resolve-VmName found missing or ambiguous, on $Result (an operation's
    # answer); $true when every name selected exactly one VM.
    param ($Resolved, $Result)
    $Result.vm_list_errors = $Resolved.errors
    if ($Resolved.missing.Count -or $Resolved.ambiguous.psbase.Count) {
        $Result.missing = @($Resolved.missing)
        $Result.ambiguous = $Resolved.ambiguous
        return $false
    }
    return $true
}

function Resolve-SetVm {
    # The VMs a set operation names, or $null when the call is refused before anything is read or
    # written, answered on $Result: names missing or ambiguous, or items for one VM only (an item with
    # vm set: $Items are the request's changes or targets) under two names of one VM, which could
    # disagree (named_twice). Get-VM's errors go on $Result either way.
    param ($Request, $Result, $Items)
    $resolved = Resolve-VmName -Names @($Request.params.vm_names)
    if (-not (Add-ResolutionAnswer -Resolved $resolved -Result $Result)) { return $null }
    $perVm = @(foreach ($item in @($Items)) { if ($null -ne (Get-RequestValue -Object $item -Name 'vm')) { $item } })
    if ($resolved.repeated.Count -and $perVm.Count) {
        $Result.named_twice = @($resolved.repeated)
        return $null
    }
    return $resolved
}

function New-VmSetAnswer {
    # One VM's answer of a set operation: what its plan entry read and, under $Key, what was done to its
    # items. It runs after the writes: [object] parameters convert nothing, and it reads no member.
    param ([object]$Name, [object]$RequestedName, [object]$Id, [object]$State, [object]$ReadError, [string]$Key, [object]$Done)
    $answer = @{
        name           = $Name
        requested_name = $RequestedName
        id             = $Id
        state          = $State
        error          = $ReadError
    }
    $answer[$Key] = $Done
    return $answer
}

function Invoke-SetPlan {
    # The writes of a set operation, once everything was read and checked: each VM's items, one at a time,
    # by the operation's item writer (Key integration_services: Set-OneIntegrationService; items:
    # Set-OneKvpItem), which catches everything itself, so nothing after the first write may end the call
    # (protocol doc section 4). One answer per VM, items under $Key.
    param ($Plan, [string]$Key, $Context, [bool]$CheckMode)
    foreach ($entry in $Plan) {
        $done = @(foreach ($item in $entry.items) {
                if ($Key -eq 'items') { Set-OneKvpItem -Context $Context -System $entry.system -VmName $entry.name -Item $item -CheckMode $CheckMode }
                else { Set-OneIntegrationService -Vm $entry.vm -VmName $entry.name -Item $item -CheckMode $CheckMode }
            })
        New-VmSetAnswer -Name $entry.name -RequestedName $entry.requested_name -Id $entry.id -State $entry.state -ReadError $entry.error -Key $Key -Done $done
    }
}

function Get-VmIntegrationStatus {
    # One VM's answer; an error reading it (deleted or inaccessible since Get-VM) is answered on that
    # VM, and the other VMs are still read. RequestedName: the name that selected it ($null: every VM).
    param ($Vm, $RequestedName)
    try {
        return Get-VmIntegrationDetail -Vm $Vm -RequestedName $RequestedName
    }
    catch {
        $unread = [ordered]@{ heartbeat = $null; integration_services_version = $null; integration_services_state = $null; integration_services = @() }
        return New-VmReadFailure -Vm $Vm -RequestedName $RequestedName -Unread $unread -ErrorRecord $_
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
    $vms = @(foreach ($vm in $resolved.vms) { Get-VmIntegrationStatus -Vm $vm -RequestedName $resolved.requested[$vm.Id.ToString()] })
    New-VmInfoAnswer -Resolved $resolved -Vms $vms
}

function Invoke-VmIntegrationServiceSet {
    param ($Request)
    $result = @{ vms = @(); missing = @(); ambiguous = @{}; named_twice = @(); missing_services = @(); vm_list_errors = @() }
    $resolved = Resolve-SetVm -Request $Request -Result $result -Items $Request.params.changes
    if ($null -eq $resolved) { return $result }

    # Read everything and validate before the first write. A VM whose integration services cannot be
    # read gets its error and no change; the other VMs go on.
    $checkMode = [bool]$Request.check_mode
    $plan = @(foreach ($vm in $resolved.vms) {
            $name = [string]$vm.Name
            $state = $null
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
            # A VM that could not be read gets its error and no change.
            if ($null -ne $readError) { $items = @() }
            @{ vm = $vm; name = $name; requested_name = $resolved.requested[$vm.Id.ToString()]; id = $vm.Id.ToString(); state = $state; items = $items; error = $readError }
        })
    if ($result.missing_services.Count) { return $result }

    $result.vms = @(Invoke-SetPlan -Plan $plan -Key 'integration_services' -Context $null -CheckMode $checkMode)
    return $result
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
        services = @(foreach ($guid in $entries.psbase.Keys) {
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

# --- Key-Value Pair Exchange, the host's half (protocol doc section 9; docs/dev/hyperv-facts.md section 8) ---
# Items travel as data: read from the request, checked here against the limits the controller sends (the
# only size check), written into XML only through XmlWriter, which escapes them, and read back from the
# host's embedded-instance XML with an XML parser (never evaluated).

# Msvm_ConcreteJob.JobState values in which a job has ended (hyperv-facts section 8): 7 Completed, 8
# Terminated, 9 Killed, 10 Exception. Every other state (New, Starting, Running, Suspended, Shutting Down,
# Service, vendor values) is waited for; Completed with a non-zero ErrorCode is a failure.
$KvpJobEnded = @(7, 8, 9, 10)
$KvpJobPolls = 240  # 250 ms apart: a job still pending after 60 s is reported, not waited for

function New-WmiCallError {
    # A failed WMI method call, as numbers: the controller words them (plugin_utils/_wmi_return.py holds
    # what each means). No .NET exception was thrown, so the type is the collection's own. $Job: $null, or
    # the state, ErrorCode and ErrorDescription of the job the call started (return value 4096).
    param ([string]$Method, [int]$Code, $Job, [string]$VmName)
    @{ type = 'hyperv.integration.WmiReturnValue'; message = "$Method answered $Code"; category = 'NotSpecified'; vm = $VmName; service = $null; method = $Method; code = $Code; job = $Job }
}

function ConvertFrom-KvpItemXml {
    # Embedded Msvm_KvpExchangeDataItem instances (CIM-XML strings) -> @{ items = key -> value; unparsed =
    # how many could not be parsed }, keys compared ordinally. Parsed as data: an XmlReader that refuses any
    # DTD, so no entity is ever expanded. One item that is not well-formed is counted and left out: the
    # others are still read.
    param ($Items)
    $map = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,string]' -ArgumentList ([System.StringComparer]::Ordinal)
    $unparsed = 0
    $settings = New-Object -TypeName System.Xml.XmlReaderSettings
    # A string assigned to an enum property is converted to that enum by PowerShell.
    $settings.DtdProcessing = 'Prohibit'
    foreach ($text in @($Items)) {
        if ($null -eq $text) { continue }
        $document = New-Object -TypeName System.Xml.XmlDocument
        # Kept as it is: by default a VALUE of only spaces or line breaks would load as '' (XmlDocument).
        $document.PreserveWhitespace = $true
        $reader = [System.Xml.XmlReader]::Create((New-Object -TypeName System.IO.StringReader -ArgumentList ([string]$text)), $settings)
        try { $document.Load($reader) }
        catch [System.Xml.XmlException] {
            $unparsed += 1
            continue
        }
        finally { $reader.Close() }
        $name = $document.SelectSingleNode("/INSTANCE/PROPERTY[@NAME='Name']/VALUE")
        if ($null -eq $name) {
            $unparsed += 1
            continue
        }
        # An empty value can come without a VALUE element (hyperv-facts section 8).
        $data = $document.SelectSingleNode("/INSTANCE/PROPERTY[@NAME='Data']/VALUE")
        $value = ''
        if ($null -ne $data) { $value = $data.InnerText }
        $map[$name.InnerText] = $value
    }
    @{ items = $map; unparsed = $unparsed }
}

function ConvertTo-KvpItemXml {
    # One host item (Source 0) as an embedded Msvm_KvpExchangeDataItem in the CIM-XML shape GetText(1)
    # gives (hyperv-facts section 8). XmlWriter escapes every text and attribute value; line breaks
    # become character references, so the parser on the host keeps a CR.
    param ([string]$Key, [string]$Value)
    $settings = New-Object -TypeName System.Xml.XmlWriterSettings
    $settings.OmitXmlDeclaration = $true
    $settings.NewLineHandling = 'Entitize'
    $buffer = New-Object -TypeName System.Text.StringBuilder
    $writer = [System.Xml.XmlWriter]::Create($buffer, $settings)
    $writer.WriteStartElement('INSTANCE')
    $writer.WriteAttributeString('CLASSNAME', 'Msvm_KvpExchangeDataItem')
    foreach ($property in @(@('Data', 'string', $Value), @('Name', 'string', $Key), @('Source', 'uint16', '0'))) {
        $writer.WriteStartElement('PROPERTY')
        $writer.WriteAttributeString('NAME', $property[0])
        $writer.WriteAttributeString('TYPE', $property[1])
        $writer.WriteElementString('VALUE', $property[2])
        $writer.WriteEndElement()
    }
    $writer.WriteEndElement()
    $writer.Close()
    return $buffer.ToString()
}

function Test-KvpText {
    # Why this key or value cannot be written whole to every guest, or $null (hyperv-facts section 8).
    param ([string]$Text, [string]$What, [int]$Units, [int]$Bytes)
    if (-not (Test-XmlText -Text $Text)) { return @{ reason = "${What}_invalid_characters"; limit = $XmlCharacters } }
    if ($Text.Length -gt $Units) { return @{ reason = "${What}_too_long"; limit = "$Units UTF-16 code units" } }
    if ([System.Text.Encoding]::UTF8.GetByteCount($Text) -gt $Bytes) { return @{ reason = "${What}_too_long"; limit = "$Bytes UTF-8 bytes" } }
    return $null
}

function Get-KvpContext {
    # The management service (for the writes) and every VM's Msvm_ComputerSystem (Get-KvpSystemMap).
    $service = @(Get-CimInstance -Namespace 'root/virtualization/v2' -ClassName 'Msvm_VirtualSystemManagementService')
    if ($service.Count -ne 1) { throw [System.InvalidOperationException]::new("found $($service.Count) instances of Msvm_VirtualSystemManagementService, expected one") }
    @{ service = $service[0]; systems = Get-KvpSystemMap; error = $null }
}

function Get-KvpSystemMap {
    # Every VM's Msvm_ComputerSystem, by Name: the VM's Id as text. A dictionary is one object in the
    # pipeline (PowerShell does not enumerate an IDictionary), so it is returned as is.
    $systems = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,object]' -ArgumentList ([System.StringComparer]::OrdinalIgnoreCase)
    foreach ($system in @(Get-CimInstance -Namespace 'root/virtualization/v2' -ClassName 'Msvm_ComputerSystem')) {
        $systems[[string]$system.Name] = $system
    }
    return $systems
}

function Get-KvpSystem {
    # The VM's Msvm_ComputerSystem from the context's map; the error of building the map, if that failed.
    param ($Context, $Vm)
    if ($null -ne $Context.error) { throw $Context.error }
    $id = $Vm.Id.ToString()
    if (-not $Context.systems.ContainsKey($id)) {
        throw [System.Management.Automation.ItemNotFoundException]::new("no Msvm_ComputerSystem named $id (the VM's Id)")
    }
    return $Context.systems[$id]
}

function Get-KvpHostItem {
    # HostExchangeItems of the VM's current settings: Msvm_ComputerSystem -> Msvm_SettingsDefineState ->
    # Msvm_VirtualSystemSettingData -> Msvm_VirtualSystemSettingDataComponent -> Msvm_KvpExchangeComponentSettingData.
    # Settings exist whatever the VM's state, unlike the running VM's Msvm_KvpExchangeComponent.
    param ($System)
    $settings = @(Get-CimAssociatedInstance -InputObject $System -Association 'Msvm_SettingsDefineState' -ResultClassName 'Msvm_VirtualSystemSettingData' -Namespace 'root/virtualization/v2')
    if ($settings.Count -ne 1) { throw [System.InvalidOperationException]::new("found $($settings.Count) current settings of the VM, expected one") }
    $kvp = @(Get-CimAssociatedInstance -InputObject $settings[0] -Association 'Msvm_VirtualSystemSettingDataComponent' -ResultClassName 'Msvm_KvpExchangeComponentSettingData' -Namespace 'root/virtualization/v2')
    if ($kvp.Count -ne 1) { throw [System.InvalidOperationException]::new("found $($kvp.Count) Key-Value Pair Exchange settings of the VM, expected one") }
    # The whole answer (items and unparsed): a Dictionary itself would take .items for a key.
    return ConvertFrom-KvpItemXml -Items $kvp[0].HostExchangeItems
}

function Get-VmKvpDetail {
    param ($Context, $Vm, $RequestedName, [string]$KvpGuid)
    $system = Get-KvpSystem -Context $Context -Vm $Vm
    $state = $Vm.State.ToString()
    $enabled = $null
    foreach ($ic in @(Hyper-V\Get-VMIntegrationService -VM $Vm)) {
        if ((Get-IcGuid $ic) -eq $KvpGuid) { $enabled = [bool]$ic.Enabled }
    }
    $hostRead = Get-KvpHostItem -System $system
    $entry = @{
        name                    = [string]$Vm.Name
        requested_name          = $RequestedName
        id                      = $Vm.Id.ToString()
        state                   = $state
        kvp_enabled             = $enabled
        host_items              = $hostRead.items
        guest_items             = $null
        intrinsic_items         = $null
        guest_items_unavailable = $null
        unparsed_items          = $hostRead.unparsed
        error                   = $null
    }
    $guestRead = Read-KvpGuestItem -Context $Context -Vm $Vm -State $state -Enabled $enabled
    $entry.intrinsic_items = $guestRead.intrinsic
    $entry.guest_items = $guestRead.guest
    $entry.guest_items_unavailable = $guestRead.unavailable
    $entry.unparsed_items = $entry.unparsed_items + $guestRead.unparsed
    return $entry
}

function Read-KvpGuestItem {
    # The guest's half of a VM's Key-Value Pair Exchange (its Msvm_KvpExchangeComponent): intrinsic and
    # guest items, and how many items could not be parsed. Guest data only from a running VM whose guest
    # answers; otherwise null and the reason, never an empty mapping that would look like the truth.
    # The VM's Msvm_ComputerSystem is looked up only when it is needed, after the reasons that need none.
    param ($Context, $Vm, [string]$State, $Enabled)
    $read = @{ intrinsic = $null; guest = $null; unparsed = 0; unavailable = $null }
    if ($State -ne 'Running') { $read.unavailable = 'vm_not_running'; return $read }
    if ($null -eq $Enabled) { $read.unavailable = 'kvp_missing'; return $read }
    if (-not $Enabled) { $read.unavailable = 'kvp_disabled'; return $read }
    $system = Get-KvpSystem -Context $Context -Vm $Vm
    $component = @(Get-CimAssociatedInstance -InputObject $system -Association 'Msvm_SystemDevice' -ResultClassName 'Msvm_KvpExchangeComponent' -Namespace 'root/virtualization/v2')
    if ($component.Count -ne 1) { $read.unavailable = 'no_component'; return $read }
    # Every guest that answers reports intrinsic items (its OS name, version, ...): none means it has not.
    $intrinsic = ConvertFrom-KvpItemXml -Items $component[0].GuestIntrinsicExchangeItems
    $read.unparsed = $intrinsic.unparsed
    if ($intrinsic.items.psbase.Count -eq 0 -and $intrinsic.unparsed -eq 0) { $read.unavailable = 'guest_not_answering'; return $read }
    $guest = ConvertFrom-KvpItemXml -Items $component[0].GuestExchangeItems
    $read.intrinsic = $intrinsic.items
    $read.guest = $guest.items
    $read.unparsed = $read.unparsed + $guest.unparsed
    return $read
}

function Get-VmKvpStatus {
    param ($Context, $Vm, $RequestedName, [string]$KvpGuid)
    try {
        return Get-VmKvpDetail -Context $Context -Vm $Vm -RequestedName $RequestedName -KvpGuid $KvpGuid
    }
    catch {
        $unread = [ordered]@{ kvp_enabled = $null; host_items = $null; guest_items = $null; intrinsic_items = $null; guest_items_unavailable = $null; unparsed_items = $null }
        return New-VmReadFailure -Vm $Vm -RequestedName $RequestedName -Unread $unread -ErrorRecord $_
    }
}

function Invoke-VmKvpInfo {
    param ($Request)
    $kvpGuid = ([string]$Request.params.kvp_guid).Trim('{', '}').ToUpperInvariant()
    $resolved = Resolve-VmName -Names $Request.params.vm_names
    $context = Get-KvpContext
    $vms = @(foreach ($vm in $resolved.vms) { Get-VmKvpStatus -Context $context -Vm $vm -RequestedName $resolved.requested[$vm.Id.ToString()] -KvpGuid $kvpGuid })
    New-VmInfoAnswer -Resolved $resolved -Vms $vms
}

function Get-KvpJob {
    # The job as it is now: Get-CimInstance -InputObject reads a CIM instance again.
    param ($Job)
    return Get-CimInstance -InputObject $Job
}

function Wait-KvpJob {
    # A started job (4096), polled through Msvm_ConcreteJob until it ends or $KvpJobPolls polls pass:
    # $null when it completed without error, else the error with the job's last state, ErrorCode and
    # ErrorDescription as read (null stays null: the controller tells "not set" from 0).
    param ($Job, [string]$Method, [string]$VmName)
    $current = $Job
    $state = $null
    for ($poll = 0; $poll -lt $KvpJobPolls; $poll++) {
        $current = Get-KvpJob -Job $current
        $state = [int]$current.JobState
        if ($state -eq 7 -and -not $current.ErrorCode) { return $null }
        if ($KvpJobEnded -contains $state) { break }
        Start-Sleep -Milliseconds 250
    }
    # Not $job: variable names ignore case, and $Job is the parameter.
    $lastSeen = @{ state = $state; error_code = $current.ErrorCode; description = $current.ErrorDescription }
    return New-WmiCallError -Method $Method -Code 4096 -Job $lastSeen -VmName $VmName
}

function Set-OneKvpItem {
    # One VM/key: Add when absent, Modify when the value differs, Remove when present and absent is
    # wished (never Add on an existing key: 32773). Runs after earlier items' writes: everything that can
    # throw is inside the try, whose catch records the error on this item.
    param ($Context, $System, [string]$VmName, $Item, [bool]$CheckMode)
    $entry = @{ key = $Item.key; before = $Item.before; after = $Item.before; changed = $false; error = $null }
    try {
        if ($null -eq $Item.method) { return $entry }
        if ($CheckMode) {
            $entry.after = $Item.wish
            $entry.changed = $true
            return $entry
        }
        $arguments = @{ TargetSystem = $System; DataItems = [string[]]@($Item.xml) }
        $answer = Invoke-CimMethod -InputObject $Context.service -MethodName $Item.method -Arguments $arguments
        $code = [int]$answer.ReturnValue
        $failure = $null
        if ($code -eq 4096) { $failure = Wait-KvpJob -Job $answer.Job -Method $Item.method -VmName $VmName }
        elseif ($code -ne 0) { $failure = New-WmiCallError -Method $Item.method -Code $code -Job $null -VmName $VmName }
        if ($null -ne $failure) {
            $entry.error = $failure
            return $entry
        }
        $entry.after = $Item.wish
        $entry.changed = $true
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -Service $null -VmName $VmName
    }
    return $entry
}

function Invoke-VmKvpSet {
    param ($Request)
    $result = @{ vms = @(); missing = @(); ambiguous = @{}; named_twice = @(); refused = @(); vm_list_errors = @() }
    $resolved = Resolve-SetVm -Request $Request -Result $result -Items $Request.params.changes
    if ($null -eq $resolved) { return $result }
    $changes = @(foreach ($change in @($Request.params.changes)) {
            @{ vm = $change.vm; key = [string]$change.key; value = $change.value; state = [string]$change.state }
        })
    $checkMode = [bool]$Request.check_mode
    # What reaches every kind of guest whole: the controller sends the limits (hyperv-facts section 8).
    $limits = $Request.params.limits
    $keyUnits = [int]$limits.key_units
    $keyBytes = [int]$limits.key_bytes
    $valueUnits = [int]$limits.value_units
    $valueBytes = [int]$limits.value_bytes

    # Read every VM's host items and check every item before the first write. A VM whose items cannot be
    # read gets its error and no change; an item that breaks a limit refuses the whole call.
    $context = Get-KvpContext
    $plan = @(foreach ($vm in $resolved.vms) {
            $name = [string]$vm.Name
            $readError = $null
            $system = $null
            $hostItems = $null
            $state = $null
            try {
                $system = Get-KvpSystem -Context $context -Vm $vm
                $hostRead = Get-KvpHostItem -System $system
                # An item that cannot be parsed could be any key: nothing is written to this VM.
                $unparsed = [int]$hostRead.unparsed
                if ($unparsed -gt 0) { throw [System.IO.InvalidDataException]::new("$unparsed of the VM's host items are not well-formed CIM-XML, so what it holds cannot be compared; nothing was written to it") }
                $hostItems = $hostRead.items
                $state = $vm.State.ToString()
            }
            catch {
                $readError = Get-ErrorRecordData -ErrorRecord $_ -VmName $name -Service $null
            }
            $seen = New-Object -TypeName 'System.Collections.Generic.Dictionary[string,bool]' -ArgumentList ([System.StringComparer]::Ordinal)
            $items = @(foreach ($wanted in $changes) {
                    if ($null -ne $wanted.vm -and -not [string]::Equals([string]$wanted.vm, $name, [System.StringComparison]::OrdinalIgnoreCase)) { continue }
                    $problem = Test-KvpText -Text $wanted.key -What 'key' -Units $keyUnits -Bytes $keyBytes
                    if ($wanted.key.Length -eq 0) { $problem = @{ reason = 'key_empty'; limit = 'at least 1 character' } }
                    if ($null -eq $problem -and $wanted.state -eq 'present') {
                        if ($null -eq $wanted.value) { $problem = @{ reason = 'value_missing'; limit = 'a string for state present' } }
                        else { $problem = Test-KvpText -Text ([string]$wanted.value) -What 'value' -Units $valueUnits -Bytes $valueBytes }
                    }
                    if ($null -eq $problem -and $seen.ContainsKey($wanted.key)) { $problem = @{ reason = 'key_twice'; limit = 'one change per key and VM' } }
                    $seen[$wanted.key] = $true
                    if ($null -ne $problem) {
                        $result.refused += @{ vm = $name; key = $wanted.key; reason = $problem.reason; limit = $problem.limit }
                        continue
                    }
                    if ($null -ne $readError) { continue }
                    $before = $null
                    if ($hostItems.ContainsKey($wanted.key)) { $before = $hostItems[$wanted.key] }
                    else {
                        # A key that differs only in case: which one the host would match is not documented.
                        foreach ($existing in $hostItems.psbase.Keys) {
                            if ([string]::Equals($existing, $wanted.key, [System.StringComparison]::OrdinalIgnoreCase)) {
                                $result.refused += @{ vm = $name; key = $wanted.key; reason = 'key_case_conflict'; limit = "the host item '$existing' differs only in case" }
                            }
                        }
                    }
                    $method = $null
                    $wish = $null
                    $xml = $null
                    if ($wanted.state -eq 'absent') {
                        if ($null -ne $before) { $method = 'RemoveKvpItems'; $xml = ConvertTo-KvpItemXml -Key $wanted.key -Value '' }
                    }
                    else {
                        $wish = [string]$wanted.value
                        if ($null -eq $before) { $method = 'AddKvpItems' }
                        elseif (-not [string]::Equals($before, $wish, [System.StringComparison]::Ordinal)) { $method = 'ModifyKvpItems' }
                        if ($null -ne $method) { $xml = ConvertTo-KvpItemXml -Key $wanted.key -Value $wish }
                    }
                    @{ key = $wanted.key; before = $before; wish = $wish; method = $method; xml = $xml }
                })
            if ($null -ne $readError) { $system = $null; $items = @() }
            @{ name = $name; requested_name = $resolved.requested[$vm.Id.ToString()]; id = $vm.Id.ToString(); state = $state; system = $system; items = $items; error = $readError }
        })
    if ($result.refused.Count) { return $result }

    $result.vms = @(Invoke-SetPlan -Plan $plan -Key 'items' -Context $context -CheckMode $checkMode)
    return $result
}

$operations['vm_kvp_info'] = ${function:Invoke-VmKvpInfo}
$operations['vm_kvp_set'] = ${function:Invoke-VmKvpSet}

# --- Guest Service Interface: files into guests with Copy-VMFile (vm_file_copy_*; hyperv-facts section 11) ---
# Copy-VMFile cannot read anything back from the guest, so the SHA-256 of what was last copied to a
# destination is kept as one of the VM's host KVP items (record_key), which the guest can read too.

function Get-HostFileDigest {
    # SHA-256 (lower-case hex) and size of a file on the host. File.OpenRead takes the path literally (no
    # wildcards); the controller sends only absolute paths, so no working directory is involved.
    param ([string]$Path)
    $stream = [System.IO.File]::OpenRead($Path)
    try {
        # The CryptoServiceProvider: SHA256.Create() gives SHA256Managed, which throws where FIPS mode is enforced.
        $sha = New-Object -TypeName System.Security.Cryptography.SHA256CryptoServiceProvider
        try { $hash = $sha.ComputeHash($stream) }
        finally { $sha.Dispose() }
        return @{ sha256 = ([System.BitConverter]::ToString($hash) -replace '-', '').ToLowerInvariant(); size = $stream.Length }
    }
    finally { $stream.Dispose() }
}

function Get-RecordedCopy {
    # The value of the record item on the VM's host items, or $null when there is none. An item that cannot
    # be parsed could be the record: then nothing can be said, and the VM is answered with an error.
    param ($Context, $Vm, [string]$RecordKey)
    $hostRead = Get-KvpHostItem -System (Get-KvpSystem -Context $Context -Vm $Vm)
    if ($hostRead.items.ContainsKey($RecordKey)) { return $hostRead.items[$RecordKey] }
    $unreadable = [int]$hostRead.unparsed
    if ($unreadable -gt 0) { throw [System.IO.InvalidDataException]::new("$unreadable of the VM's host items are not well-formed CIM-XML, so the checksum of what was last copied cannot be read") }
    return $null
}

function Select-CopyTarget {
    # The request's target for one VM: the one whose vm is the name that selected it (ignoring case, as
    # VM names compare), else the one for every VM (vm null); $null when there is neither.
    param ($Targets, [string]$Name)
    $common = $null
    foreach ($target in @($Targets)) {
        $vm = Get-RequestValue -Object $target -Name 'vm'
        if ($null -eq $vm) { $common = $target }
        elseif ([string]::Equals([string]$vm, $Name, [System.StringComparison]::OrdinalIgnoreCase)) { return $target }
    }
    return $common
}

function Get-FileCopyTarget {
    # One VM as a copy target: its state, Guest Service Interface (by GUID, never by its localized Name)
    # and the record of the last copy to its destination. An error reading it is answered on that VM.
    param ($Context, $Vm, $RequestedName, [string]$GsiGuid, $Targets)
    $name = [string]$Vm.Name
    $entry = @{ name = $name; requested_name = $RequestedName; id = $Vm.Id.ToString(); state = $null; gsi_enabled = $null; gsi_status = $null; recorded = $null; error = $null }
    try {
        $target = Select-CopyTarget -Targets $Targets -Name ([string]$RequestedName)
        if ($null -eq $target) { throw [System.ArgumentException]::new("the request has no target for VM '$name'") }
        $entry.state = $Vm.State.ToString()
        foreach ($ic in @(Hyper-V\Get-VMIntegrationService -VM $Vm)) {
            if ((Get-IcGuid $ic) -eq $GsiGuid) {
                $entry.gsi_enabled = [bool]$ic.Enabled
                $entry.gsi_status = ConvertTo-EnumName $ic.PrimaryOperationalStatus
            }
        }
        $entry.recorded = Get-RecordedCopy -Context $Context -Vm $Vm -RecordKey ([string]$target.record_key)
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $name -Service $null
    }
    return $entry
}

function Invoke-VmFileCopyPlan {
    # Read only (the same in check mode): what the controller needs to decide before anything is sent.
    param ($Request)
    $gsiGuid = ([string]$Request.params.gsi_guid).Trim('{', '}').ToUpperInvariant()
    $targets = @($Request.params.targets)
    $result = @{ vms = @(); missing = @(); ambiguous = @{}; named_twice = @(); vm_list_errors = @(); source = $null; source_error = $null }
    $sourcePath = $Request.params.source
    if ($null -ne $sourcePath) {
        try { $result.source = Get-HostFileDigest -Path ([string]$sourcePath) }
        catch { $result.source_error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $null }
    }
    $resolved = Resolve-SetVm -Request $Request -Result $result -Items $Request.params.targets
    if ($null -eq $resolved) { return $result }
    $context = Get-KvpContext
    $result.vms = @(foreach ($vm in $resolved.vms) { Get-FileCopyTarget -Context $context -Vm $vm -RequestedName $resolved.requested[$vm.Id.ToString()] -GsiGuid $gsiGuid -Targets $targets })
    return $result
}

function Copy-OneVmFile {
    # Copy-VMFile to one VM (always -Force: the controller decided that this copy is wanted), then the
    # record of it. Runs after earlier VMs' copies: everything that can throw is inside the try, so later
    # VMs are still copied and the source is still removed. $Target: a plan entry (name, id, destination,
    # create_dirs and record_key, read from the request before the first copy).
    param ($Context, $Target, [string]$Source, [string]$RecordValue)
    $name = [string]$Target.name
    $entry = @{ name = $name; requested_name = $Target.requested_name; id = $Target.id; copied = $false; recorded = $false; error = $null }
    try {
        $recordKey = [string]$Target.record_key
        $null = Hyper-V\Copy-VMFile -VM $Target.vm -SourcePath $Source -DestinationPath ([string]$Target.destination) -FileSource Host -CreateFullPath:([bool]$Target.create_dirs) -Force
        $entry.copied = $true
        $before = Get-RecordedCopy -Context $Context -Vm $Target.vm -RecordKey $recordKey
        $method = 'AddKvpItems'
        if ($null -ne $before) { $method = 'ModifyKvpItems' }
        $item = @{ key = $recordKey; before = $before; wish = $RecordValue; method = $method; xml = ConvertTo-KvpItemXml -Key $recordKey -Value $RecordValue }
        $system = Get-KvpSystem -Context $Context -Vm $Target.vm
        $written = Set-OneKvpItem -Context $Context -System $system -VmName $name -Item $item -CheckMode $false
        if ($null -eq $written.error) { $entry.recorded = $true }
        else { $entry.error = $written.error }
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $name -Service $null
    }
    return $entry
}

function Remove-CopySource {
    # The controller's upload directory (made for this task by ansible's mkdtemp) with the upload in it,
    # removed whatever happened before: @{ removed; error }. A directory already gone counts as removed, so
    # that a second cleanup call after a failed one answers the truth.
    param ([string]$Path)
    $removal = @{ removed = $false; error = $null }
    try {
        if (Test-Path -LiteralPath $Path) { Remove-Item -LiteralPath $Path -Recurse -Force }
        $removal.removed = -not (Test-Path -LiteralPath $Path)
    }
    catch {
        $removal.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $null
    }
    return $removal
}

function Invoke-VmFileCopy {
    param ($Request)
    $result = @{ vms = @(); missing = @(); ambiguous = @{}; named_twice = @(); vm_list_errors = @(); source_removed = $null; remove_error = $null }
    # Every request value is read before the first copy (nothing may throw after it).
    $source = [string]$Request.params.source
    $uploadDir = $Request.params.upload_dir
    $recordValue = [string]$Request.params.record_value
    $targets = @($Request.params.targets)
    $checkMode = [bool]$Request.check_mode
    try {
        $resolved = Resolve-SetVm -Request $Request -Result $result -Items $Request.params.targets
        if ($null -ne $resolved -and @($resolved.vms).Count -and -not $checkMode) {
            $context = Get-KvpContext
            $plan = @(foreach ($vm in $resolved.vms) {
                    $id = $vm.Id.ToString()
                    $name = [string]$vm.Name
                    $target = Select-CopyTarget -Targets $targets -Name ([string]$resolved.requested[$id])
                    if ($null -eq $target) { throw [System.ArgumentException]::new("the request has no target for VM '$name'") }
                    @{ vm = $vm; name = $name; id = $id; requested_name = $resolved.requested[$id]; destination = [string]$target.destination; create_dirs = [bool]$target.create_dirs; record_key = [string]$target.record_key }
                })
            $result.vms = @(foreach ($entry in $plan) { Copy-OneVmFile -Context $context -Target $entry -Source $source -RecordValue $recordValue })
        }
    }
    finally {
        if ($null -ne $uploadDir -and -not $checkMode) {
            $removal = Remove-CopySource -Path ([string]$uploadDir)
            $result.source_removed = $removal.removed
            $result.remove_error = $removal.error
        }
    }
    return $result
}

$operations['vm_file_copy_plan'] = ${function:Invoke-VmFileCopyPlan}
$operations['vm_file_copy'] = ${function:Invoke-VmFileCopy}

# --- The inventory plugin's one read (vm_inventory): every VM with what it needs to make a host of it ---

function Get-VmInventoryEntry {
    # One VM: its integration services (as vm_integration_service_info reads them) and the intrinsic KVP
    # items its guest reports (as vm_kvp_info reads them; null and the reason when there are none). An
    # error reading its integration services is answered on that VM; one reading its KVP component keeps
    # the integration services read ('read_error' and kvp_error). The other VMs are still read.
    param ($Context, $Vm, [string]$KvpGuid)
    try {
        $entry = Get-VmIntegrationDetail -Vm $Vm -RequestedName $null
    }
    catch {
        $unread = [ordered]@{ heartbeat = $null; integration_services_version = $null; integration_services_state = $null; integration_services = @(); intrinsic_items = $null; guest_items_unavailable = $null; unparsed_items = 0; kvp_error = $null }
        return New-VmReadFailure -Vm $Vm -RequestedName $null -Unread $unread -ErrorRecord $_
    }
    $entry.intrinsic_items = $null
    $entry.guest_items_unavailable = $null
    $entry.unparsed_items = 0
    $entry.kvp_error = $null
    try {
        # Whether Key-Value Pair Exchange is on comes from the services just read (by GUID); only the
        # guest's half is read, not the host's items.
        $enabled = $null
        foreach ($service in $entry.integration_services) {
            if ($service.guid -eq $KvpGuid) { $enabled = $service.enabled }
        }
        $guestRead = Read-KvpGuestItem -Context $Context -Vm $Vm -State $entry.state -Enabled $enabled
        $entry.intrinsic_items = $guestRead.intrinsic
        $entry.guest_items_unavailable = $guestRead.unavailable
        $entry.unparsed_items = $guestRead.unparsed
    }
    catch {
        $entry.guest_items_unavailable = 'read_error'
        $entry.kvp_error = Get-ErrorRecordData -ErrorRecord $_ -VmName ([string]$Vm.Name) -Service 'key_value_pair_exchange'
    }
    return $entry
}

function Invoke-VmInventory {
    param ($Request)
    $kvpGuid = ([string]$Request.params.kvp_guid).Trim('{', '}').ToUpperInvariant()
    $resolved = Resolve-VmName -Names $null
    # Only the guests' half of Key-Value Pair Exchange is read: no management service. If the VMs'
    # Msvm_ComputerSystem cannot be listed, every VM still gets its integration services, and the error.
    $context = @{ service = $null; systems = $null; error = $null }
    try { $context.systems = Get-KvpSystemMap } catch { $context.error = $_ }
    $vms = @(foreach ($vm in $resolved.vms) { Get-VmInventoryEntry -Context $context -Vm $vm -KvpGuid $kvpGuid })
    New-VmInfoAnswer -Resolved $resolved -Vms $vms
}

$operations['vm_inventory'] = ${function:Invoke-VmInventory}
