# Test-only callback: appends every task result as one JSON line to $RESULT_LOG, so the integration
# tests can assert on what each task returned without scraping screen output.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: result_log
type: aggregate
short_description: write task results as JSON lines (tests only)
description: Appends one JSON object per task result to the file named by RESULT_LOG.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "result_log"
    CALLBACK_NEEDS_ENABLED = False

    def _write(self, result, status: str) -> None:
        path = os.environ.get("RESULT_LOG")
        if not path:
            return
        record = {
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "status": status,
            "result": result._result,
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        self._write(result, "failed")

    def v2_runner_on_unreachable(self, result) -> None:
        self._write(result, "unreachable")

    def v2_runner_on_skipped(self, result) -> None:
        self._write(result, "skipped")
