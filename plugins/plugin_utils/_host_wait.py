# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting until the guests answer the integration services a task enabled (vm_integration_service wait).

Internal to this collection: not a public API, it may change without notice.

The rule (documented in the module and docs/host-integration-services.md): the task waits for every
service it asks to be enabled, on every VM it names that is Running, until the host reports that
service's primary status ``Ok`` (the guest's side of it answered). VMs that are not Running have no
guest to answer and are not waited for. A Running VM with nothing inside to answer (no guest OS, or
no integration services in it) stays ``NoContact`` and the wait times out, naming it.

Each poll is one ``vm_integration_service_info`` call on the host, for every VM at once.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import by_host_guid

POLL_INTERVAL = 2.0  # seconds between two reads of the host
DEFAULT_TIMEOUT = 120
ANSWERED = "Ok"  # VMIntegrationComponentOperationalStatus name (docs/dev/hyperv-facts.md section 1)

# What a primary status means for someone waiting for a guest (Microsoft's Msvm_*Component
# OperationalStatus definitions; docs/dev/hyperv-facts.md section 1 for the names).
_STATUS_HINTS = {
    "NoContact": "NoContact: the guest's side of the service has not answered yet (no guest OS running, "
    "or its integration services are not installed or not started; see "
    "hyperv.integration.guest_integration_service). A VM with nothing inside never answers: leave it out "
    "of name when waiting",
    "LostCommunication": "LostCommunication: the guest's side of the service answered before but no longer does",
    None: "(none): the host reports no status for the service yet (the guest has not answered)",
}


def waited_keys(wanted: dict[str, bool]) -> list[str]:
    """The services a task waits for: the ones it asks to be enabled, in the order given."""
    return [key for key, enabled in wanted.items() if enabled]


def split_by_state(vms: list[dict[str, t.Any]]) -> tuple[list[str], list[dict[str, t.Any]]]:
    """VMs to wait for (Running), by the name the task gave, and the others, from the task's own result."""
    running, others = [], []
    for vm in vms:
        if vm.get("state") == "Running":
            running.append(vm["requested_name"])
        else:
            others.append(_stopped(vm))
    return running, others


def _stopped(vm: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"vm": vm.get("name"), "requested_name": vm.get("requested_name"), "state": vm.get("state")}


# The services waited for: the same for every VM, or by VM name as the task gave it (the vms option).
WaitedKeys = t.Union[t.List[str], t.Dict[str, t.List[str]]]  # noqa: UP006, UP007 - runtime alias


def keys_for(keys: WaitedKeys, vm_name: str | None) -> list[str]:
    return keys if isinstance(keys, list) else keys.get(vm_name or "", [])


def all_keys(keys: WaitedKeys) -> list[str]:
    """The services waited for on any VM (the ``wait.services`` return value)."""
    return keys if isinstance(keys, list) else sorted({key for vm_keys in keys.values() for key in vm_keys})


def pending_in(vms: list[dict[str, t.Any]], running: list[str], keys: WaitedKeys) -> bool:
    """Whether the set call's own answer (the task's ``vms``) shows a waited-for service not Ok yet."""
    for vm in vms:
        if vm["requested_name"] not in running:
            continue
        for key in keys_for(keys, vm["requested_name"]):
            item = vm["integration_services"].get(key)
            if item is not None and item["enabled"] and item.get("primary_status") != ANSWERED:
                return True
    return False


def not_answering(
    answer: dict[str, t.Any], keys: WaitedKeys
) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]], list[str]]:
    """From one info read: (services not Ok yet, VMs no longer Running, VMs no longer found).

    A service not Ok yet is ``{"vm", "requested_name", "service", "name", "status"}`` (status: the
    primary status name or None). Only enabled services among the VM's ``keys`` on Running VMs count.
    VMs are told apart by ``requested_name``, the name they were polled by.
    """
    pending: list[dict[str, t.Any]] = []
    stopped: list[dict[str, t.Any]] = []
    for vm in answer.get("vms") or []:
        if vm.get("state") != "Running":
            stopped.append(_stopped(vm))
            continue
        found = {}
        for item in vm.get("integration_services") or []:
            ic = by_host_guid(str(item.get("guid") or ""))
            if ic is not None:
                found[ic.key] = item
        for key in keys_for(keys, vm.get("requested_name")):
            item = found.get(key)
            if item is None or not item.get("enabled"):
                continue  # not there, or switched off meanwhile: nothing to answer
            if item.get("primary_status") != ANSWERED:
                pending.append(
                    {
                        "vm": vm.get("name"),
                        "requested_name": vm.get("requested_name"),
                        "service": key,
                        "name": item.get("name"),
                        "status": item.get("primary_status"),
                    }
                )
    gone = list(answer.get("missing") or []) + list((answer.get("ambiguous") or {}).keys())
    return pending, stopped, gone


def wait_for_guests(
    poll: t.Callable[[list[str]], dict[str, t.Any]],
    vm_names: list[str],
    keys: WaitedKeys,
    timeout: float,
    interval: float | None = None,
    clock: t.Callable[[], float] | None = None,
    sleep: t.Callable[[float], None] | None = None,
) -> dict[str, t.Any]:
    """Read the host (``poll(vm_names)``, one call) until every waited-for service is Ok or the time is up.

    Reads at once, then every ``interval`` seconds; the last read is at the deadline. Returns the
    ``wait`` report: ``answered`` (bool), ``polls``, ``elapsed`` (seconds), ``not_answering`` (the
    services still not Ok at the last read), ``not_running`` (VMs that stopped running meanwhile) and
    ``not_found`` (VMs renamed or removed meanwhile).
    """
    interval = POLL_INTERVAL if interval is None else interval
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    start = clock()
    deadline = start + max(0.0, timeout)
    polls = 0
    names = list(vm_names)
    stopped: list[dict[str, t.Any]] = []
    gone: list[str] = []
    while True:
        answer = poll(names)
        polls += 1
        pending, newly_stopped, newly_gone = not_answering(answer, keys)
        stopped += newly_stopped
        gone += newly_gone
        left = {vm["requested_name"] for vm in newly_stopped} | set(newly_gone)
        names = [name for name in names if name not in left]
        now = clock()
        if not pending or not names or now >= deadline:
            return {
                "answered": not pending,
                "polls": polls,
                "elapsed": round(now - start, 1),
                "not_answering": pending,
                "not_running": stopped,
                "not_found": gone,
            }
        sleep(max(0.0, min(interval, deadline - now)))


def table(rows: list[list[str]]) -> str:
    """Rows as left-aligned columns, two spaces apart, the first row being the header."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = ["  ".join(row[col].ljust(widths[col]) for col in range(len(widths))).rstrip() for row in rows]
    return "\n".join("  " + line for line in lines)


def timeout_message(host: str, report: dict[str, t.Any], timeout: int, done: list[str]) -> str:
    """The failure message: what did not answer (a VM / service / status table), and what was changed."""
    pending = report["not_answering"]
    rows = [["VM", "IC", "host name", "status"]]
    rows += [
        [str(item["vm"]), item["service"], str(item["name"] or ""), item["status"] or "(none)"] for item in pending
    ]
    message = "Hyper-V host %s: %d integration service(s) did not report status %s within %d s (%d read(s)):\n%s\n" % (
        host,
        len(pending),
        ANSWERED,
        timeout,
        report["polls"],
        table(rows),
    )
    for status in sorted({item["status"] for item in pending}, key=str):
        if status in _STATUS_HINTS:
            message += _STATUS_HINTS[status] + ".\n"
    if done:
        message += "The changes were made and stay made: %s." % "; ".join(done)
    else:
        message += "Nothing was changed (the services were already as requested)."
    return message
