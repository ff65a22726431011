# Stub of the Hyper-V module for the contract runner (tests/powershell/README.md): the five cmdlets the
# host library calls, module-qualified (Hyper-V\Get-VM), over one case's stub state (..\StubLab.ps1).
# Errors are what the lab's faults describe: VirtualizationException with the lab's category.

Set-StrictMode -Version 3.0
. (Join-Path -Path $PSScriptRoot -ChildPath '..\StubLab.ps1')

if (-not ('Microsoft.HyperV.PowerShell.VirtualizationException' -as [type])) {
    # The exception type the real module throws; the library reports its full name.
    Add-Type -TypeDefinition @'
namespace Microsoft.HyperV.PowerShell {
    public class VirtualizationException : System.Exception {
        public VirtualizationException(string message) : base(message) { }
    }
}
'@
}

function New-VirtualizationError {
    param ([string]$Message, [System.Management.Automation.ErrorCategory]$Category, $Target = $null)
    $exception = New-Object -TypeName 'Microsoft.HyperV.PowerShell.VirtualizationException' -ArgumentList $Message
    return New-StubErrorRecord -Exception $exception -ErrorId 'VirtualizationException' -Category $Category -Target $Target
}

function ConvertTo-StubVm {
    # What Get-VM gives, as far as the library reads it (enums as their names: it calls ToString()).
    param ($Model)
    [pscustomobject]@{
        Name                       = $Model.Name
        Id                         = $Model.Id
        State                      = $Model.State
        Heartbeat                  = Get-StubHeartbeat $Model
        IntegrationServicesVersion = $Model.Version
        IntegrationServicesState   = $Model.IcState
        StubModel                  = $Model
    }
}

function Get-VM {
    [CmdletBinding()]
    param ([Parameter(Position = 0)] [string[]]$Name)
    $lab = Get-StubLab
    if ($Name) { throw 'stub Get-VM: -Name treats [ ] * ? as wildcards; the library lists every VM' }
    if ($null -ne (Use-StubFault -Type 'access_denied')) {
        $message = 'You do not have the required permission to complete this task. Contact the authorization policy ' +
            "administrator for the computer '$($lab.HostName)'."
        $PSCmdlet.ThrowTerminatingError((New-VirtualizationError -Message $message -Category PermissionDenied))
    }
    foreach ($model in $lab.Vms) { ConvertTo-StubVm $model }
}

function Get-VMIntegrationService {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] $VM, [string[]]$Name)
    if ($Name) { throw 'stub Get-VMIntegrationService: an IC Name is localized; the library selects ICs by GUID' }
    $model = $VM.StubModel
    $fault = Use-StubFault -Type 'vm_read_error' -VmName $model.Name
    if ($null -ne $fault) {
        $message = [string](Get-StubMember $fault 'message' "Hyper-V was unable to find a virtual machine with ID $($model.Id).")
        $PSCmdlet.ThrowTerminatingError((New-VirtualizationError -Message $message -Category ObjectNotFound -Target $VM))
    }
    $language = (Get-StubLab).Language
    foreach ($key in @($model.Ics.Keys)) {
        $ic = $model.Ics[$key]
        $status = Get-StubIcStatus $model $ic
        [pscustomobject]@{
            VMName                     = $model.Name
            Name                       = $ic.Definition.Names[$language]
            Id                         = 'Microsoft:{0}\{1}' -f $model.Id.ToString().ToUpperInvariant(), $ic.Definition.Guid
            Enabled                    = $ic.Enabled
            PrimaryOperationalStatus   = $status.Primary
            SecondaryOperationalStatus = $status.Secondary
            StubModel                  = $model
            StubKey                    = $key
        }
    }
}

function Set-StubIcEnabled {
    # One Enable-/Disable-VMIntegrationService: a write only when it changes something; write_error fires
    # only then (tests/lab/README.md, Faults).
    param ($IntegrationService, [bool]$Enabled, $Cmdlet)
    $model = $IntegrationService.StubModel
    $ic = $model.Ics[$IntegrationService.StubKey]
    if ($ic.Enabled -eq $Enabled) { return }
    $fault = Use-StubFault -Type 'write_error' -VmName $model.Name -Service $ic.Definition.Key
    if ($null -ne $fault) {
        $verb = if ($Enabled) { 'enable' } else { 'disable' }
        $default = "Failed to $verb integration service '$($IntegrationService.Name)' of virtual machine '$($model.Name)'."
        $message = [string](Get-StubMember $fault 'message' $default)
        $Cmdlet.ThrowTerminatingError((New-VirtualizationError -Message $message -Category NotSpecified -Target $IntegrationService))
    }
    $ic.Enabled = $Enabled
    $lab = Get-StubLab
    $lab.Writes = $lab.Writes + 1
}

function Enable-VMIntegrationService {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] $VMIntegrationService)
    foreach ($one in @($VMIntegrationService)) { Set-StubIcEnabled -IntegrationService $one -Enabled $true -Cmdlet $PSCmdlet }
}

function Disable-VMIntegrationService {
    [CmdletBinding()]
    param ([Parameter(Mandatory = $true)] $VMIntegrationService)
    foreach ($one in @($VMIntegrationService)) { Set-StubIcEnabled -IntegrationService $one -Enabled $false -Cmdlet $PSCmdlet }
}

function Copy-VMFile {
    # Not modelled: the vm_file_copy cases are skipped (ContractRunner.ps1). A stub all the same, so that a
    # call can never reach a real Hyper-V module on the machine that runs the stubs.
    [CmdletBinding()]
    param ($VM, [string]$SourcePath, [string]$DestinationPath, [string]$FileSource, [switch]$CreateFullPath, [switch]$Force)
    throw 'stub Copy-VMFile: Guest Service Interface copies are not modelled by the stubs'
}

Export-ModuleMember -Function @(
    'Get-VM', 'Get-VMIntegrationService', 'Enable-VMIntegrationService', 'Disable-VMIntegrationService', 'Copy-VMFile',
    'Initialize-StubLab', 'Get-StubLab', 'Get-StubLabView', 'Get-StubUnsupported', 'Get-StubVmId',
    'Get-StubMember', 'Get-StubGuid', 'Get-StubRegistryOrder', 'Use-StubFault', 'New-StubErrorRecord'
)
