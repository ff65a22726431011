"""Lab guest image only: stand-in for hv_vss_daemon.

The real daemon talks to the kernel's Hyper-V device (/dev/vmbus/hv_vss), which a container cannot
have, so it cannot run here. (hv_kvp_daemon and hv_fcopy_daemon run for real, with the preloaded
library hvt_standin.c in place of their devices: tests/lab/linux_image/README.md.) This stand-in runs
while the lab's stand-in device node exists, and exits non-zero when the node is absent at start or
disappears: what the real daemon does when the host does not offer, or stops offering, the
integration service.

It records its unit's state for the lab host in /run/hvlab/daemons (a host directory bound into
the container): UNIT holds "active" or "inactive", UNIT.ever-active exists once the daemon ran
since boot.

    python3 hv_daemon_standin.py run DEVICE UNIT     ExecStart= (DEVICE: hv_vss)
    python3 hv_daemon_standin.py stopped UNIT        ExecStopPost=
"""

import os
import sys
import time

STATUS_DIR = "/run/hvlab/daemons"
POLL_SECONDS = 0.2


def record(unit, state):
    try:
        os.makedirs(STATUS_DIR, exist_ok=True)
        path = os.path.join(STATUS_DIR, unit)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(state + "\n")
        os.replace(path + ".tmp", path)
        if state == "active":
            with open(path + ".ever-active", "w", encoding="utf-8"):
                pass
    except OSError as exc:
        print("hvlab stand-in: cannot record the state of %s: %s" % (unit, exc), file=sys.stderr)


def run(device, unit):
    path = "/dev/vmbus/" + device
    if not os.path.exists(path):
        # The real daemons log this and exit with EXIT_FAILURE.
        print("open %s failed; error: 2 No such file or directory" % path, file=sys.stderr)
        return 1
    record(unit, "active")
    print("hvlab stand-in for %s: running while %s exists" % (unit, path), file=sys.stderr)
    while os.path.exists(path):
        time.sleep(POLL_SECONDS)
    print("%s disappeared: the host no longer offers this service" % path, file=sys.stderr)
    return 1


def main(argv):
    if len(argv) == 3 and argv[0] == "run":
        return run(argv[1], argv[2])
    if len(argv) == 2 and argv[0] == "stopped":
        record(argv[1], "inactive")
        return 0
    print("usage: hv_daemon_standin.py run DEVICE UNIT | stopped UNIT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
