"""Test-only action plugin: one protocol call through the task's real winrm connection
(`_low_level_execute_command`), as the collection's host actions do. Built from
docs/dev/powershell-protocol.md, not from plugins/."""

from __future__ import annotations

import base64
import json
import re
import uuid

from ansible.plugins.action import ActionBase

BOOTSTRAP = "# hyperv.integration bootstrap protocol=1\n$lines = @($input | Where-Object { $_ })\n"
# A stand-in library: the marker, and a table defining the one operation asked for (the lab reads both).
LIBRARY = (
    "# HYPERV_INTEGRATION_LIBRARY protocol=1\nparam ([string]$RequestJson)\n"
    "function Invoke-StandIn { param ($Request) }\n$operations = @{ '%s' = ${function:Invoke-StandIn} }\n"
)


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        nonce = uuid.uuid4().hex
        request = {
            "protocol": 1,
            "nonce": nonce,
            "operation": args["operation"],
            "check_mode": bool(self._task.check_mode),
            "params": args.get("params", {}),
        }
        stdin = "\n".join(
            base64.b64encode(text.encode("utf-8")).decode()
            for text in (LIBRARY % args["operation"], json.dumps(request))
        )
        command = BOOTSTRAP
        if args.get("pre_encoded"):
            # The winrm connection leaves an already encoded PowerShell command line alone.
            shell = self._connection._shell
            command = shell._encode_script(BOOTSTRAP, strict_mode=False, preserve_rc=False)
        res = self._low_level_execute_command(command, in_data=stdin.encode("ascii"))
        match = re.search(
            rf"HYPERV_INTEGRATION_BEGIN_{nonce}\r?\n(.*?)\r?\nHYPERV_INTEGRATION_END_{nonce}", res["stdout"], re.S
        )
        result["rc"] = res["rc"]
        result["stderr"] = res["stderr"]
        if not match:
            result["failed"] = True
            result["msg"] = f"no response markers (rc {res['rc']}): {res['stderr']}"
            return result
        result["response"] = json.loads(base64.b64decode(match.group(1)).decode("utf-8"))
        return result
