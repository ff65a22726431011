# Copyright: (c) 2026, hyperv.integration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only: the module is the action plugin plugins/action/vm_file_copy.py,
# which runs on the controller and talks to the Hyper-V host through the task's connection.

DOCUMENTATION = r"""
---
module: vm_file_copy
short_description: Copy a file into Hyper-V guests through Guest Service Interface, without a network
version_added: 0.1.0
description:
  - Copies one file from the controller (or, with O(remote_src=true), from the Hyper-V host) into one or more
    running guests, through the Guest Service Interface integration service (C(Copy-VMFile)). The
    guests need no network, no credentials and no connection of their own.
  - Before anything is copied, every VM must be running, have Guest Service Interface enabled (it is off by
    default) and its guest half must answer (the C(vmicguestinterface) service in a Windows guest,
    C(hv_fcopy_daemon) in a Linux guest). Otherwise the task fails naming each such VM, what is wrong and how to
    fix it, and nothing is copied to any VM, unless O(skip_unready=true).
  - "Guest Service Interface copies into a guest but cannot read from it. So the module records, after each
    successful copy, the SHA-256 of what it copied as a host Key-Value Pair Exchange item of the VM, named
    C(hyperv.integration.vm_file_copy:) followed by O(dest), with the value C(sha256:) and the checksum in hex.
    The guest can read it too (a Linux guest in C(/var/lib/hyperv/.kvp_pool_0), a Windows guest under
    C(HKLM\\SOFTWARE\\Microsoft\\Virtual Machine\\External)). A VM is copied to only when that record differs
    from the source's checksum; C(changed) is true only then."
  - A file changed or removed inside the guest, or written there by other means, is not seen (the record only
    says what this module copied last). O(force=true) copies regardless of the record.
  - An existing file at O(dest) is always replaced (C(Copy-VMFile -Force)).
  - "What a copy costs: one PowerShell process on the host checks the VMs and reads the records; when no VM needs
    the file, that is all and nothing is sent. Otherwise ansible makes a temporary directory on the host (its
    C(remote_tmp), one process), the file is sent once over the task's connection (whatever the number of VMs)
    into it under its own name, and one more process copies it to each VM that needs it and removes the
    directory. When sending or copying fails, the directory is removed too (one more process if the copy call
    did not answer). With C(ANSIBLE_KEEP_REMOTE_FILES) it is kept, as ansible keeps its own."
  - A destination that is an existing directory in a Windows guest gets the file under the source's own name
    inside it (C(Msvm_CopyFileToGuestSettingData)); the record is still kept under O(dest).
  - Runs against the Hyper-V host (Windows), over C(winrm), C(psrp) or C(ssh) with a PowerShell shell.
    Use C(delegate_to) to reach the host from a play over guests.
author:
  - hyperv.integration contributors (@hyperv-integration)
options:
  name:
    description:
      - Name of one VM, or a list of VM names; each gets the same file at the same O(dest).
      - Names match exactly, ignoring case as Hyper-V does; wildcard characters have no special meaning.
      - A string is always one name, even when it contains commas.
      - A name that matches no VM, or more than one VM, fails the task before anything is copied.
      - Required with O(dest); mutually exclusive with O(vms).
    type: raw
    aliases: [vm, vm_name]
  src:
    description:
      - The file to copy. On the controller, found as M(ansible.builtin.copy) finds it (a relative path is looked
        for in the role's or play's C(files) directory); a vault-encrypted file is decrypted.
      - With O(remote_src=true), the absolute path of a file on the Hyper-V host (C(C:\\dir\\file)), taken
        literally.
      - One file; directories are refused.
    type: path
    required: true
  remote_src:
    description: Whether O(src) is on the Hyper-V host instead of the controller; nothing is sent then.
    type: bool
    default: false
  dest:
    description:
      - The absolute path of the file in the guest, file name included. Its form says which guest it is for -
        C(/dir/file) for Linux guests, C(C:\\dir\\file) for Windows guests - and each form is checked before
        anything is sent, with an error that says which rule it breaks.
      - "Linux: ASCII only (the guest daemon of kernels 6.10 and later writes every other character as C(X)),
        C(/) as the only separator, the directory and the file name at most 259 characters each (the kernel
        cuts longer ones). Windows: C(\\) as the separator, at most 259 characters, no C(< > : \" | ? *), no
        name ending in a dot or a space, no device names."
      - No C(%NAME%) anywhere (the guest would expand it as an environment variable).
      - The host records the copy under a key made of O(dest), which must fit a Key-Value Pair Exchange key
        (about 220 characters of O(dest)).
      - Required with O(name); mutually exclusive with O(vms).
    type: str
  create_dirs:
    description:
      - Whether missing directories of O(dest) are created in the guest (C(Copy-VMFile -CreateFullPath)).
      - "Linux guests: C(hv_fcopy_daemon) creates a directory of the path only where a C(/) follows it; whether the
        host sends the last directory with one is not documented, so the last directory may have to exist."
      - V(false) when omitted. Mutually exclusive with O(vms), whose entries each have their own.
    type: bool
  vms:
    description:
      - One entry per VM - its name, destination and O(create_dirs) - when VMs get the file at different paths,
        for example a Linux and a Windows guest in one task. The file is still sent to the host once.
      - Mutually exclusive with O(name), O(dest) and O(create_dirs). Two entries for one VM are refused, also in
        two spellings of its name that the host takes for one; nothing is copied then.
    type: list
    elements: dict
    suboptions:
      name:
        description: The VM, named as in O(name).
        type: raw
        required: true
      dest:
        description: Where this VM gets the file, as in O(dest).
        type: str
        required: true
      create_dirs:
        description: As O(create_dirs), for this VM.
        type: bool
        default: false
  force:
    description:
      - Copy to every VM even when its record says this source was copied to O(dest) already, for example
        because the file was changed or removed inside the guest. The task then always reports C(changed).
    type: bool
    default: false
  skip_unready:
    description:
      - Copy to the VMs that can take the file and skip, with a warning, those that cannot (not running, Guest
        Service Interface disabled or not answering), instead of failing the task before anything is copied.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Checks the VMs and the records and reports which VMs would get the file; nothing is sent or copied.
  diff_mode:
    support: full
    description: Shows, for each VM that gets the file, the recorded checksum before and the source's after.
extends_documentation_fragment:
  - hyperv.integration.attributes.hyperv_host
notes:
  - When copying fails for some VMs, the task fails, its message names each of them with the host's reason and
    lists the VMs that got the file; RV(vms) shows each. Their records are written only after a copy succeeded,
    so running the task again copies to the VMs that did not get it.
  - A Linux guest gets the file owned by root with mode 0744 (less the daemon's umask); set other modes inside
    the guest afterwards.
  - Guest Service Interface copies from the host into a guest only; it cannot fetch files from a guest.
seealso:
  - module: hyperv.integration.vm_integration_service
  - module: hyperv.integration.vm_kvp_info
  - module: ansible.builtin.copy
  - name: Copy-VMFile
    description: The Hyper-V cmdlet this module runs on the host.
    link: https://learn.microsoft.com/powershell/module/hyper-v/copy-vmfile
"""

EXAMPLES = r"""
- name: Guest Service Interface is off by default
  hyperv.integration.vm_integration_service:
    name: [web01, win01]
    services:
      guest_service_interface: enabled

- name: A seed file into a Linux and a Windows guest that have no network, sent to the host once
  hyperv.integration.vm_file_copy:
    src: files/seed config.json
    vms:
      - name: web01
        dest: /etc/myapp/seed config.json
      - name: win01
        dest: 'C:\ProgramData\MyApp\seed config.json'
        create_dirs: true

- name: The same file at the same path in several guests; a rerun copies nothing unless the file changed
  hyperv.integration.vm_file_copy:
    name: [web01, web02]
    src: files/motd
    dest: /etc/motd

- name: A file already on the host to every VM of a group, skipping those that cannot take it now
  hyperv.integration.vm_file_copy:
    name: "{{ groups['lab_vms'] | map('extract', hostvars, 'hyperv_vm_name') | list }}"
    src: 'D:\Deploy\unattend.xml'
    remote_src: true
    dest: 'C:\Windows\Panther\unattend.xml'
    skip_unready: true
  delegate_to: hv01
"""

RETURN = r"""
src:
  description: O(src), as given.
  returned: always
  type: str
  sample: files/seed config.json
checksum:
  description: The SHA-256 of the source (lower-case hex).
  returned: when the source was read
  type: str
  sample: 8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4
size:
  description: The source's size in bytes.
  returned: when the source was read
  type: int
  sample: 3145728
vms:
  description: Each VM named in O(name) or O(vms), with what the task did to it.
  returned: when the host was reached, every VM was found and every VM could take the file (or O(skip_unready=true))
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
      description: The name this task gave the VM in O(name) or O(vms); the host may spell it in another case.
      type: str
      sample: WEB01
    dest:
      description: Where in this VM the file goes.
      type: str
      sample: /etc/myapp/seed config.json
    changed:
      description: Whether the file was copied to this VM (in check mode, whether it would be).
      type: bool
      sample: true
    checksum:
      description: The source's SHA-256, which the VM's record holds after a successful copy.
      type: str
      sample: 8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4
    previous_checksum:
      description: The SHA-256 the VM's record held before the task; V(null) when nothing was copied to O(dest) before.
      type: str
      sample: null
    skipped:
      description: Why the VM was skipped (O(skip_unready=true)); V(null) when it was not.
      type: str
      sample: null
    error:
      description: Why copying to this VM failed, in the host's words; V(null) when it did not.
      type: str
      sample: null
missing_vms:
  description: Names in O(name) or O(vms) the host has no VM for; nothing was copied.
  returned: when some VM was not found
  type: list
  elements: str
  sample: [old99]
"""
