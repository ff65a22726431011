# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only: the module is the action plugin plugins/action/vm_kvp_info.py,
# which runs on the controller and talks to the Hyper-V host through the task's connection.

DOCUMENTATION = r"""
---
module: vm_kvp_info
short_description: Report Hyper-V VMs' key-value pairs (host, guest and intrinsic items)
version_added: 0.1.0
description:
  - For each VM, this module reads, on the host, the items the host gives the guest (RV(vms[].host_items)), the
    items software in the guest published (RV(vms[].guest_items)) and the items the guest's integration
    services report about it (RV(vms[].intrinsic_items) - operating system, host name, addresses).
  - Host items are part of the VM's settings and are read whatever its state. Guest and intrinsic items come
    from the running guest; when they cannot be had they are V(null), never an empty mapping, and
    RV(vms[].guest_items_unavailable) says why.
  - Items are read through WMI (C(root/virtualization/v2)) and parsed as data; keys are exact (case-sensitive).
    The Key-Value Pair Exchange integration service is found by its GUID, so the module works the same on
    every Windows display language.
  - All the VMs are read in one PowerShell process on the host.
extends_documentation_fragment:
  - hyperv.integration.attributes.host_vm_names
  - hyperv.integration.attributes.info_module
  - hyperv.integration.attributes.hyperv_host
notes:
  - A VM that cannot be read (for example deleted while the task ran) is answered with RV(vms[].error) and a
    warning; the other VMs are read all the same.
seealso:
  - module: hyperv.integration.vm_kvp
  - module: hyperv.integration.guest_kvp_info
  - module: hyperv.integration.vm_integration_service
  - name: Data Exchange, using key-value pairs to share information between the host and guest on Hyper-V
    description: Microsoft's description of Key-Value Pair Exchange and its registry keys in Windows guests.
    link: https://learn.microsoft.com/windows-server/virtualization/hyper-v/integration-services-data-exchange
author:
  - hyperv.integration contributors (@hyperv-integration)
"""

EXAMPLES = r"""
- name: Read the items of every VM on the host
  hyperv.integration.vm_kvp_info:
  register: kvp

- name: Show each running VM's addresses as its guest reports them
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.ip_addresses | join(', ') }}"
  loop: "{{ kvp.vms | rejectattr('ip_addresses', 'none') }}"
  loop_control:
    label: "{{ item.name }}"

- name: Read two VMs
  hyperv.integration.vm_kvp_info:
    name: [web01, web02]
  register: web

- name: Fail when a guest has not published its build number
  ansible.builtin.assert:
    that: "'AppBuild' in (item.guest_items or {})"
    fail_msg: "{{ item.name }}: no AppBuild ({{ item.guest_items_unavailable or 'not published' }})"
  loop: "{{ web.vms }}"
  loop_control:
    label: "{{ item.name }}"
"""

RETURN = r"""
vms:
  description: Each VM asked for, in that order; every VM of the host, in its order, when O(name) is omitted.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The VM's id, a lower-case GUID; it stays when the VM is renamed.
      type: str
      sample: 0b8e5a3e-6c0f-4d8a-9f58-3c2f3e0c1a11
    name:
      description: The VM's name as Get-VM gives it.
      type: str
      sample: web01
    requested_name:
      description:
        - Which entry of O(name) found this VM (V(null) when O(name) is omitted). Compare your
          inventory's VM names with this one, not with RV(vms[].name), whose case may differ.
      type: str
      sample: WEB01
    state:
      description: The VM's state (V(Running), V(Off), V(Saved), V(Paused), ...); V(null) when it could not be read.
      type: str
      sample: Running
    kvp_enabled:
      description:
        - Whether the host offers the Key-Value Pair Exchange integration service to the guest.
        - V(null) when the VM has no such service (or could not be read).
      type: bool
      sample: true
    host_items:
      description:
        - The items the host gives the guest (C(HostExchangeItems) of the VM's settings), key to value; what
          M(hyperv.integration.vm_kvp) sets. A Windows guest sees them under
          C(HKLM\SOFTWARE\Microsoft\Virtual Machine\External), a Linux guest in its pool 0.
        - Read whatever the VM's state. V(null) only when the VM could not be read.
      type: dict
      sample: {role: web}
    guest_items:
      description:
        - The items software in the guest published (C(GuestExchangeItems)), key to value; what
          M(hyperv.integration.guest_kvp) sets in a guest.
        - An empty mapping when the guest answers and published nothing. V(null) when the guest's data cannot
          be read; RV(vms[].guest_items_unavailable) says why.
      type: dict
      sample: {AppBuild: "1234"}
    intrinsic_items:
      description:
        - The items the guest's integration services report about the guest (C(GuestIntrinsicExchangeItems)),
          for example C(OSName), C(OSVersion), C(FullyQualifiedDomainName), C(IntegrationServicesVersion),
          C(NetworkAddressIPv4) and C(NetworkAddressIPv6) (Windows guests report a few more).
        - V(null) when the guest's data cannot be read; RV(vms[].guest_items_unavailable) says why.
      type: dict
      sample: {OSName: Windows Server 2022 Datacenter, FullyQualifiedDomainName: web01.example.test}
    ip_addresses:
      description:
        - The guest's addresses, IPv4 then IPv6, from the intrinsic items C(NetworkAddressIPv4) and
          C(NetworkAddressIPv6) (semicolon-separated lists the guest refreshes when its network configuration
          changes), each address once.
        - An empty list when the guest reports none; V(null) when RV(vms[].intrinsic_items) is V(null).
      type: list
      elements: str
      sample: ["192.0.2.10", "2001:db8::10"]
    guest_items_unavailable:
      description:
        - Why RV(vms[].guest_items) and RV(vms[].intrinsic_items) are V(null); V(null) when they were read (or
          the VM could not be read at all, see RV(vms[].error)).
        - V(vm_not_running) - the VM is not C(Running) (C(Off), C(Saved), C(Paused)), so there is no guest to ask.
        - V(kvp_missing) - the VM has no Key-Value Pair Exchange integration service (an old configuration
          version, for example).
        - V(kvp_disabled) - the host does not offer the service to the guest; enable it with
          M(hyperv.integration.vm_integration_service).
        - V(no_component) - the host has no Key-Value Pair Exchange device for the VM.
        - V(guest_not_answering) - nothing in the guest has answered; no guest operating system yet, or its
          integration services are not installed or not running (on Linux, C(hv_kvp_daemon)).
      type: str
      choices: [vm_not_running, kvp_missing, kvp_disabled, no_component, guest_not_answering]
      sample: null
    unparsed_items:
      description:
        - How many of the VM's items the host answered in a form that is not well-formed CIM-XML (or without a
          name); they are left out of the mappings above, the other items are read all the same, and a warning
          names the VM. V(0) normally; V(null) when the VM could not be read.
      type: int
      sample: 0
    error:
      description:
        - Why this VM could not be read (for example it was deleted or became inaccessible while the task
          ran), in the host's words; its other values are then V(null). V(null) when it was read. The other
          VMs are answered all the same, and a warning names it.
      type: str
      sample: null
missing_vms:
  description: Names in O(name) the host has no VM for; the task fails and reports no VM.
  returned: when some VM was not found
  type: list
  elements: str
  sample: [old99]
"""
