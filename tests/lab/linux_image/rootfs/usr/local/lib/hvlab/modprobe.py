"""Lab guest image only: stand-in for modprobe (installed as /usr/local/sbin/modprobe, which comes
before /usr/sbin/modprobe in PATH; kmod itself is unchanged).

A container cannot load kernel modules and the image has no /lib/modules. The lab shows the guest
a /sys/module in which the Hyper-V modules of a Hyper-V guest are loaded (hv_vmbus, hv_utils,
hv_netvsc, hv_storvsc) and lets this stand-in load and unload hv_sock (Hyper-V sockets), so that
"is hv_sock loaded" (/sys/module/hv_sock exists) follows modprobe as on a real guest:

    modprobe hv_sock          creates /sys/module/hv_sock (initstate "live"), vsock first
    modprobe -r hv_sock       removes it (vsock too when nothing else holds it)
    modprobe -r hv_utils      fails: "Module hv_utils is in use", as with bound VMBus devices

    modprobe -n hv_sock       dry run: checks, changes nothing
    modprobe --first-time ... fails if the module is already loaded (insert) or not loaded (-r)

The lab's module table (/run/hvlab/proc-modules, real /proc/modules format, bound over
/proc/modules at boot when the kernel has one) follows: a line per stand-in module loaded as a
module, with its use count and holders. Any other module goes to the real modprobe, which fails
as it does in any container.
"""

import os
import shutil
import sys

SYS_MODULE = "/sys/module"
REAL_MODPROBE = ("/usr/bin/kmod", "modprobe")
LOADABLE = {"hv_sock": ("vsock",), "vsock": ()}  # stand-in modules -> what they depend on
IN_USE = ("hv_vmbus", "hv_utils", "hv_netvsc", "hv_storvsc")  # loaded at boot, held by devices
OPTIONS_WITH_VALUE = ("-C", "--config", "-d", "--dirname", "-S", "--set-version")
SHORT_FLAGS = set("rqanvbsfi")
MODULE_TABLE = "/run/hvlab/proc-modules"  # the guest's /proc/modules (kernel_standin.py binds it)
# Sizes as Debian 12's 6.1 kernel shows them; the address is what a process without CAP_SYSLOG sees.
SIZES = {
    "hv_vmbus": 159744,
    "hv_utils": 57344,
    "hv_netvsc": 126976,
    "hv_storvsc": 28672,
    "hv_sock": 28672,
    "vsock": 61440,
}
ADDRESS = "0x0000000000000000"


def real(args):
    os.execv(REAL_MODPROBE[0], [REAL_MODPROBE[1], *args])


def loaded(name):
    return os.path.isdir(os.path.join(SYS_MODULE, name))


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def modular(name):
    """Loaded as a module (has initstate), not built into the kernel."""
    return os.path.exists(os.path.join(SYS_MODULE, name, "initstate"))


def refcount(name, delta):
    """Reads and moves a loaded module's use count; built-in modules have none (0)."""
    if not modular(name):
        return 0
    path = os.path.join(SYS_MODULE, name, "refcnt")
    try:
        with open(path, encoding="utf-8") as handle:
            count = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        count = 0
    count = max(count + delta, 0)
    if delta:
        write(path, "%d\n" % count)
    return count


def insert(name):
    if loaded(name):
        return
    for dependency in LOADABLE[name]:
        insert(dependency)
        if modular(dependency):
            refcount(dependency, +1)
            holders = os.path.join(SYS_MODULE, dependency, "holders")
            os.makedirs(holders, exist_ok=True)
            if not os.path.lexists(os.path.join(holders, name)):
                os.symlink("../../" + name, os.path.join(holders, name))
    directory = os.path.join(SYS_MODULE, name)
    os.makedirs(os.path.join(directory, "holders"))
    write(os.path.join(directory, "initstate"), "live\n")
    write(os.path.join(directory, "refcnt"), "0\n")


def holders(name):
    try:
        return sorted(os.listdir(os.path.join(SYS_MODULE, name, "holders")))
    except OSError:
        return []


def table_line(name):
    """A /proc/modules line: name size refcount holders state address."""
    users = holders(name)
    used_by = "".join(user + "," for user in users) or "-"
    return "%s %d %d %s Live %s\n" % (name, SIZES.get(name, 16384), refcount(name, 0), used_by, ADDRESS)


def sync_table():
    """Brings the module table in line with /sys/module for the stand-in's modules (newest first)."""
    try:
        with open(MODULE_TABLE, encoding="utf-8") as handle:
            lines = handle.readlines()
    except OSError:
        return  # not in a lab guest
    known = set(LOADABLE) | set(IN_USE)
    listed = [line.split()[0] for line in lines if line.split()]
    new = [table_line(name) for name in sorted(known - set(listed)) if modular(name)]
    kept = []
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        if fields[0] not in known:
            kept.append(line)
        elif modular(fields[0]):
            kept.append(table_line(fields[0]))
    with open(MODULE_TABLE, "w", encoding="utf-8") as handle:  # in place: /proc/modules is bound to it
        handle.writelines(new + kept)


def fail(quiet, message):
    if not quiet:
        print("modprobe: " + message, file=sys.stderr)
    return 1


def remove(name, quiet, dry_run=False):
    if not loaded(name):
        return 0  # modprobe -r of a module that is not loaded succeeds quietly
    if name in IN_USE or refcount(name, 0) > 0:
        return fail(quiet, "FATAL: Module %s is in use." % name)
    if not modular(name):
        return fail(quiet, "FATAL: Module %s is builtin." % name)
    if dry_run:
        return 0
    shutil.rmtree(os.path.join(SYS_MODULE, name))
    for dependency in LOADABLE[name]:
        link = os.path.join(SYS_MODULE, dependency, "holders", name)
        if os.path.islink(link):
            os.unlink(link)
        if refcount(dependency, -1) == 0 and dependency in LOADABLE:
            remove(dependency, True)
    return 0


def main(args):
    remove_mode = quiet = all_mode = dry_run = first_time = False
    names = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in OPTIONS_WITH_VALUE:
            skip = True
        elif arg in ("-r", "--remove"):
            remove_mode = True
        elif arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-a", "--all"):
            all_mode = True
        elif arg in ("-n", "--dry-run", "--show"):
            dry_run = True
        elif arg == "--first-time":
            first_time = True
        elif arg.startswith("-"):
            if arg.startswith("--") or not set(arg[1:]) <= SHORT_FLAGS:
                real(args)  # anything unusual: the real modprobe decides
            remove_mode = remove_mode or "r" in arg
            quiet = quiet or "q" in arg
            all_mode = all_mode or "a" in arg
            dry_run = dry_run or "n" in arg
        else:
            names.append(arg)
    if not (remove_mode or all_mode):
        names = names[:1]  # modprobe MODULE [PARAMETERS...]
    names = [name.replace("-", "_") for name in names]
    if not names or any(name not in LOADABLE and name not in IN_USE for name in names):
        real(args)
    status = 0
    for name in names:
        if first_time and loaded(name) != remove_mode:
            if remove_mode:
                status = max(status, fail(quiet, "FATAL: Module %s is not in kernel." % name))
            else:
                status = max(status, fail(quiet, "ERROR: could not insert '%s': Module already in kernel" % name))
        elif remove_mode:
            status = max(status, remove(name, quiet, dry_run))
        elif name in LOADABLE and not dry_run:
            insert(name)
    if not dry_run:
        sync_table()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
