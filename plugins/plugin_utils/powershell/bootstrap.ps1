# hyperv.integration bootstrap protocol=1
# Fixed text sent as -EncodedCommand. Standard input carries two base64 lines: the library, then the
# request. No value from the user is ever part of this text or of the library.
$ErrorActionPreference = 'Stop'
# Before anything else, with constructs every language mode allows: the library needs FullLanguage
# (it decodes base64 and compiles a script block, which Constrained Language Mode forbids) and
# Windows PowerShell 5.1 or later. Otherwise one fixed line says why, for the controller to explain
# (docs/dev/powershell-protocol.md section 6; docs/dev/powershell-facts.md).
$mode = [string]$ExecutionContext.SessionState.LanguageMode
if ($mode -ne 'FullLanguage') {
    Write-Output -InputObject "HYPERV_INTEGRATION_UNSUPPORTED language_mode=$mode"
    exit 1
}
$version = $PSVersionTable.PSVersion
if ($version.Major -lt 5 -or ($version.Major -eq 5 -and $version.Minor -lt 1)) {
    Write-Output -InputObject "HYPERV_INTEGRATION_UNSUPPORTED powershell_version=$version"
    exit 1
}
$lines = @($input | ForEach-Object -Process { ([string]$_).Trim() } | Where-Object -FilterScript { $_ })
$utf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
$library = $utf8.GetString([System.Convert]::FromBase64String($lines[0]))
$request = $utf8.GetString([System.Convert]::FromBase64String($lines[1]))
& ([System.Management.Automation.ScriptBlock]::Create($library)) -RequestJson $request
