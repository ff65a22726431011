# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attribute blocks shared by the collection's modules."""

from __future__ import annotations


class ModuleDocFragment:
    # Modules that only read.
    INFO_MODULE = r"""
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Reads only; there is nothing to compare.
"""

    # Modules that run in a guest, Linux or Windows.
    GUEST = r"""
attributes:
  platform:
    support: full
    platforms: [posix, windows]
    description: Linux guests over any connection; Windows guests over winrm, psrp or ssh with a PowerShell shell.
"""

    # Host modules that change the host: check mode reports and writes nothing.
    HYPERV_HOST_CHANGE = r"""
attributes:
  check_mode:
    support: full
    description: Compares and reports what would change; the host is not modified.
  diff_mode:
    support: full
    description: Shows, for each VM, what the task asked about before and after (the diff is keyed by VM name).
"""

    # Host modules that read VMs: the VMs to read, by name.
    HOST_VM_NAMES = r"""
options:
  name:
    description:
      - One VM name, or a list of them; omitted, every VM of the host.
      - Names match exactly, ignoring case as Hyper-V does; wildcard characters have no special meaning.
      - A string is always one name, even when it contains commas.
      - A name that matches no VM, or more than one VM, fails the task.
    type: raw
    aliases: [vm, vm_name]
"""

    # Modules that run against a Hyper-V host.
    HYPERV_HOST = r"""
attributes:
  platform:
    support: full
    platforms: windows
    description: Runs against a Windows Hyper-V host.
notes:
  - The account used needs to be allowed to manage Hyper-V on the host (member of C(Hyper-V Administrators)
    or an administrator).
"""
