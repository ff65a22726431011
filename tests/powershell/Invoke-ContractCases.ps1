# Runs ContractCases.Tests.ps1 with Pester 5 and exits non-zero when a case fails. Pester 5 must be
# installed (the CI workflow installs it from the PowerShell Gallery).
[CmdletBinding()]
param (
    # Optional NUnit XML report, e.g. for a CI artifact.
    [string]$ResultPath
)

$ErrorActionPreference = 'Stop'
Import-Module -Name Pester -MinimumVersion 5.0.0
Write-Host ("PowerShell {0} ({1}), Pester {2}" -f $PSVersionTable.PSVersion, $PSVersionTable.PSEdition, (Get-Module -Name Pester).Version)

$configuration = New-PesterConfiguration
$configuration.Run.Path = Join-Path -Path $PSScriptRoot -ChildPath 'ContractCases.Tests.ps1'
$configuration.Run.Exit = $true
$configuration.Output.Verbosity = 'Detailed'
if ($ResultPath) {
    $configuration.TestResult.Enabled = $true
    $configuration.TestResult.OutputFormat = 'NUnitXml'
    $configuration.TestResult.OutputPath = $ResultPath
}
Invoke-Pester -Configuration $configuration
