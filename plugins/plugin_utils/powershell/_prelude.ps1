# HYPERV_INTEGRATION_LIBRARY protocol=1
# hyperv.integration PowerShell library, assembled from three parts: this prelude, one body
# (hyperv_host.ps1 or windows_guest.ps1) and _dispatch.ps1. It reads one request (JSON data, never
# code), does one operation and writes the answer as base64 JSON between markers
# (docs/dev/powershell-protocol.md). bootstrap.ps1 checks the PowerShell version and language mode
# before this text is compiled: a #Requires line would do nothing here, because #Requires is checked
# for script files only, not for [ScriptBlock]::Create text (docs/dev/powershell-facts.md).
[CmdletBinding()]
param (
    [Parameter(Mandatory = $true)]
    [string]
    $RequestJson
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

function Get-RequestValue {
    # The one way to read a request key the schema marks optional (docs/dev/powershell-protocol.md
    # section 2): under strict mode, reading a property the PSCustomObject from ConvertFrom-Json lacks
    # throws (docs/dev/powershell-facts.md). For scalar values: return would unroll an array.
    param ($Object, [string]$Name)
    if ($null -eq $Object) { return $null }
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return $property.Value
}

# KVP items reach the host as CIM-XML (docs/dev/hyperv-facts.md section 8): text XML 1.0 cannot hold does
# not arrive whole, so both libraries refuse it before writing.
$XmlCharacters = 'characters XML 1.0 allows (no control characters but tab, LF and CR; no lone surrogates)'

function Test-XmlText {
    # $true when XML 1.0 can hold every character of the text (System.Xml.XmlConvert.VerifyXmlChars).
    param ([string]$Text)
    try { $null = [System.Xml.XmlConvert]::VerifyXmlChars($Text) }
    catch { return $false }
    return $true
}

function Test-ConvertedDate {
    # $true when ConvertFrom-Json made a [datetime] of any string of the request (PowerShell 6 and later:
    # see _dispatch.ps1). The request holds only PSCustomObjects, arrays and scalars.
    param ($Value)
    # -DateKind Offset (7.5+, also as a session default) makes a DateTimeOffset instead.
    if ($Value -is [datetime] -or $Value -is [System.DateTimeOffset]) { return $true }
    if ($Value -is [System.Management.Automation.PSCustomObject]) {
        foreach ($property in $Value.PSObject.Properties) { if (Test-ConvertedDate -Value $property.Value) { return $true } }
    }
    elseif ($Value -is [array]) {
        foreach ($element in $Value) { if (Test-ConvertedDate -Value $element) { return $true } }
    }
    return $false
}

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
