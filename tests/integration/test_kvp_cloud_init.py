"""The KVP cross-check against a writer no one here wrote: cloud-init's Hyper-V KVP reporting handler
(``cloudinit.reporting.handlers.HyperVKvpReportingHandler``, Debian's cloud-init package installed in the
lab's Linux guest image, disabled at boot) writes its records to pool 1 of a running guest. Then
``guest_kvp_info`` in the guest must read exactly those records, and ``vm_kvp_info`` on the host must get
exactly them from the real hv_kvp_daemon, which enumerates pool 1 to the host (docs/dev/hyperv-facts.md
sections 8 and 9).

The records: a start and a finish event (the finish one with quotes, ``$(...)`` and non-ASCII text in its
description) and one event whose description is long enough for the handler to split it into several
records (cloud-init 22.4.2: a value over 1024 characters becomes ``<key>|<i>`` records).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import run_playbook
from support.cloud_init_kvp import EMIT_SCRIPT

ODD = "ünïcödé ✓ $(id) `uname` 'single' \"double\" back\\slash"
LONG = "".join("%04d" % i for i in range(500))  # 2000 ASCII characters: two or more records

EVENTS = [
    ["start", "init-local", "searching for local datasources"],
    ["finish", "init-local", ODD],
    ["start", "modules-final", LONG],
]


@pytest.mark.needs_root
def test_what_cloud_init_writes_in_the_guest_is_read_in_the_guest_and_from_the_host(tmp_path: Path, start_lab) -> None:
    lab = start_lab({"host": {"name": "hv01"}, "vms": [{"name": "lin01", "guest": "linux"}]})
    emit = {"name": "emit", "ansible.builtin.command": {"argv": ["python3", "-c", EMIT_SCRIPT, json.dumps(EVENTS)]}}
    guest = run_playbook(
        tmp_path, lab, [emit, {"name": "info", "hyperv.integration.guest_kvp_info": {}}], hosts="linux_guests"
    )
    assert guest.rc == 0, guest.stdout
    seen = json.loads(guest.result("emit")["result"]["stdout"])
    assert seen["version"] and seen["path"] == "/var/lib/hyperv/.kvp_pool_1"
    written = dict(seen["records"])
    assert len(seen["records"]) == len(written) >= 4  # the long event is split; no key is written twice
    assert any(json.loads(value)["msg"] == ODD for value in written.values())

    # In the guest: the pool as guest_kvp_info reads it holds exactly cloud-init's records.
    assert guest.result("info")["result"]["to_host"] == written

    # On the host: the same records, enumerated by the real daemon, through the host library.
    host = run_playbook(
        tmp_path, lab, [{"name": "read", "hyperv.integration.vm_kvp_info": {"name": "lin01"}}], name="host"
    )
    assert host.rc == 0, host.stdout
    (vm,) = host.result("read")["result"]["vms"]
    assert vm["guest_items_unavailable"] is None and vm["unparsed_items"] == 0, vm
    assert vm["guest_items"] == written
    assert vm["intrinsic_items"]["FullyQualifiedDomainName"]  # the daemon answered for the guest itself
