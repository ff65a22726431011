# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only: the module is the action plugin plugins/action/vm_integration_service.py,
# which runs on the controller and talks to the Hyper-V host through the task's connection.

DOCUMENTATION = r"""
---
module: vm_integration_service
short_description: Enable or disable Hyper-V integration services on any number of VMs
version_added: 0.1.0
description:
  - Sets the host half of Hyper-V integration services (Heartbeat, Shutdown, Time Synchronization,
    Key-Value Pair Exchange, VSS, Guest Service Interface) to the state you declare, on one or many
    virtual machines of one Hyper-V host, in one task.
  - Integration services are selected on the host by their GUID, never by their name, so the module
    works the same on English, German, French, Chinese or any other Windows display language.
  - Whatever the number of VMs and services, the task starts one PowerShell process on the host. Every
    VM and service is checked before the first change; an unknown VM or service fails the task and
    changes nothing.
  - Runs against the Hyper-V host (Windows), over C(winrm), C(psrp) or C(ssh) with a PowerShell shell.
    Use O(name) to say which VMs; use C(delegate_to) to reach the host from a play over guests.
  - To configure the guest half (Windows C(vmic*) services, Linux drivers and daemons) use
    M(hyperv.integration.guest_integration_service).
author:
  - hyperv.integration contributors (@hyperv-integration)
options:
  name:
    description:
      - Name of one VM, or a list of VM names.
      - Names match exactly, ignoring case as Hyper-V does; wildcard characters have no special meaning.
      - A string is always one name, even when it contains commas. Give a list for several VMs.
      - A name that matches no VM, or more than one VM, fails the task before anything is changed.
      - An empty list does nothing (so "every VM of the host" also works on a host without VMs).
      - Required with O(services); mutually exclusive with O(vms).
    type: raw
    aliases: [vm, vm_name]
  services:
    description:
      - Mapping of integration service to its wanted state, V(enabled) or V(disabled) (V(true) and
        V(false) are accepted too).
      - A service may be given by its key (V(heartbeat), V(shutdown), V(time_synchronization),
        V(key_value_pair_exchange), V(vss), V(guest_service_interface)), by its English name
        (V(Guest Service Interface)) or by a known localized name (V(Gastdienstschnittstelle),
        V(Takt), V(客體服務介面)); case, spaces and punctuation are ignored.
      - An unknown name fails the task and lists the valid keys.
      - Services not listed are left as they are.
      - Required with O(name); mutually exclusive with O(vms).
    type: dict
  vms:
    description:
      - Each VM with its own services, still in one task and one PowerShell call, for when VMs want
        different things (for example one entry per guest of a play, each from its own host_vars).
      - Mutually exclusive with O(name) and O(services). A VM named twice is refused, also in two
        spellings the host takes for one VM (it compares names ignoring case, as Hyper-V does); nothing
        is changed then.
      - With O(wait=true), each VM waits for the services it asks to be enabled.
    type: list
    elements: dict
    suboptions:
      name:
        description: The VM's name, matched as in O(name).
        type: raw
        required: true
      services:
        description: Its services, as in O(services). An empty mapping asks nothing of this VM.
        type: dict
        default: {}
  wait:
    description:
      - After the changes, wait until the guests answer. Every service that O(services) asks to be
        enabled, on every VM in O(name) that is C(Running), must report primary status C(Ok) on the host.
      - VMs that are not C(Running) (C(Off), C(Saved), C(Paused)) have no guest that could answer and are
        not waited for; RV(wait.not_running) lists them. Services asked to be disabled are not waited for.
      - A C(Running) VM with nothing inside to answer (no guest operating system, or its integration
        services not installed or stopped) keeps reporting C(NoContact) and the wait times out. Leave such
        VMs out of O(name) when you wait.
      - When the task changed nothing, the statuses the task's own call read are current, and if every service
        waited for is C(Ok) there, the task returns without reading the host again (RV(wait.polls) is 0).
        Otherwise the host is read once right after the changes (if every service already answers, the
        task returns at once), then every 2 seconds. Each read is one PowerShell call on the host for all
        VMs.
      - On timeout the task fails with a table of VM, service and status, and says which changes were
        made; the changes stay made.
      - Nothing is waited for in check mode (nothing was changed), nor when a change failed.
    type: bool
    default: false
  wait_timeout:
    description:
      - How long to wait, in seconds, with O(wait=true), counted from the end of the changes.
      - V(0) reads the host once and fails if some service has not answered yet.
    type: int
    default: 120
extends_documentation_fragment:
  - hyperv.integration.attributes.hyperv_host
  - hyperv.integration.attributes.hyperv_host_change
notes:
  - The guest must also run its half of a service for the service to work; enabling it on the host only
    offers it to the guest.
  - With O(wait=true) the task can fail after it changed something (the guests did not answer in time);
    it still reports C(changed) for what it changed.
  - When a change fails part-way (for example one VM refuses a change), the task fails, its message says
    which changes were made and which were not, and RV(vms) shows the state of each; running the task
    again converges.
seealso:
  - module: hyperv.integration.vm_integration_service_info
  - module: hyperv.integration.guest_integration_service
  - name: Manage Hyper-V integration services
    description: Microsoft's documentation of integration services and Enable-VMIntegrationService.
    link: https://learn.microsoft.com/virtualization/hyper-v-on-windows/user-guide/managing-integration-services
"""

EXAMPLES = r"""
- name: Enable Guest Service Interface (file copy from the host) on two VMs
  hyperv.integration.vm_integration_service:
    name:
      - web01
      - web02
    services:
      guest_service_interface: enabled

- name: Several services on one VM, by English and German names
  hyperv.integration.vm_integration_service:
    name: db01
    services:
      Time Synchronization: disabled
      Takt: enabled
      vss: true

- name: Enable Guest Service Interface on every VM the host runs
  block:
    - name: List the VMs
      hyperv.integration.vm_integration_service_info:
      register: host_vms

    - name: Enable it everywhere, in one PowerShell call
      hyperv.integration.vm_integration_service:
        name: "{{ host_vms.vms | map(attribute='name') | list }}"
        services:
          guest_service_interface: enabled

- name: Different services for different VMs, still one call
  hyperv.integration.vm_integration_service:
    vms:
      - name: web01
        services: {guest_service_interface: enabled}
      - name: dc01
        services: {time_synchronization: disabled}

# In a play over guests, the hyperv.integration.integration_services role makes one such call per
# Hyper-V host from each guest's hyperv_integration_services (host_vars, group_vars).

- name: Enable the services and wait until the guests answer them (up to 5 minutes)
  hyperv.integration.vm_integration_service:
    name: [web01, web02]
    services:
      key_value_pair_exchange: enabled
      vss: enabled
    wait: true
    wait_timeout: 300
"""

RETURN = r"""
vms:
  description: Each VM named in O(name) or O(vms), with each requested service before and after the task.
  returned: when the host was reached and every VM and service was found
  type: list
  elements: dict
  contains:
    name:
      description: The VM's name as the host reports it.
      type: str
      sample: web01
    requested_name:
      description:
        - The VM's name as the task gave it (in O(name) or O(vms[].name)), which may differ from
          RV(vms[].name) in case; match your own names against this one.
      type: str
      sample: WEB01
    id:
      description: The VM's id (GUID), which stays the same when the VM is renamed.
      type: str
      sample: 0b8e5a3e-6c0f-4d8a-9f58-3c2f3e0c1a11
    state:
      description:
        - The VM's state as the host read it before the changes (V(Running), V(Off), V(Saved), ...);
          only V(Running) VMs have a guest to wait for (O(wait)). V(null) when the VM could not be read.
      type: str
      sample: Running
    changed:
      description: Whether any service of this VM changed (or would change, in check mode).
      type: bool
      sample: true
    error:
      description:
        - Why this VM's integration services could not be read (for example it was deleted or became
          inaccessible while the task ran), in the host's words; nothing was changed on it, its
          RV(vms[].state) is V(null), its RV(vms[].integration_services) is empty, and the task fails
          after the other VMs were done. V(null) when it was read.
      type: str
      sample: null
    integration_services:
      description:
        - The requested services, by key.
        - Each has C(name) (the name the host reports, in the host's language), C(enabled_before),
          C(enabled) (after the task; in check mode, what it would be), C(changed), C(primary_status)
          (the host's primary status of a service the task left unchanged, V(null) for a changed one), and
          C(error) when changing it failed.
      type: dict
      sample:
        guest_service_interface:
          name: Gastdienstschnittstelle
          enabled_before: false
          enabled: true
          changed: true
wait:
  description: What the wait for the guests found (O(wait=true)).
  returned: when O(wait=true) and the changes were made or compared
  type: dict
  contains:
    skipped:
      description:
        - Why nothing was waited for (no host read made), or V(null) when the task waited.
        - "For example C(check mode: nothing was changed, so no guest was waited for),
          C(no service is asked to be enabled), C(no VM named is Running), C(some changes failed)."
      type: str
      sample: null
    answered:
      description: Whether every service waited for reported C(Ok); V(null) when nothing was waited for.
      type: bool
      sample: true
    polls:
      description:
        - How many times the host was read after the changes (one PowerShell call each); V(0) when the
          task changed nothing and its own call already saw every service answer.
      type: int
      sample: 2
    elapsed:
      description: Seconds spent waiting.
      type: float
      sample: 2.1
    vms:
      description: The VMs waited for (the C(Running) VMs in O(name)).
      type: list
      elements: str
      sample: [web01, web02]
    services:
      description: The services waited for (the keys of those asked to be enabled).
      type: list
      elements: str
      sample: [key_value_pair_exchange, vss]
    not_answering:
      description:
        - The services that had not reported C(Ok) at the last read (empty when all answered), each with
          C(vm) (as the host spells it), C(requested_name) (as the task gave it), C(service) (key), C(name)
          (the host's name for it) and C(status) (the primary status, for example C(NoContact), or V(null)
          when the host reports none).
      type: list
      elements: dict
      sample: [{vm: web02, requested_name: web02, service: vss, name: VSS, status: NoContact}]
    not_running:
      description:
        - VMs in O(name) that were not waited for because they are not C(Running), with C(vm),
          C(requested_name) and C(state).
      type: list
      elements: dict
      sample: [{vm: build07, requested_name: build07, state: Off}]
    not_found:
      description: VMs that could no longer be found by name while waiting (renamed or removed meanwhile).
      type: list
      elements: str
      sample: []
missing_vms:
  description: The names in O(name) or O(vms) that match no VM on the host; nothing was changed.
  returned: when some VM was not found
  type: list
  elements: str
  sample: [web99]
missing_services:
  description: Requested services that a VM does not have (for example a VM of an old configuration version).
  returned: when some VM lacks a requested service
  type: list
  elements: dict
  sample: [{vm: legacy01, service: guest_service_interface}]
"""
