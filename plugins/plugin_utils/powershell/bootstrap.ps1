# hyperv.integration bootstrap protocol=1
# Fixed text sent as -EncodedCommand. Standard input carries two base64 lines: the library, then the
# request. No value from the user is ever part of this text or of the library.
$ErrorActionPreference = 'Stop'
$lines = @($input | ForEach-Object -Process { ([string]$_).Trim() } | Where-Object -FilterScript { $_ })
$utf8 = New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false
$library = $utf8.GetString([System.Convert]::FromBase64String($lines[0]))
$request = $utf8.GetString([System.Convert]::FromBase64String($lines[1]))
& ([System.Management.Automation.ScriptBlock]::Create($library)) -RequestJson $request
