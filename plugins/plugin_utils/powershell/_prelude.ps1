#Requires -Version 5.1
# HYPERV_INTEGRATION_LIBRARY protocol=1
# hyperv.integration PowerShell library, assembled from three parts: this prelude, one body
# (hyperv_host.ps1 or windows_guest.ps1) and _dispatch.ps1. It reads one request (JSON data, never
# code), does one operation and writes the answer as base64 JSON between markers
# (docs/dev/powershell-protocol.md).
[CmdletBinding()]
param (
    [Parameter(Mandatory = $true)]
    [string]
    $RequestJson
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

function Get-ErrorRecordData {
    # Untyped parameters: [string] would turn $null into '' and the protocol says null.
    param ($ErrorRecord, $VmName, $Service)
    # The innermost exception often holds the reason (Start-Service wraps the Win32 error).
    $message = $ErrorRecord.Exception.Message
    $inner = $ErrorRecord.Exception
    while ($null -ne $inner.InnerException) { $inner = $inner.InnerException }
    if ($inner -ne $ErrorRecord.Exception -and $inner.Message -and -not $message.Contains($inner.Message)) {
        $message = "$message $($inner.Message)"
    }
    @{
        type     = $ErrorRecord.Exception.GetType().FullName
        message  = $message
        # Category is not localized, unlike the message: the controller decides on it.
        category = $ErrorRecord.CategoryInfo.Category.ToString()
        vm       = $VmName
        service  = $Service
    }
}
