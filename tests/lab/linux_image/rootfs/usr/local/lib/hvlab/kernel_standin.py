"""Lab guest image only: stand-in for udev device activation and for systemd-modules-load.

A container has no udev (read-only /sys, no uevents), so device-activated units never start, and it
cannot load kernel modules. This service (hvlab-kernel-standin.service, pulled in by
sysinit.target) does the part of both that the Hyper-V guest side depends on:

- When a node appears in /dev/vmbus (the lab host adds it while it offers the integration
  service), it starts the units that the udev rules name for it with ENV{SYSTEMD_WANTS} (Debian's
  60-hyperv-daemons.rules: KERNEL=="vmbus/hv_kvp", TAG+="systemd",
  ENV{SYSTEMD_WANTS}+="hv-kvp-daemon.service"), as systemd does for a udev-tagged device. Nodes
  present at start count as appearing (udev's coldplug). Rules are read as udev reads them: by
  file name across /etc, /run, /usr/local/lib and /usr/lib (/lib), the first directory winning,
  a link to /dev/null disabling the file.
- While the lab host offers Time Synchronization (a VMBus device of class HV_TS_GUID bound to
  hv_utils in /sys/bus/vmbus/devices), it gives the guest the Hyper-V PTP clock the way hv_utils
  and udev do: hv_utils registers a PTP clock named "hyperv" (/dev/ptpN, the lowest free N), and
  systemd's udev rule (SUBSYSTEM=="ptp", ATTR{clock_name}=="hyperv", SYMLINK+="ptp_hyperv") links
  /dev/ptp_hyperv to it. Both go when the device goes. /dev/ptpN is an empty regular file (no
  driver can answer PTP ioctls in a container); chronyd reads it through the lab's preloaded
  stand-in library (libhvlab-phc.so, see the image README).
- At start, it loads the modules listed in modules-load.d with the lab's modprobe stand-in (only
  the stand-in's own modules can load; see modprobe.py).
- At start, it gives the guest the kernel's module lists: /lib/modules/$(uname -r)/modules.builtin
  (empty: nothing Hyper-V related is built in; the release is only known at boot), and the lab's
  module table /run/hvlab/proc-modules bound over /proc/modules, when the kernel running the lab
  has a /proc/modules to bind over (a kernel without CONFIG_MODULES has none, and procfs cannot
  get a new file).
"""

import fnmatch
import glob
import os
import re
import socket
import subprocess
import sys
import time

DEV_DIR = "/dev/vmbus"
VMBUS_DEVICES = "/sys/bus/vmbus/devices"
TIME_SYNC_CLASS = "{9527e630-d0ae-497b-adce-e80ab0175caf}"  # HV_TS_GUID (include/linux/hyperv.h)
PTP_LINK = "/dev/ptp_hyperv"
# udev rules (udev(7)) and modules-load.d(5) files are looked up in the same places, most important
# first: /etc (the administrator's), /run (runtime), /usr/local/lib, /usr/lib (the vendor's), and /lib
# on a system whose /usr is not merged.
CONFIG_ROOTS = ("/etc", "/run", "/usr/local/lib", "/usr/lib", "/lib")
RULE_DIRS = tuple(os.path.join(root, "udev", "rules.d") for root in CONFIG_ROOTS)
MODULES_LOAD_DIRS = tuple(os.path.join(root, "modules-load.d") for root in CONFIG_ROOTS)
MODPROBE = "/usr/local/sbin/modprobe"
MODULE_TABLE = "/run/hvlab/proc-modules"  # written by the lab at boot, then by the modprobe stand-in
PROC_MODULES = "/proc/modules"
POLL_SECONDS = 0.2
MATCH = re.compile(r'(KERNEL|SUBSYSTEM)=="([^"]*)"')
WANTS = re.compile(r'ENV\{SYSTEMD_WANTS\}(\+?=)"([^"]*)"')


def config_files(dirs, suffix):
    """Files by name, the first directory holding a name winning (udev and systemd order)."""
    chosen = {}
    for directory in dirs:
        for path in glob.glob(os.path.join(directory, "*" + suffix)):
            chosen.setdefault(os.path.basename(path), path)
    return [chosen[name] for name in sorted(chosen) if os.path.realpath(chosen[name]) != "/dev/null"]


def rule_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read().replace("\\\n", "")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def wanted_units(kernel_name):
    """Units the rules add to SYSTEMD_WANTS for a misc device named kernel_name (vmbus/hv_kvp)."""
    units = []
    for path in config_files(RULE_DIRS, ".rules"):
        for line in rule_lines(path):
            if 'TAG+="systemd"' not in line.replace(" ", ""):
                continue
            matches = MATCH.findall(line)
            if not matches:
                continue
            subjects = {"KERNEL": kernel_name, "SUBSYSTEM": "misc"}
            if not all(fnmatch.fnmatchcase(subjects[key], pattern) for key, pattern in matches):
                continue
            for operator, value in WANTS.findall(line):
                if operator == "=":
                    units = []
                units.extend(value.split())
    return list(dict.fromkeys(units))


def device_added(name):
    units = wanted_units("vmbus/" + name)
    if not units:
        return
    print("%s/%s appeared: starting %s" % (DEV_DIR, name, " ".join(units)), file=sys.stderr)
    result = subprocess.run(["systemctl", "start", "--no-block", *units], check=False)
    if result.returncode != 0:
        print("systemctl start %s failed (%d)" % (" ".join(units), result.returncode), file=sys.stderr)


def load_modules():
    names = []
    for path in config_files(MODULES_LOAD_DIRS, ".conf"):
        for line in rule_lines(path):
            if not line.startswith(";"):
                names.append(line.split()[0])
    for name in names:
        subprocess.run([MODPROBE, "-q", name], check=False)


def kernel_module_files():
    release = os.uname().release
    directory = os.path.join("/lib/modules", release)
    os.makedirs(directory, exist_ok=True)
    builtin = os.path.join(directory, "modules.builtin")
    if not os.path.exists(builtin):
        with open(builtin, "w", encoding="utf-8"):
            pass
    if not os.path.exists(MODULE_TABLE):
        print("%s missing: /proc/modules stays the kernel's" % MODULE_TABLE, file=sys.stderr)
        return
    if not os.path.exists(PROC_MODULES):
        print("the kernel has no %s (no CONFIG_MODULES): nothing to bind over" % PROC_MODULES, file=sys.stderr)
        return
    table, proc = os.stat(MODULE_TABLE), os.stat(PROC_MODULES)
    if (table.st_dev, table.st_ino) == (proc.st_dev, proc.st_ino):
        return  # bound already (the service was restarted)
    result = subprocess.run(["mount", "--bind", MODULE_TABLE, PROC_MODULES], check=False)
    if result.returncode != 0:
        print("binding %s over %s failed (%d)" % (MODULE_TABLE, PROC_MODULES, result.returncode), file=sys.stderr)


def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


def present():
    """The nodes in /dev/vmbus as (name, inode, ctime): a node removed and created again between two
    looks is a new one, as udev sees a remove and an add event."""
    found = set()
    try:
        names = os.listdir(DEV_DIR)
    except OSError:
        return found
    for name in names:
        try:
            st = os.lstat(os.path.join(DEV_DIR, name))
        except OSError:
            continue
        found.add((name, st.st_ino, st.st_ctime_ns))
    return found


def time_sync_bound():
    """Whether a Time Synchronization device is bound to hv_utils (the host offers the service)."""
    try:
        names = os.listdir(VMBUS_DEVICES)
    except OSError:
        return False
    for name in names:
        device = os.path.join(VMBUS_DEVICES, name)
        try:
            with open(os.path.join(device, "class_id"), encoding="ascii") as handle:
                class_id = handle.read().strip().lower()
        except OSError:
            continue
        if class_id == TIME_SYNC_CLASS and os.path.basename(os.path.realpath(device + "/driver")) == "hv_utils":
            return True
    return False


def ptp_clock(wanted, clock):
    """Register or unregister the hyperv PTP clock; returns the /dev/ptpN now registered (or None)."""
    if wanted and clock is None:
        index = 0
        while os.path.lexists("/dev/ptp%d" % index):
            index += 1
        clock = "/dev/ptp%d" % index
        with open(clock, "w", encoding="ascii"):
            pass
        os.chmod(clock, 0o600)  # the kernel's mode for /dev/ptpN
        staged = PTP_LINK + ".hvlab-new"
        if os.path.lexists(staged):
            os.unlink(staged)
        os.symlink(os.path.basename(clock), staged)
        os.replace(staged, PTP_LINK)
        print("time synchronization offered: PTP clock hyperv at %s, %s" % (clock, PTP_LINK), file=sys.stderr)
    elif not wanted and clock is not None:
        if os.path.islink(PTP_LINK) and os.readlink(PTP_LINK) == os.path.basename(clock):
            os.unlink(PTP_LINK)
        if os.path.exists(clock):
            os.unlink(clock)
        print("time synchronization withdrawn: %s and %s removed" % (clock, PTP_LINK), file=sys.stderr)
        clock = None
    return clock


def registered_clock():
    """The clock registered by an earlier run of this service (it was restarted), or None."""
    if os.path.islink(PTP_LINK):
        clock = os.path.join("/dev", os.readlink(PTP_LINK))
        if os.path.isfile(clock):
            return clock
    return None


def main():
    kernel_module_files()
    load_modules()
    seen = set()
    clock = registered_clock()
    ready = False
    while True:
        now = present()
        for name in sorted({node[0] for node in now - seen}):
            device_added(name)
        seen = now
        try:
            clock = ptp_clock(time_sync_bound(), clock)
        except OSError as exc:
            print("PTP clock stand-in: %s" % exc, file=sys.stderr)
        if not ready:
            notify("READY=1")  # coldplug jobs are queued: boot waits for them, as for udev's trigger
            ready = True
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
