# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only: the module is the action plugin plugins/action/vm_kvp.py,
# which runs on the controller and talks to the Hyper-V host through the task's connection.

DOCUMENTATION = r"""
---
module: vm_kvp
short_description: Set the Key-Value Pair Exchange items a Hyper-V host gives its VMs
version_added: 0.1.0
description:
  - Key-Value Pair Exchange (Data Exchange) carries short text pairs between a VM and its Hyper-V host. This
    module sets, on the host, the items the host gives a guest (C(HostExchangeItems) of the VM's settings,
    through C(AddKvpItems), C(ModifyKvpItems) and C(RemoveKvpItems)). A Windows guest sees them under
    C(HKLM\SOFTWARE\Microsoft\Virtual Machine\External), a Linux guest in its pool 0
    (C(/var/lib/hyperv/.kvp_pool_0)).
  - Host items are part of the VM's settings, so they are set on a VM in any state, C(Off) too; the guest
    receives them when its integration services run.
  - Only the listed keys are touched. C(changed) is true only when an item was added, changed or removed.
    Keys are exact (case-sensitive); a key that differs only in case from an item the VM already has is
    refused, since which one the host would match is not documented.
  - Whatever the number of VMs and items, the task starts one PowerShell process on the host. Every VM and
    item is checked before the first write - the key and value must be text, a key at most 254 UTF-16 code
    units and 511 bytes in UTF-8, a value at most 1022 code units and 2047 bytes (what reaches every kind of
    guest whole), no characters XML cannot carry - and anything that does not fit fails the task naming the
    VM, key and limit, with nothing written.
  - Runs against the Hyper-V host (Windows), over C(winrm), C(psrp) or C(ssh) with a PowerShell shell.
    Use C(delegate_to) to reach the host from a play over guests.
  - To publish items from inside a guest to its host use M(hyperv.integration.guest_kvp).
author:
  - hyperv.integration contributors (@hyperv-integration)
options:
  name:
    description:
      - Name of one VM, or a list of VM names; every VM gets the same O(items).
      - Names match exactly, ignoring case as Hyper-V does; wildcard characters have no special meaning.
      - A string is always one name, even when it contains commas. Give a list for several VMs.
      - A name that matches no VM, or more than one VM, fails the task before anything is changed.
      - An empty list does nothing.
      - Required with O(items); mutually exclusive with O(vms).
    type: raw
    aliases: [vm, vm_name]
  items:
    description:
      - The items, a mapping of key to value (text; a number is written as its digits).
      - With O(state=absent), the keys to remove, as a list or a mapping (its values are ignored).
      - Required with O(name); mutually exclusive with O(vms).
    type: raw
  state:
    description:
      - V(present) gives each VM each item (adds it, or changes its value); V(absent) removes the listed keys
        (a key the VM does not have is left as it is).
      - V(present) when omitted. Mutually exclusive with O(vms), whose entries each have their own.
    type: str
    choices: [present, absent]
  vms:
    description:
      - One entry per VM - its name, items and state - when VMs are to get different items (say one entry per
        guest of a play, from its host_vars). All of them still go to the host in one PowerShell call.
      - Mutually exclusive with O(name), O(items) and O(state). Two entries for one VM are refused, even in
        two spellings of its name that the host takes for one (Hyper-V compares names ignoring case); nothing
        is changed then.
    type: list
    elements: dict
    suboptions:
      name:
        description: The VM, named as in O(name).
        type: raw
        required: true
      items:
        description: What this VM is given, as in O(items); an empty mapping leaves it alone.
        type: raw
        default: {}
      state:
        description: V(present) or V(absent), as in O(state), for this VM's items.
        type: str
        choices: [present, absent]
        default: present
extends_documentation_fragment:
  - hyperv.integration.attributes.hyperv_host
  - hyperv.integration.attributes.hyperv_host_change
notes:
  - When a write fails part-way (for example the host refuses one item), the task fails, its message says
    which items were changed and which were not, and RV(vms) shows the state of each; running the task again
    converges.
seealso:
  - module: hyperv.integration.vm_kvp_info
  - module: hyperv.integration.guest_kvp
  - module: hyperv.integration.vm_integration_service
  - name: Data Exchange, using key-value pairs to share information between the host and guest on Hyper-V
    description: Microsoft's description of Key-Value Pair Exchange and where guests find the host's items.
    link: https://learn.microsoft.com/windows-server/virtualization/hyper-v/integration-services-data-exchange
"""

EXAMPLES = r"""
- name: Tell two guests their role and site
  hyperv.integration.vm_kvp:
    name: [web01, web02]
    items:
      role: web
      site: "fra-1"
      port: 8080

- name: Remove items
  hyperv.integration.vm_kvp:
    name: web01
    items: [site, port]
    state: absent

- name: Different items for different VMs, still one call
  hyperv.integration.vm_kvp:
    vms:
      - name: web01
        items: {role: web}
      - name: db01
        items: {role: db, tier: "1"}
      - name: old01
        items: [role]
        state: absent
"""

RETURN = r"""
vms:
  description: Each VM named in O(name) or O(vms), with each listed item before and after the task.
  returned: when the host was reached and every VM was found and every item accepted
  type: list
  elements: dict
  contains:
    id:
      description: The VM's id (a GUID in lower case).
      type: str
      sample: 0b8e5a3e-6c0f-4d8a-9f58-3c2f3e0c1a11
    name:
      description: The VM's name, spelled by the host.
      type: str
      sample: web01
    requested_name:
      description:
        - The name this task gave the VM, in O(name) or O(vms[].name); the host may spell it in
          another case (RV(vms[].name)).
      type: str
      sample: WEB01
    state:
      description: The VM's state (V(Running), V(Off), ...); V(null) when the VM could not be read.
      type: str
      sample: Running
    changed:
      description: Whether any item of this VM changed (or would change, in check mode).
      type: bool
      sample: true
    error:
      description:
        - Why this VM's items could not be read (for example it was deleted or became inaccessible while the
          task ran), in the host's words; nothing was changed on it, its RV(vms[].state) is V(null), its
          RV(vms[].items) is empty, and the task fails after the other VMs were done. V(null) when it was read.
      type: str
      sample: null
    items:
      description:
        - The listed items, by key.
        - Each has C(before) and C(after) (the value before and after the task, in check mode what it would be;
          V(null) when the VM does not have the key), C(changed), and C(error) when writing it failed (the
          host's message; C(after) is then C(before)).
      type: dict
      sample:
        role: {before: null, after: web, changed: true}
        site: {before: fra-1, after: null, changed: true}
missing_vms:
  description: Names in O(name) or O(vms) the host has no VM for; no item was written on any VM.
  returned: when some VM was not found
  type: list
  elements: str
  sample: [old99]
refused:
  description:
    - The items the host refused before writing anything (the task fails and nothing was changed), each with
      C(vm), C(key), C(reason) and C(limit) (the rule it breaks, in words).
    - "Reasons: C(key_empty), C(key_invalid_characters), C(key_too_long), C(value_missing),
      C(value_invalid_characters), C(value_too_long), C(key_twice), C(key_case_conflict) (the VM has a key
      that differs only in case)."
  returned: when the host refused some item
  type: list
  elements: dict
  sample: [{vm: web01, key: role, reason: key_case_conflict, limit: "the host item 'Role' differs only in case"}]
"""
