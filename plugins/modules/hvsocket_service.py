# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only: the module is the action plugin plugins/action/hvsocket_service.py.

DOCUMENTATION = r"""
---
module: hvsocket_service
short_description: Register or unregister Hyper-V socket services on a Hyper-V host
version_added: 0.1.0
description:
  - Applications that talk between host and guests over Hyper-V sockets (AF_HYPERV on Windows, AF_VSOCK
    on Linux) must be registered on the host, under
    C(HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\GuestCommunicationServices),
    as a key named by the service GUID with a C(ElementName). This module makes that registration
    declared state.
  - Give the service by O(service_id), or by O(vsock_port) - the port a Linux guest connects to, which
    maps to the GUID C(<port as 8 hex digits>-facb-11e6-bd58-64006a7986d3) - or by O(name) alone - the entry
    with exactly that ElementName, or a new one whose GUID is derived from the name (UUID version 5 in the
    namespace C(91960ce1-d25d-529f-a991-c7fb15ca3145)), so every host gets the same GUID for the same name.
  - O(state=absent) removes that one entry and never touches another key. The entries Hyper-V registers
    itself (such as C(999E53D4-3D5C-4C3E-8779-BED06EC056E1), VM Session Service) are only removed with
    O(force=true).
  - Several services at once with O(services), in one PowerShell call.
author:
  - hyperv.integration contributors (@hyperv-integration)
options:
  name:
    description:
      - The ElementName (friendly name) of the service. Required to register one.
      - At most 256 characters, no control characters.
    type: str
  service_id:
    description: The service GUID, with or without braces, any case.
    type: str
  vsock_port:
    description: The AF_VSOCK port Linux guests connect to (0 to 4294967294). Mutually exclusive with O(service_id).
    type: int
  state:
    description: Whether the registration should exist.
    type: str
    choices: [present, absent]
    default: present
  force:
    description: Allow removing a registration that Hyper-V itself makes.
    type: bool
    default: false
  services:
    description:
      - Several registrations, each with the options above (C(name), C(service_id), C(vsock_port),
        C(state), C(force)). Mutually exclusive with O(name), O(service_id) and O(vsock_port).
    type: list
    elements: dict
    suboptions:
      name:
        description: The friendly name to register, as O(name).
        type: str
      service_id:
        description: The service GUID, as O(service_id).
        type: str
      vsock_port:
        description: A Linux guest's vsock port instead of a GUID, as O(vsock_port).
        type: int
      state:
        description: As O(state).
        type: str
        choices: [present, absent]
        default: present
      force:
        description: As O(force).
        type: bool
        default: false
extends_documentation_fragment:
  - hyperv.integration.attributes.hyperv_host
attributes:
  check_mode:
    support: full
    description: Compares and reports; the registry is not changed.
  diff_mode:
    support: full
    description: Shows each entry before and after.
notes:
  - Registering by O(name) alone reads the registry first, so it costs a second PowerShell call.
  - Linux kernels that still have C(MAX_HOST_LISTEN_PORT) in C(hyperv_transport.c) cannot connect to host
    ports above 0x7FFFFFFF; the module warns about such ports.
seealso:
  - module: hyperv.integration.hvsocket_service_info
  - name: Make your own integration services
    description: Microsoft's guide to Hyper-V sockets and their registration.
    link: https://learn.microsoft.com/virtualization/hyper-v-on-windows/user-guide/make-integration-service
"""

EXAMPLES = r"""
- name: Register the service a Linux guest reaches on vsock port 2761
  hyperv.integration.hvsocket_service:
    name: My agent
    vsock_port: 2761

- name: Register by name alone (same GUID on every host)
  hyperv.integration.hvsocket_service:
    name: backup-agent
  register: agent

- name: Several at once
  hyperv.integration.hvsocket_service:
    services:
      - {name: metrics, vsock_port: 5000}
      - {service_id: 00000ac9-facb-11e6-bd58-64006a7986d3, state: absent}
"""

RETURN = r"""
service_id:
  description: The GUID of the service (single-service form).
  returned: success, when O(services) is not used
  type: str
  sample: 00000AC9-FACB-11E6-BD58-64006A7986D3
name:
  description: Its ElementName after the task (single-service form).
  returned: success, when O(services) is not used
  type: str
  sample: My agent
vsock_port:
  description: The vsock port the GUID stands for, V(null) when it does not follow the vsock template.
  returned: success, when O(services) is not used
  type: int
  sample: 2761
services:
  description:
    - Each service, with C(service_id), C(name), C(present), C(vsock_port), C(builtin), C(changed) and
      C(before).
  returned: success
  type: list
  elements: dict
"""
