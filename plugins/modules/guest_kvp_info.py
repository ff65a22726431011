#!/usr/bin/python
# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_kvp_info
short_description: Read the key-value pairs a Hyper-V guest exchanges with its host (Linux and Windows guests)
version_added: 0.1.0
description:
  - "What the host sent this guest (RV(from_host), the VM's host exchange items), what
    this guest published (RV(to_host), set with M(hyperv.integration.guest_kvp)), and what the host says
    about itself and the VM (RV(parameters), for example C(HostName), C(VirtualMachineName) and
    C(PhysicalHostName))."
  - On Linux guests these are the pool files C(/var/lib/hyperv/.kvp_pool_0), C(_1) and C(_3), read under
    C(hv_kvp_daemon)'s file lock. On Windows guests, the registry keys C(External), C(Guest) and
    C(Guest\Parameters) under C(HKLM\SOFTWARE\Microsoft\Virtual Machine).
  - A pool or key that is not there is V(null), with the reason in RV(unavailable), never an empty mapping.
    On Linux it means C(hv_kvp_daemon) has not run in this guest.
author:
  - hyperv.integration contributors (@hyperv-integration)
options: {}
seealso:
  - module: hyperv.integration.guest_kvp
extends_documentation_fragment:
  - hyperv.integration.attributes.info_module
  - hyperv.integration.attributes.guest
"""

EXAMPLES = r"""
- name: Read what the host sent
  hyperv.integration.guest_kvp_info:
  register: kvp

- name: Use a configuration value the host handed over
  ansible.builtin.debug:
    msg: "{{ kvp.from_host.AppConfigUrl | default('not set by the host') }}"
"""

RETURN = r"""
os:
  description: V(linux) or V(windows).
  returned: always
  type: str
  sample: linux
from_host:
  description: The pairs the host sent this guest (host items), by key; V(null) when there is none to read.
  returned: always
  type: dict
  sample: {AppConfigUrl: "file:///etc/app/config.json"}
to_host:
  description: The pairs this guest publishes to the host (guest items), by key; V(null) when there is none to read.
  returned: always
  type: dict
  sample: {AppRole: web}
parameters:
  description: What the host says about itself and the VM, by key; V(null) when there is none to read.
  returned: always
  type: dict
  sample: {HostName: hv01.example.test, VirtualMachineName: web01}
unavailable:
  description: For each of RV(from_host), RV(to_host) and RV(parameters) that is V(null), why.
  returned: always
  type: dict
  sample: {}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.hyperv.integration.plugins.module_utils.guest_kvp import linux_info  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.exit_json(**linux_info())


if __name__ == "__main__":
    main()
