# Dispatch: the body defined $operations (operation name -> script block taking -Request).
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
    $response.error = Get-ErrorRecordData -ErrorRecord $_ -VmName $null -Service $null
}

$json = ConvertTo-Json -InputObject $response -Depth 10 -Compress
$encoded = [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($json))
Write-Output -InputObject "HYPERV_INTEGRATION_BEGIN_$($request.nonce)"
Write-Output -InputObject $encoded
Write-Output -InputObject "HYPERV_INTEGRATION_END_$($request.nonce)"
