# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter hyperv.integration.guest_wishes: the guest half to match what the host now offers."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

DOCUMENTATION = r"""
name: guest_wishes
short_description: The guest services to start or stop, from a VM's integration services on its host
version_added: 0.1.0
description:
  - From one VM's integration services as M(hyperv.integration.vm_integration_service) returned them (by
    key), the O(hyperv.integration.guest_integration_service#module:services) wishes that bring the guest in
    line with its host; usually fed by P(hyperv.integration.vm_outcome#filter).
  - Each service enabled on the host (in check mode, that would be enabled) becomes C(started).
  - With O(stop_disabled), each service disabled on the host becomes C(stopped). In check mode a service the
    host would newly disable is left out, since the host still offers it and the guest half still runs.
positional: check_mode, stop_disabled
options:
  _input:
    description: The VM's integration services, by key, each with C(enabled) and C(changed).
    type: dict
    required: true
  check_mode:
    description: Whether the host task ran in check mode (pass C(ansible_check_mode)).
    type: bool
    default: false
  stop_disabled:
    description: Whether to stop the guest half of the services the host has disabled.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Start the guest half of what the host enabled
  hyperv.integration.guest_integration_service:
    services: "{{ outcome.integration_services | hyperv.integration.guest_wishes(ansible_check_mode, false) }}"
"""

RETURN = r"""
_value:
  description: Service key to C(started) or C(stopped), in the order of the input.
  type: dict
  sample: {guest_service_interface: started, vss: stopped}
"""


def guest_wishes(services: t.Any, check_mode: t.Any = False, stop_disabled: t.Any = False) -> dict[str, str]:
    if not isinstance(services, dict):
        raise AnsibleFilterError("guest_wishes: the input must map service keys to their state, got %r" % (services,))
    check = boolean(check_mode, strict=True)
    stop = boolean(stop_disabled, strict=True)
    wishes: dict[str, str] = {}
    for key, item in services.items():
        if not isinstance(item, dict):
            raise AnsibleFilterError("guest_wishes: service %r has no state (got %r)" % (key, item))
        if item.get("enabled"):
            wishes[key] = "started"
        elif stop and not (check and item.get("changed")):
            wishes[key] = "stopped"
    return wishes


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"guest_wishes": guest_wishes}
