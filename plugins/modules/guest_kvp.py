#!/usr/bin/python
# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_kvp
short_description: Publish key-value pairs from a Hyper-V guest to its host (Linux and Windows guests)
version_added: 0.1.0
description:
  - Key-Value Pair Exchange (Data Exchange) carries short text pairs between a VM and its Hyper-V host. This
    module sets the pairs the guest publishes; the host reads them as the VM's guest exchange items
    (C(GuestExchangeItems) of C(Msvm_KvpExchangeComponent)).
  - On Linux guests the pairs go to the pool file C(/var/lib/hyperv/.kvp_pool_1), written the way
    C(hv_kvp_daemon) expects (fixed 512-byte key and 2048-byte value records) under the daemon's own file
    lock, so the daemon never reads a half-written pool. The daemon hands them to the host when it asks.
  - On Windows guests (a connection with a PowerShell shell) the pairs are string values of
    C(HKLM\SOFTWARE\Microsoft\Virtual Machine\Guest); that needs an administrator account.
  - Only the listed keys are touched; pairs other software published (cloud-init's reports, for example)
    stay as they are. C(changed) is true only when a pair was added, changed or removed.
  - Every pair is checked before anything is written against what reaches the host whole - a key of at
    most 254 UTF-16 code units (511 bytes in UTF-8), a value of at most 1022 code units (2047 bytes) - and a
    pair that does not fit fails the task naming the key and the limit, with nothing written.
author:
  - hyperv.integration contributors (@hyperv-integration)
options:
  items:
    description:
      - The pairs, a mapping of key to value (text; a number is written as its digits).
      - With O(state=absent), the keys to remove, as a list or a mapping (its values are ignored).
    type: raw
    required: true
  state:
    description:
      - V(present) publishes each pair (adds it, or changes its value); V(absent) removes the listed keys.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: hyperv.integration.guest_kvp_info
attributes:
  check_mode:
    support: full
    description: Reports what would change and writes nothing.
  diff_mode:
    support: full
    description: Shows the listed keys' values before and after.
extends_documentation_fragment:
  - hyperv.integration.attributes.guest
"""

EXAMPLES = r"""
- name: Tell the host which role this guest plays
  hyperv.integration.guest_kvp:
    items:
      AppRole: web
      AppVersion: "2.4.1"

- name: Withdraw a pair
  hyperv.integration.guest_kvp:
    items: [AppVersion]
    state: absent
"""

RETURN = r"""
items:
  description: Each listed key, with its value C(before) and C(after) the task (V(null) when absent) and C(changed).
  returned: always
  type: dict
  sample: {AppRole: {before: null, after: web, changed: true}}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError  # noqa: E402
from ansible_collections.hyperv.integration.plugins.module_utils.guest_kvp import (  # noqa: E402
    GUEST_KVP_ARGUMENT_SPEC,
    kvp_wishes,
    linux_apply,
)


def main() -> None:
    module = AnsibleModule(argument_spec=GUEST_KVP_ARGUMENT_SPEC, supports_check_mode=True)
    try:
        wishes = kvp_wishes(module.params["items"], module.params["state"])
    except ArgumentError as exc:
        module.fail_json(msg=str(exc), changed=False)
    result = linux_apply(wishes, module.params["state"], module.check_mode)
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = diff
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
