# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only: the module is the action plugin
# plugins/action/vm_integration_service_info.py.

DOCUMENTATION = r"""
---
module: vm_integration_service_info
short_description: Report Hyper-V integration services and guest health of VMs
version_added: 0.1.0
description:
  - For each VM of a Hyper-V host, reports its state, heartbeat, integration services version and
    state, and every integration service with its key, the name the host reports, whether it is enabled
    and its primary and secondary status.
  - Statuses are enum names (V(Ok), V(NoContact), V(LostCommunication), ...), the same on every host
    language; the host's localized description texts are not used.
  - One PowerShell process on the host, whatever the number of VMs.
author:
  - hyperv.integration contributors (@hyperv-integration)
extends_documentation_fragment:
  - hyperv.integration.attributes.host_vm_names
  - hyperv.integration.attributes.info_module
  - hyperv.integration.attributes.hyperv_host
seealso:
  - module: hyperv.integration.vm_integration_service
"""

EXAMPLES = r"""
- name: Report every VM of the host
  hyperv.integration.vm_integration_service_info:
  register: hv

- name: Show a table of VM, service, enabled and status
  ansible.builtin.debug:
    msg: >-
      {% for vm in hv.vms %}{% for ic in vm.integration_services %}
      {{ vm.name }} {{ ic.key }} {{ ic.enabled }} {{ ic.primary_status }}
      {% endfor %}{% endfor %}

- name: Report two VMs
  hyperv.integration.vm_integration_service_info:
    name: [web01, web02]
  register: web

- name: Fail when a running VM's guest does not answer its heartbeat
  ansible.builtin.assert:
    that: item.heartbeat is match('Ok')
    fail_msg: "{{ item.name }}: heartbeat {{ item.heartbeat }}"
  loop: "{{ web.vms | selectattr('state', 'eq', 'Running') }}"
  loop_control:
    label: "{{ item.name }}"
"""

RETURN = r"""
vms:
  description: One entry per VM, in the order asked for (host order when O(name) is omitted).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The VM's name, as the host spells it.
      type: str
      sample: web01
    requested_name:
      description:
        - The entry of O(name) that selected this VM, as the task gave it (it may differ from
          RV(vms[].name) in case); V(null) when O(name) is omitted.
      type: str
      sample: WEB01
    id:
      description: The VM's id (GUID).
      type: str
      sample: 0b8e5a3e-6c0f-4d8a-9f58-3c2f3e0c1a11
    state:
      description: The VM's state (V(Running), V(Off), V(Saved), V(Paused), ...).
      type: str
      sample: Running
    heartbeat:
      description:
        - The VM's heartbeat as an enum name (V(OkApplicationsHealthy), V(NoContact), V(Disabled), ...).
        - V(null) when the VM is off.
      type: str
      sample: OkApplicationsHealthy
    integration_services_version:
      description: Version of the integration services the guest reports; V(null) when it reports none.
      type: str
      sample: 10.0.20348
    integration_services_state:
      description:
        - Whether the guest's integration services are up to date, as the host's text (it may be in the
          host's language); V(null) when the host reports none.
      type: str
      sample: Up to date
    error:
      description:
        - Why this VM could not be read (for example it was deleted or became inaccessible while the task
          ran), in the host's words; its other values are then V(null) and RV(vms[].integration_services)
          is empty. V(null) when it was read. The other VMs are answered all the same, and a warning names it.
      type: str
      sample: null
    integration_services:
      description: Every integration service of the VM, in host order.
      type: list
      elements: dict
      contains:
        key:
          description: The collection's key for the service; V(null) for a service this collection does not know.
          type: str
          sample: guest_service_interface
        name:
          description: The name the host reports, in the host's language.
          type: str
          sample: Gastdienstschnittstelle
        id:
          description: The host's id of the service, C(Microsoft:<VM id>\<service GUID>).
          type: str
          sample: Microsoft:0B8E5A3E-6C0F-4D8A-9F58-3C2F3E0C1A11\6C09BB55-D683-4DA0-8931-C9BF705F6480
        guid:
          description: The service GUID (the part of RV(vms[].integration_services[].id) after the backslash).
          type: str
          sample: 6C09BB55-D683-4DA0-8931-C9BF705F6480
        enabled:
          description: Whether the host offers the service to the guest.
          type: bool
          sample: true
        primary_status:
          description:
            - Primary operational status as an enum name (V(Ok), V(NoContact), V(LostCommunication), ...).
            - V(null) when the host reports none (for example when the VM is off).
          type: str
          sample: Ok
        secondary_status:
          description: Secondary operational status as an enum name; V(null) when the host reports none.
          type: str
          sample: Ok
missing_vms:
  description: The names in O(name) that match no VM on the host (the task fails).
  returned: when some VM was not found
  type: list
  elements: str
  sample: [web99]
"""
