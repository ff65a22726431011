# Regression fixture for tests/unit/pscheck/test_structure_rules.py (test_an_answer_found_through_a_cycle_...):
# an older draft of two functions of hyperv_host.ps1, which the test puts in place of the shipped ones. Their
# Get-ErrorRecordData -VmName $entry.name ($entry holding the $RequestedName that comes from Resolve-VmName's
# answer, which holds Get-ErrorRecordData's) makes the shape inference meet a cycle. Not shipped, never run.
function Get-FileCopyTarget {
    # One VM as a copy target: its state, Guest Service Interface (by GUID, never by its localized Name)
    # and the record of the last copy. An error reading it is answered on that VM.
    param ($Context, $Vm, $RequestedName, [string]$GsiGuid, [string]$RecordKey)
    $name = [string]$Vm.Name
    $entry = @{ name = $name; requested_name = $RequestedName; id = $Vm.Id.ToString(); state = $null; gsi_enabled = $null; gsi_status = $null; recorded = $null; error = $null }
    try {
        $entry.state = $Vm.State.ToString()
        foreach ($ic in @(Hyper-V\Get-VMIntegrationService -VM $Vm)) {
            if ((Get-IcGuid $ic) -eq $GsiGuid) {
                $entry.gsi_enabled = [bool]$ic.Enabled
                $entry.gsi_status = ConvertTo-EnumName $ic.PrimaryOperationalStatus
            }
        }
        $entry.recorded = Get-RecordedCopy -Context $Context -Vm $Vm -RecordKey $RecordKey
    }
    catch {
        $entry.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $entry.name -Service $null
    }
    return $entry
}

function Invoke-VmFileCopyPlan {
    # Read only (the same in check mode): what the controller needs to decide before anything is sent.
    param ($Request)
    $gsiGuid = ([string]$Request.params.gsi_guid).Trim('{', '}').ToUpperInvariant()
    $recordKey = [string]$Request.params.record_key
    # GetTempPath: the connecting user's temporary directory, where the controller's upload goes.
    $result = @{ vms = @(); missing = @(); ambiguous = @{}; vm_list_errors = @(); temp_dir = [System.IO.Path]::GetTempPath(); source = $null; source_error = $null }
    $sourcePath = $Request.params.source
    if ($null -ne $sourcePath) {
        try { $result.source = Get-HostFileDigest -Path ([string]$sourcePath) }
        catch { $result.source_error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $null }
    }
    $resolved = Resolve-VmName -Names @($Request.params.vm_names)
    if (-not (Add-ResolutionAnswer -Resolved $resolved -Result $result)) { return $result }
    $context = Get-KvpContext
    $result.vms = @(foreach ($vm in $resolved.vms) { Get-FileCopyTarget -Context $context -Vm $vm -RequestedName $resolved.requested[$vm.Id.ToString()] -GsiGuid $gsiGuid -RecordKey $recordKey })
    return $result
}

