# Manifest of the stub Hyper-V module (tests/powershell/README.md). Its name must be Hyper-V: the
# library calls Hyper-V\Get-VM, and a module-qualified name resolves to the loaded module of that name.
@{
    RootModule        = 'Hyper-V.psm1'
    ModuleVersion     = '0.0.1'
    GUID              = '5b1f2c8e-7a43-4d1e-9c55-0f3a6e2b9d11'
    Author            = 'hyperv.integration contributors'
    Description       = 'Test stub of the Hyper-V cmdlets the hyperv.integration library calls; not the real module.'
    PowerShellVersion = '5.1'
    FunctionsToExport = @(
        'Get-VM', 'Get-VMIntegrationService', 'Enable-VMIntegrationService', 'Disable-VMIntegrationService', 'Copy-VMFile',
        'Initialize-StubLab', 'Get-StubLab', 'Get-StubLabView', 'Get-StubUnsupported', 'Get-StubVmId',
        'Get-StubMember', 'Get-StubGuid', 'Get-StubRegistryOrder', 'Use-StubFault', 'New-StubErrorRecord'
    )
    CmdletsToExport   = @()
    VariablesToExport = @()
    AliasesToExport   = @()
}
