# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the numbers of a failed Hyper-V WMI method call mean, worded on the controller.

Internal to this collection: not a public API, it may change without notice.

The host library answers a failed call of an ``Msvm_VirtualSystemManagementService`` method as numbers:
an error of type ``hyperv.integration.WmiReturnValue`` with ``method``, ``code`` (the return value) and
``job`` (null, or the state, ``ErrorCode`` and ``ErrorDescription`` of the job the call started). This
module is the one place that says what those numbers mean (docs/dev/hyperv-facts.md section 8, from
MicrosoftDocs win32 ``addkvpitems-msvm-virtualsystemmanagementservice.md`` and ``msvm-concretejob.md``).
"""

from __future__ import annotations

import typing as t

ERROR_TYPE = "hyperv.integration.WmiReturnValue"

JOB_STARTED = 4096  # "Method Parameters Checked - Job Started": the call goes on as a job
# The methods' documented failure values are 32768 and up, in this order: each one's meaning, and the
# ErrorCategory name its error is given (so that plugin_utils/_call_failure.py recognises an access
# denial like any other).
FIRST_FAILURE = 32768
FAILURES: tuple[tuple[str, str], ...] = (
    ("Failed", "NotSpecified"),
    ("Access Denied", "PermissionDenied"),
    ("Not Supported", "NotImplemented"),
    ("Status is unknown", "NotSpecified"),
    ("Timeout", "OperationTimeout"),
    ("Invalid parameter", "InvalidArgument"),
    ("System is in use", "ResourceBusy"),
    ("Invalid state for this operation", "InvalidOperation"),
    ("Incorrect data type", "InvalidType"),
    ("System is not available", "ResourceUnavailable"),
    ("Out of memory", "LimitsExceeded"),
)


def meaning(code: t.Any) -> tuple[str, str]:
    """(What a return value means, its ErrorCategory name)."""
    if code == 0:
        return "Completed with No Error", "NotSpecified"
    if code == JOB_STARTED:
        return "Method Parameters Checked - Job Started", "NotSpecified"
    if isinstance(code, int) and 0 <= code - FIRST_FAILURE < len(FAILURES):
        return FAILURES[code - FIRST_FAILURE]
    return "an undocumented return value", "NotSpecified"


# Msvm_ConcreteJob.JobState (msvm-concretejob.md). The library waits until a job is in one of the ended
# states or 60 s pass; any other state it last saw means the job had not ended.
JOB_STATES: dict[int, str] = {
    2: "New",
    3: "Starting",
    4: "Running",
    5: "Suspended",
    6: "Shutting Down",
    7: "Completed",
    8: "Terminated",
    9: "Killed",
    10: "Exception",
    11: "Service",
}
JOB_ENDED = (7, 8, 9, 10)


def _job_words(job: dict[str, t.Any]) -> str:
    state = job.get("state")
    name = JOB_STATES.get(state, "an undocumented state") if isinstance(state, int) else "an unknown state"
    if state not in JOB_ENDED:
        return "; its job was still %s (%s) when the host library stopped waiting, so the change may still happen" % (
            name,
            state,
        )
    # A job's ErrorCode is the job's own, not one of the method's return values: it is shown, not looked up.
    code = job.get("error_code")
    verb = "completed" if state == 7 else "ended in state %s (%s)" % (name, state)
    return "; its job %s with error code %s: %s" % (
        verb,
        "(not set)" if code is None else code,
        job.get("description") or "no description",
    )


def worded(error: t.Any) -> t.Any:
    """The error with its message and category worded, when it is a failed WMI call; otherwise as it is."""
    if not isinstance(error, dict) or error.get("type") != ERROR_TYPE:
        return error
    code = error.get("code")
    text, category = meaning(code)
    message = "%s answered %s (%s)" % (error.get("method"), code, text)
    job = error.get("job")
    if isinstance(job, dict):
        message += _job_words(job)
        category = "NotSpecified"
    return {**error, "message": message, "category": category}


def word_item_errors(answer: dict[str, t.Any], key: str) -> None:
    """Word, in place, the error of every item under ``key`` of every VM of a set operation's answer."""
    for vm in answer.get("vms") or []:
        for item in vm.get(key) or []:
            if isinstance(item, dict) and item.get("error") is not None:
                item["error"] = worded(item["error"])
