# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What both guest modules' action plugins do: Windows through PowerShell, anything else runs the module.

Internal to this collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase

from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import CallFailed


class GuestAction(ActionBase):
    """Subclasses set MODULE (the real module for POSIX guests) and implement ``run_windows``."""

    TRANSFERS_FILES = False
    MODULE = ""

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        self._supports_check_mode = True
        self._supports_async = False
        result = super().run(tmp, task_vars)
        del tmp
        if not _powershell.is_windows(self):
            # Linux (and any other POSIX guest): the real module in plugins/modules does the work.
            result.update(
                self._execute_module(module_name=self.MODULE, module_args=self._task.args, task_vars=task_vars)
            )
            return result
        return self.run_windows(result, _powershell.target_label(self, task_vars))

    def run_windows(self, result: dict[str, t.Any], guest: str) -> dict[str, t.Any]:
        raise NotImplementedError


class GuestInfoAction(GuestAction):
    """An info module without options: on Windows, what ``read_windows`` answers, failures as messages."""

    def run_windows(self, result: dict[str, t.Any], guest: str) -> dict[str, t.Any]:
        self.validate_argument_spec(argument_spec={})
        try:
            result.update(self.read_windows(guest))
        except CallFailed as exc:
            result.update(failed=True, msg=str(exc))
        return result

    def read_windows(self, guest: str) -> dict[str, t.Any]:
        raise NotImplementedError
