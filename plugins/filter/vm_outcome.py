# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter hyperv.integration.vm_outcome: one VM's part of a per-host vm_integration_service run."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: vm_outcome
short_description: One guest's part of a vm_integration_service task run once per Hyper-V host
version_added: 0.1.0
description:
  - Roles that configure many guests call M(hyperv.integration.vm_integration_service) once per Hyper-V
    host for all of that host's guests (C(run_once) and a loop over the hosts), so one result answers many
    guests. This filter picks, for one guest, the loop result of its host and its VM's entry in it.
  - The VM's entry is the one whose RV(hyperv.integration.vm_integration_service#module:vms[].requested_name)
    is O(vm_name) exactly, the name the task gave the host; the host's own spelling is never compared.
  - RV(_value.concerns_vm) says whether a failure of that result is this guest's, so that a task after it
    fails exactly the guests a host failure concerns.
positional: host, vm_name
options:
  _input:
    description: The registered result of the looped task (its C(results) list is read).
    type: dict
    required: true
  host:
    description: The loop item of this guest's host (the value of the task's loop variable), for example C(hyperv_host).
    type: str
    required: true
  vm_name:
    description: The VM name this guest gave the host task.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Fail this guest if its Hyper-V host could not set its services
  ansible.builtin.fail:
    msg: "{{ outcome.msg }}"
  vars:
    outcome: "{{ set_result | hyperv.integration.vm_outcome(hyperv_host, hyperv_vm_name) }}"
  when: outcome.concerns_vm
"""

RETURN = r"""
_value:
  description: This guest's part of the result.
  type: dict
  contains:
    found:
      description: Whether the task has a result for O(host) (false when it did not run for it).
      type: bool
    failed:
      description: Whether the host's result failed.
      type: bool
    msg:
      description: The host result's message (empty when it has none).
      type: str
    vm:
      description: The VM's entry of RV(hyperv.integration.vm_integration_service#module:vms), or V(null).
      type: dict
    integration_services:
      description: The VM's services by key, as the host result gives them (empty when there is no entry).
      type: dict
    not_answering:
      description: The VM's entries of RV(hyperv.integration.vm_integration_service#module:wait.not_answering).
      type: list
      elements: dict
    concerns_vm:
      description:
        - Whether the host's failure is this guest's. A failed wait concerns the VMs that did not answer;
          a failed write concerns the VMs whose entry has an error; any other failure (the host could not be
          reached, a VM was not found, ...) concerns every guest of that host.
      type: bool
"""


def _host_result(registered: dict[str, t.Any], host: str) -> dict[str, t.Any] | None:
    for result in registered.get("results") or []:
        loop_var = result.get("ansible_loop_var", "item")
        if result.get(loop_var) == host:
            return result
    return None


def vm_outcome(registered: t.Any, host: t.Any, vm_name: t.Any) -> dict[str, t.Any]:
    if not isinstance(registered, dict):
        raise AnsibleFilterError("vm_outcome: the input must be a registered task result, got %r" % (registered,))
    result = _host_result(registered, str(host))
    if result is None:
        return {
            "found": False,
            "failed": False,
            "msg": "",
            "vm": None,
            "integration_services": {},
            "not_answering": [],
            "concerns_vm": False,
        }
    vm = next((entry for entry in result.get("vms") or [] if entry.get("requested_name") == vm_name), None)
    services = (vm or {}).get("integration_services") or {}
    wait = result.get("wait") or {}
    pending = [item for item in wait.get("not_answering") or [] if item.get("requested_name") == vm_name]
    failed = bool(result.get("failed"))
    if not failed:
        concerns = False
    elif wait.get("answered") is False:
        concerns = bool(pending)
    elif vm is None:
        concerns = True
    else:
        concerns = bool(vm.get("error")) or any(item.get("error") for item in services.values())
    return {
        "found": True,
        "failed": failed,
        "msg": str(result.get("msg") or ""),
        "vm": vm,
        "integration_services": services,
        "not_answering": pending,
        "concerns_vm": concerns,
    }


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"vm_outcome": vm_outcome}
