"""The controller words a failed WMI call the host library answers as numbers."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.integration.plugins.plugin_utils import _wmi_return
from ansible_collections.hyperv.integration.plugins.plugin_utils._call_failure import is_permission_denied


def failure(code: int, job: dict[str, Any] | None = None) -> dict[str, Any]:
    """As New-WmiCallError answers it."""
    return {
        "type": _wmi_return.ERROR_TYPE,
        "message": "ModifyKvpItems answered %d" % code,
        "category": "NotSpecified",
        "vm": "web01",
        "service": None,
        "method": "ModifyKvpItems",
        "code": code,
        "job": job,
    }


def test_a_return_value_gets_its_meaning_and_category() -> None:
    worded = _wmi_return.worded(failure(32775))
    assert worded["message"] == "ModifyKvpItems answered 32775 (Invalid state for this operation)"
    assert worded["category"] == "InvalidOperation"
    assert worded["vm"] == "web01" and worded["code"] == 32775


def test_access_denied_is_recognised_as_a_permission_problem() -> None:
    worded = _wmi_return.worded(failure(32769))
    assert is_permission_denied(worded["category"], worded["type"])


def test_an_undocumented_value_is_said_to_be_one() -> None:
    assert _wmi_return.worded(failure(1))["message"] == "ModifyKvpItems answered 1 (an undocumented return value)"


def test_a_failed_job_shows_its_own_error_code_not_a_return_value_meaning() -> None:
    job = {"state": 10, "error_code": 32769, "description": "The operation failed."}
    worded = _wmi_return.worded(failure(4096, job))
    assert worded["message"] == (
        "ModifyKvpItems answered 4096 (Method Parameters Checked - Job Started); its job ended in state "
        "Exception (10) with error code 32769: The operation failed."
    )
    # The job's ErrorCode is the job's own: it is not taken for the method's 32769 (Access Denied).
    assert worded["category"] == "NotSpecified"


def test_a_job_still_pending_says_the_change_may_still_happen() -> None:
    # Every state but the four ended ones (7, 8, 9, 10) is one the job passes through (msvm-concretejob.md:
    # Shutting Down moves on to Completed, Terminated or Killed); a vendor state is not taken for an end.
    for state, name in (
        (2, "New"),
        (3, "Starting"),
        (4, "Running"),
        (5, "Suspended"),
        (6, "Shutting Down"),
        (11, "Service"),
        (32768, "an undocumented state"),
    ):
        worded = _wmi_return.worded(failure(4096, {"state": state, "error_code": 0, "description": ""}))
        assert "its job was still %s (%d)" % (name, state) in worded["message"]
        assert worded["message"].endswith("so the change may still happen")


def test_a_job_that_completed_with_an_error_code_is_a_failure_and_an_unset_code_says_so() -> None:
    completed = _wmi_return.worded(failure(4096, {"state": 7, "error_code": 5, "description": "Busy"}))
    assert completed["message"].endswith("; its job completed with error code 5: Busy")
    killed = _wmi_return.worded(failure(4096, {"state": 9, "error_code": None, "description": None}))
    assert killed["message"].endswith("; its job ended in state Killed (9) with error code (not set): no description")


def test_other_errors_pass_unchanged() -> None:
    error = {"type": "System.UnauthorizedAccessException", "message": "denied", "category": "PermissionDenied"}
    assert _wmi_return.worded(error) is error
    answer = {"vms": [{"items": [{"key": "a", "error": None}, {"key": "b", "error": failure(32773)}]}]}
    _wmi_return.word_item_errors(answer, "items")
    assert answer["vms"][0]["items"][0]["error"] is None
    assert answer["vms"][0]["items"][1]["error"]["message"] == "ModifyKvpItems answered 32773 (Invalid parameter)"
