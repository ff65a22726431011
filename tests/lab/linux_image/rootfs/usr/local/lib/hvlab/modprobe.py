"""Lab guest image only: stand-in for modprobe (installed as /usr/local/sbin/modprobe, which comes
before /usr/sbin/modprobe in PATH; kmod itself is unchanged).

A container cannot load kernel modules and the image has no /lib/modules. The lab shows the guest
a /sys/module in which the Hyper-V modules of a Hyper-V guest are loaded (hv_vmbus, hv_utils,
hv_netvsc, hv_storvsc) and lets this stand-in load and unload hv_sock (Hyper-V sockets), so that
"is hv_sock loaded" (/sys/module/hv_sock exists) follows modprobe as on a real guest:

    modprobe hv_sock          creates /sys/module/hv_sock (initstate "live"), vsock first
    modprobe -r hv_sock       removes it (vsock too when nothing else holds it)
    modprobe -r hv_utils      fails: "Module hv_utils is in use", as with bound VMBus devices

Any other module goes to the real modprobe, which fails as it does in any container.
"""

import os
import shutil
import sys

SYS_MODULE = "/sys/module"
REAL_MODPROBE = ("/usr/bin/kmod", "modprobe")
LOADABLE = {"hv_sock": ("vsock",), "vsock": ()}  # stand-in modules -> what they depend on
IN_USE = ("hv_vmbus", "hv_utils", "hv_netvsc", "hv_storvsc")  # loaded at boot, held by devices
OPTIONS_WITH_VALUE = ("-C", "--config", "-d", "--dirname", "-S", "--set-version")


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


def remove(name, quiet):
    if not loaded(name):
        return 0  # modprobe -r of a module that is not loaded succeeds quietly
    if name in IN_USE or refcount(name, 0) > 0:
        if not quiet:
            print("modprobe: FATAL: Module %s is in use." % name, file=sys.stderr)
        return 1
    if not modular(name):
        if not quiet:
            print("modprobe: FATAL: Module %s is builtin." % name, file=sys.stderr)
        return 1
    shutil.rmtree(os.path.join(SYS_MODULE, name))
    for dependency in LOADABLE[name]:
        link = os.path.join(SYS_MODULE, dependency, "holders", name)
        if os.path.islink(link):
            os.unlink(link)
        if refcount(dependency, -1) == 0 and dependency in LOADABLE:
            remove(dependency, True)
    return 0


def main(args):
    remove_mode = quiet = all_mode = dry_run = False
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
        elif arg.startswith("-"):
            if arg.startswith("--") or not set(arg[1:]) <= set("vbsfi"):
                real(args)  # anything unusual: the real modprobe decides
        else:
            names.append(arg)
    if not (remove_mode or all_mode):
        names = names[:1]  # modprobe MODULE [PARAMETERS...]
    names = [name.replace("-", "_") for name in names]
    if not names or any(name not in LOADABLE and name not in IN_USE for name in names):
        real(args)
    status = 0
    for name in names:
        if dry_run:
            continue
        if remove_mode:
            status = max(status, remove(name, quiet))
        elif name in LOADABLE:
            insert(name)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
