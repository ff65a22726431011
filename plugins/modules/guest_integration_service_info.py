#!/usr/bin/python
# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_integration_service_info
short_description: Report what a guest sees of Hyper-V integration services (Linux and Windows guests)
version_added: 0.1.0
description:
  - On Linux guests, for each integration service - whether the host offers it (a VMBus device with the
    service's class GUID is present), the driver bound to that device, and for Key-Value Pair Exchange,
    VSS and Guest Service Interface the daemon - its unit as found on this distribution, whether it is
    installed, active, and how it is activated (enabled, started by udev, manual, masked). Also the
    Hyper-V kernel modules and whether the Hyper-V PTP clock C(/dev/ptp_hyperv) is there.
  - On Windows guests (a connection with a PowerShell shell), each C(vmic*) service - its localized
    display name, status and start mode - and whether the Windows Time service takes time samples from the
    host (RV(time_provider)).
  - On a machine that is not a Hyper-V guest, RV(hyperv_guest) is V(false).
author:
  - hyperv.integration contributors (@hyperv-integration)
options: {}
seealso:
  - module: hyperv.integration.guest_integration_service
  - module: hyperv.integration.vm_integration_service_info
extends_documentation_fragment:
  - hyperv.integration.attributes.info_module
  - hyperv.integration.attributes.guest
"""

EXAMPLES = r"""
- name: What does this guest see?
  hyperv.integration.guest_integration_service_info:
  register: guest

- name: List the services the host does not offer
  ansible.builtin.debug:
    msg: "{{ guest.integration_services | rejectattr('offered') | map(attribute='key') | list }}"
  when: guest.hyperv_guest
"""

RETURN = r"""
hyperv_guest:
  description:
    - Whether this machine is a Hyper-V guest.
    - Linux - it has a VMBus. Windows - it reports itself as a Microsoft Virtual Machine.
  returned: always
  type: bool
  sample: true
os:
  description: V(linux) or V(windows).
  returned: always
  type: str
  sample: linux
kernel:
  description: The running kernel release (Linux).
  returned: on Linux
  type: str
  sample: 6.1.0-27-amd64
os_family:
  description: The distribution family the daemons' packages are looked up for (Linux).
  returned: on Linux
  type: str
  sample: debian
daemon_packages:
  description:
    - The packages that provide the integration service daemons on this distribution family (Linux), from
      the collection's catalog; empty for a family the catalog does not know.
  returned: on Linux
  type: list
  elements: str
  sample: [hyperv-daemons]
modules:
  description:
    - Whether the kernel modules C(hv_vmbus), C(hv_utils), C(hv_sock) and C(uio_hv_generic) are loaded
      or built in (Linux).
  returned: on Linux
  type: dict
  sample: {hv_vmbus: true, hv_utils: true, hv_sock: false, uio_hv_generic: false}
modules_at_boot:
  description:
    - Whether C(hv_sock) (Hyper-V sockets) is named in C(/etc/modules) or a C(modules-load.d) file, so that
      it is loaded at boot (Linux).
  returned: on Linux
  type: dict
  sample: {hv_sock: true}
modules_builtin:
  description: Which of the modules in RV(modules) are built into the kernel (C(modules.builtin)) (Linux).
  returned: on Linux
  type: list
  elements: str
  sample: []
time_source:
  description: Whether the Hyper-V PTP clock is available as C(/dev/ptp_hyperv) (Linux).
  returned: on Linux
  type: dict
  sample: {ptp_hyperv: true}
time_provider:
  description:
    - The Hyper-V time provider of the Windows Time service (Windows).
    - C(vmic_time_provider_enabled) is the C(Enabled) value of
      C(HKLM\SYSTEM\CurrentControlSet\Services\W32Time\TimeProviders\VMICTimeProvider) read as a
      boolean - V(true) when W32Time takes time samples from the Hyper-V host (the Windows default), V(false)
      when it does not (value C(0), see O(hyperv.integration.guest_integration_service#module:host_time_samples)),
      V(null) when the key or the value is absent or not a REG_DWORD.
    - W32Time reads the value when it starts, so a value changed by hand takes effect at its next start.
  returned: on Windows
  type: dict
  sample: {vmic_time_provider_enabled: true}
integration_services:
  description: One entry per integration service.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: The service's key.
      type: str
      sample: key_value_pair_exchange
    offered:
      description:
        - Whether the host offers the service to this guest (Linux - its VMBus device is present).
        - V(null) on Windows, where the guest cannot tell.
      type: bool
    provider:
      description: V(kernel) (hv_utils only) or V(daemon) (also a user-space daemon) on Linux; V(service) on Windows.
      type: str
    device:
      description: The VMBus instance GUID of the service's device (Linux).
      type: str
    driver:
      description: The driver bound to the device (Linux), for example V(hv_utils) or V(uio_hv_generic).
      type: str
    daemon:
      description:
        - The daemon on Linux - C(installed), C(unit), C(active), C(active_state), C(unit_file_state) and
          C(activation) (V(enabled), V(udev), V(manual), V(masked)); V(null) for kernel services.
      type: dict
    service:
      description: The Windows service - C(name), C(display_name) (localized), C(status), C(start_mode).
      type: dict
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import daemon_packages  # noqa: E402
from ansible_collections.hyperv.integration.plugins.module_utils.linux_guest_probe import probe  # noqa: E402


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    found = probe("/", module.run_command, os.uname().release)
    packages = daemon_packages(found.os_family)
    module.exit_json(changed=False, os="linux", daemon_packages=packages, **found.as_dict())


if __name__ == "__main__":
    main()
