# Dispatch: the body defined $operations (operation name -> script block taking -Request).
# PowerShell 6 and later parse JSON with Newtonsoft.Json, which turns a string shaped like a timestamp
# ('2024-01-01T10:00:00', '/Date(0)/') into a [datetime]: a VM so named would no longer be its name.
# Windows PowerShell 5.1 converts only the escaped form '\/Date(0)\/', which the controller never
# writes. So a converted string fails the call before anything is read or written
# (docs/dev/powershell-facts.md, "JSON dates").
$request = ConvertFrom-Json -InputObject $RequestJson
$response = @{ protocol = 1; operation = $request.operation; ok = $true; result = $null; error = $null }
try {
    if (Test-ConvertedDate -Value $request) {
        throw [System.NotSupportedException]::new("PowerShell $($PSVersionTable.PSVersion) turned a text of the request that looks like a timestamp into a date (ConvertFrom-Json does so from PowerShell 6 on), so it cannot be used as it was given. Nothing was done; Windows PowerShell 5.1 (powershell.exe) keeps such text as it is")
    }
    if (-not $operations.ContainsKey([string]$request.operation)) {
        throw [System.ArgumentException]::new("unknown operation '$($request.operation)'")
    }
    $response.result = & $operations[[string]$request.operation] -Request $request
}
catch {
    $response.ok = $false
    $response.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $null
}

$json = ConvertTo-Json -InputObject $response -Depth 10 -Compress
$encoded = [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($json))
Write-Output -InputObject "HYPERV_INTEGRATION_BEGIN_$($request.nonce)"
Write-Output -InputObject $encoded
Write-Output -InputObject "HYPERV_INTEGRATION_END_$($request.nonce)"
