#!/usr/bin/python
# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_integration_service
short_description: Manage the guest half of Hyper-V integration services (Linux and Windows guests)
version_added: 0.1.0
description:
  - Brings the guest side of Hyper-V integration services to the state you declare, in one run for every
    service of the guest.
  - On Linux guests it works with the kernel driver C(hv_utils) and the user-space daemons of Key-Value
    Pair Exchange, VSS and Guest Service Interface, whatever their unit names on this distribution
    (Debian/Ubuntu C(hv-kvp-daemon), Fedora/RHEL C(hypervkvpd), SUSE and Arch C(hv_kvp_daemon), ...),
    detected at run time. On Linux 6.10 and later, Guest Service Interface needs C(uio_hv_generic) bound to
    the file copy device; the module binds it.
  - On Windows guests (a connection with a PowerShell shell) it manages the C(vmic*) services by their
    service names, which are the same in every language.
  - An integration service the host does not offer to this guest cannot be started; the task fails and
    says so, unless O(skip_not_offered) is set. Heartbeat, Shutdown and Time Synchronization live in the
    Linux kernel, so they cannot be stopped in a Linux guest (disable them on the host with
    M(hyperv.integration.vm_integration_service)); once the host no longer offers one, V(stopped) is
    already true and is reported unchanged.
  - On a machine that is not a Hyper-V guest (no VMBus) the module fails and changes nothing.
author:
  - hyperv.integration contributors (@hyperv-integration)
options:
  services:
    description:
      - Mapping of integration service to what you want of its guest half.
      - The service is a key (V(heartbeat), V(shutdown), V(time_synchronization),
        V(key_value_pair_exchange), V(vss), V(guest_service_interface)), an English or a known localized
        name; on Windows also V(powershell_direct) (C(vmicvmsession)) and V(remote_desktop_virtualization)
        (C(vmicrdv)).
      - The value is a state (V(started), V(stopped), V(restarted)) or a mapping with C(state), and
        C(enabled) (Linux, true or false, for units that can be enabled; static udev-activated units are
        reported and left alone) or C(start_mode) (Windows, V(automatic), V(manual) or V(disabled)).
      - V(restarted) always restarts, and so always reports a change.
      - At least one of O(services), O(hv_sock) and O(host_time_samples) is required.
    type: dict
  skip_not_offered:
    description:
      - Skip services that the host does not offer to this guest instead of failing.
      - Those services are listed in RV(not_offered).
    type: bool
    default: false
  hv_sock:
    description:
      - Linux guests only. V(true) loads the kernel module C(hv_sock) (Hyper-V sockets, C(AF_VSOCK) over
        VMBus) now and at boot; V(false) unloads it and stops loading it at boot.
      - At boot means a line C(hv_sock) in C(/etc/modules-load.d/hv_sock.conf) (read by
        C(systemd-modules-load)); a module already named in C(/etc/modules) or another C(modules-load.d)
        file counts as loaded at boot and is left where it is. V(false) fails, and changes nothing, when
        another file loads it, or when C(hv_sock) is built into the kernel.
      - Omit it to leave C(hv_sock) alone. Host services that guests reach over Hyper-V sockets are
        registered with M(hyperv.integration.hvsocket_service).
    type: bool
  host_time_samples:
    description:
      - Windows guests only. Whether the Windows Time service (W32Time) takes time samples from the Hyper-V
        host, through its Hyper-V time provider.
      - V(false) sets the value C(Enabled) (REG_DWORD) of
        C(HKLM\SYSTEM\CurrentControlSet\Services\W32Time\TimeProviders\VMICTimeProvider) to C(0), what
        virtualized domain controllers usually want, so that they take their time from the domain hierarchy;
        V(true) sets it to C(1), the Windows default. A change happens only when the value differs.
      - W32Time reads the value when it starts, so after a change the module restarts W32Time when it is
        running (Microsoft - "The registry entry requires that you restart the w32time service after it is
        changed"). A stopped W32Time is left stopped and reads the value when it next starts.
      - A guest without the C(VMICTimeProvider) key fails the task and nothing is changed. Writing the value
        needs an administrator account in the guest; without one the task fails before any change.
      - The Time Synchronization integration service (C(vmictimesync)) is not touched; to stop the host's
        time reaching the guest at all, disable V(time_synchronization) on the host with
        M(hyperv.integration.vm_integration_service).
      - Linux guests refuse it (Linux has no W32Time); there the host's time arrives through
        V(time_synchronization) and the PTP clock C(/dev/ptp_hyperv).
      - Omit it to leave the value alone.
    type: bool
attributes:
  check_mode:
    support: full
    description: Works out every step and reports it; runs none.
  diff_mode:
    support: full
    description: Shows each requested service's state before and after, and O(host_time_samples) before and after.
  platform:
    support: full
    platforms: [posix, windows]
    description:
      - Linux guests (systemd) over any connection.
      - Windows guests over winrm, psrp or ssh with a PowerShell shell.
notes:
  - Every service is checked before the first change; a service that cannot be brought to the wanted state
    fails the task and nothing is changed.
  - O(host_time_samples) follows Microsoft's guidance for virtualized domain controllers, including the restart
    of W32Time, see
    U(https://learn.microsoft.com/windows-server/networking/windows-time-service/windows-server-2016-improvements)
    (section "Virtualized Domains"; also part of
    U(https://learn.microsoft.com/windows-server/networking/windows-time-service/accurate-time)).
seealso:
  - module: hyperv.integration.guest_integration_service_info
  - module: hyperv.integration.vm_integration_service
"""

EXAMPLES = r"""
- name: Run the daemons of the services the host offers
  hyperv.integration.guest_integration_service:
    services:
      key_value_pair_exchange: started
      vss: started
      guest_service_interface: started
    skip_not_offered: true

- name: Start and enable the KVP daemon (Linux)
  hyperv.integration.guest_integration_service:
    services:
      key_value_pair_exchange:
        state: started
        enabled: true

- name: Load hv_sock now and at every boot, for applications that use Hyper-V sockets (Linux)
  hyperv.integration.guest_integration_service:
    hv_sock: true

- name: A domain controller takes its time from the domain hierarchy, not from the Hyper-V host (Windows)
  hyperv.integration.guest_integration_service:
    host_time_samples: false
  when: "'domain_controllers' in group_names"

- name: Stop VSS in a Windows guest and keep it stopped
  hyperv.integration.guest_integration_service:
    services:
      vss:
        state: stopped
        start_mode: disabled
"""

RETURN = r"""
integration_services:
  description:
    - By service key, what was found and what was done.
    - C(before) and C(after) hold the daemon's or service's state (Linux C(active), C(enabled), C(unit);
      Windows C(status), C(start_mode)); C(steps) lists what was run (or would be, in check mode).
  returned: success or failure after probing
  type: dict
  sample:
    key_value_pair_exchange:
      offered: true
      before: {unit: hv-kvp-daemon.service, active: false, enabled: true}
      after: {unit: hv-kvp-daemon.service, active: true, enabled: true}
      changed: true
      steps: [start hv-kvp-daemon.service]
hv_sock:
  description:
    - Present when O(hv_sock) is given. C(before) and C(after) say whether C(hv_sock) is loaded and whether
      it is loaded at boot; C(steps) lists what was run (or would be, in check mode).
  returned: when O(hv_sock) is given
  type: dict
  sample:
    before: {loaded: false, at_boot: false}
    after: {loaded: true, at_boot: true}
    changed: true
    steps: [load the kernel module hv_sock, load hv_sock at boot (/etc/modules-load.d/hv_sock.conf)]
host_time_samples:
  description:
    - Present when O(host_time_samples) is given (Windows guests).
    - C(before) and C(after) say whether W32Time takes time samples from the host (the C(Enabled) value of
      C(key) is not 0); V(null) when the value is absent or not a REG_DWORD. C(value_before) and C(value_after)
      are the registry data as found. C(w32time_restarted) says whether W32Time was restarted (or would be, in
      check mode) so that it reads the new value.
    - C(error) and C(w32time_error) are present when writing the value or restarting W32Time failed.
  returned: when O(host_time_samples) is given
  type: dict
  sample:
    key: HKLM\SYSTEM\CurrentControlSet\Services\W32Time\TimeProviders\VMICTimeProvider
    before: true
    after: false
    value_before: 1
    value_after: 0
    changed: true
    w32time_restarted: true
not_offered:
  description: Services left alone because the host does not offer them (O(skip_not_offered)).
  returned: always
  type: list
  elements: str
  sample: [guest_service_interface]
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError  # noqa: E402
from ansible_collections.hyperv.integration.plugins.module_utils.guest_args import (  # noqa: E402
    GUEST_ARGUMENT_SPEC,
    GUEST_REQUIRED_ONE_OF,
    HOST_TIME_SAMPLES_ON_LINUX,
    desired_guest_services,
)
from ansible_collections.hyperv.integration.plugins.module_utils.linux_guest_apply import (  # noqa: E402
    apply_guest_state,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=GUEST_ARGUMENT_SPEC, required_one_of=GUEST_REQUIRED_ONE_OF, supports_check_mode=True
    )
    if module.params["host_time_samples"] is not None:
        # The action plugin refuses this before the module is sent; kept for a module run on its own.
        module.fail_json(msg="Linux guest %s: %s" % (os.uname().nodename, HOST_TIME_SAMPLES_ON_LINUX), changed=False)
    try:
        wanted = desired_guest_services(module.params["services"], windows=False)
    except ArgumentError as exc:
        module.fail_json(msg=str(exc))

    def run(argv: list[str]) -> tuple[int, str, str]:
        return module.run_command(argv)

    result = apply_guest_state(
        wanted,
        module.params["skip_not_offered"],
        module.check_mode,
        root="/",
        run=run,
        release=os.uname().release,
        hv_sock=module.params["hv_sock"],
    )
    if module._diff:
        result["diff"] = result.pop("diff_data")
    else:
        result.pop("diff_data")
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
