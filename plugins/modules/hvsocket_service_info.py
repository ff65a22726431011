# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only: the module is the action plugin plugins/action/hvsocket_service_info.py.

DOCUMENTATION = r"""
---
module: hvsocket_service_info
short_description: List the Hyper-V socket services registered on a Hyper-V host
version_added: 0.1.0
description:
  - Lists every entry under C(GuestCommunicationServices) in the host registry, with its GUID, ElementName,
    the Linux vsock port it stands for (when the GUID follows the vsock template) and whether Hyper-V
    registers it itself.
author:
  - hyperv.integration contributors (@hyperv-integration)
options: {}
extends_documentation_fragment:
  - hyperv.integration.attributes.info_module
  - hyperv.integration.attributes.hyperv_host
seealso:
  - module: hyperv.integration.hvsocket_service
  - module: hyperv.integration.guest_integration_service
    description: Loads hv_sock in Linux guests, which they need to reach these services over vsock.
"""

EXAMPLES = r"""
- name: List registered Hyper-V socket services
  hyperv.integration.hvsocket_service_info:
  register: hvsock

- name: Show the ones Linux guests can reach by vsock port
  ansible.builtin.debug:
    msg: "{{ hvsock.services | selectattr('vsock_port') | list }}"
"""

RETURN = r"""
services:
  description: Every registration, in registry order.
  returned: success
  type: list
  elements: dict
  contains:
    service_id:
      description: The GUID, upper case.
      type: str
      sample: 999E53D4-3D5C-4C3E-8779-BED06EC056E1
    name:
      description: The ElementName; V(null) when the entry has none.
      type: str
      sample: VM Session Service
    vsock_port:
      description: The vsock port the GUID stands for, V(null) when it does not follow the template.
      type: int
      sample: null
    builtin:
      description: Whether Hyper-V registers this entry itself.
      type: bool
      sample: true
"""
