# hyperv.integration bootstrap protocol=1
# Fixed text sent as -EncodedCommand. Standard input carries two base64 lines: the library, then the
# request. No value from the user is ever part of this text or of the library.
$ErrorActionPreference = 'Stop'
# Standard input is read first, whatever follows: over WinRM the client sends it after the command has
# started, and a process that exits before reading it can make that send fail, losing the answer.
$lines = @($input | ForEach-Object -Process { ([string]$_).Trim() } | Where-Object -FilterScript { $_ })
# Then, with constructs every language mode but NoLanguage/RestrictedLanguage allows: the library needs FullLanguage
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
$utf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
$library = $utf8.GetString([System.Convert]::FromBase64String($lines[0]))
$request = $utf8.GetString([System.Convert]::FromBase64String($lines[1]))
& ([System.Management.Automation.ScriptBlock]::Create($library)) -RequestJson $request
