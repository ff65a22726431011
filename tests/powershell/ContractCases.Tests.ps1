# Pester 5: every golden contract case (tests/contract) through the real library with stub cmdlets.
# Run it with Invoke-ContractCases.ps1 (Windows PowerShell 5.1 or PowerShell 7 on Windows).

BeforeDiscovery {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'ContractRunner.ps1')
    Import-ContractStub
    $cases = @(foreach ($file in @(Get-ContractCaseFile)) {
            $case = Read-ContractCase -Path $file.FullName
            @{
                Name        = '{0}/{1}' -f $file.Directory.Name, $file.BaseName
                Path        = $file.FullName
                Description = [string]$case.description
                SkipReason  = Get-ContractSkipReason -Case $case
            }
        })
}

BeforeAll {
    . (Join-Path -Path $PSScriptRoot -ChildPath 'ContractRunner.ps1')
    Import-ContractStub
}

Describe 'hyperv.integration contract cases through the shipped PowerShell library' {
    It '<Name>: <Description>' -ForEach $cases {
        if ($SkipReason) {
            Set-ItResult -Skipped -Because $SkipReason
            return
        }
        $problems = @(Invoke-ContractCase -Path $Path)
        $problems -join [System.Environment]::NewLine | Should -BeNullOrEmpty
    }
}
