"""Fixtures of the real-host suite: the maintainer's inventory, the scratch VMs' state at the start, restoring it.

Without HYPERV_INTEGRATION_REAL_INVENTORY every test that needs a real host is skipped (reason: how to run it).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/support: the one way the suites run ansible-playbook and the lab; realhost.py: this suite's helpers.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support

from realhost import (
    SKIP_REASON,
    Baseline,
    HvSocketService,
    KvpItems,
    Refused,
    ScratchVMs,
    Target,
    environment_inventory,
    load_target,
    play,
    scratch_state,
    task_ok,
)

# The start_lab fixture, for test_suite_against_lab.
from support.fixtures import start_lab  # noqa: F401  # pylint: disable=unused-import


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    """The hosts, scratch VMs and guests the inventory allows; skip without the variable, fail without scratch VMs."""
    inventory = environment_inventory()
    if inventory is None:
        pytest.skip(SKIP_REASON)
    try:
        return load_target(inventory, tmp_path_factory.mktemp("inventory"))
    except Refused as exc:
        pytest.fail("Refusing to run: %s" % exc, pytrace=False)


@pytest.fixture(scope="session")
def baseline(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    tmp = tmp_path_factory.mktemp("baseline")
    run = play(tmp, target, "host_info.yml", "baseline")
    every_vm = {h: [vm["name"] for vm in task_ok(run, "Every VM", h)["vms"]] for h in target.hosts}
    scratch = {h: scratch_state(run, "Scratch VMs", target, h) for h in target.hosts}
    (tmp / "baseline.json").write_text(json.dumps(scratch, indent=1, ensure_ascii=False), encoding="utf-8")
    return Baseline(run, every_vm, scratch)


@pytest.fixture
def scratch_vms(target: Target, baseline: Baseline, tmp_path: Path) -> Iterator[ScratchVMs]:
    """Every scratch VM's integration services are restored to the baseline after the test, pass or fail."""
    scratch = ScratchVMs(target, baseline)
    yield scratch
    if scratch.untouched:
        return
    run = play(tmp_path, target, "restore.yml", "restore", scratch.restore_vars())
    for host in target.hosts:
        try:
            after = scratch_state(run, "Scratch VMs after restore", target, host)
        except AssertionError as exc:
            pytest.fail(
                "could not restore the scratch VMs of %s: %s\nPut them back by hand; at the start they were:\n%s"
                % (host, exc, baseline.describe()),
                pytrace=False,
            )
        if after != baseline.scratch[host]:
            pytest.fail(
                "scratch VMs of %s not restored: now %s, at the start %s" % (host, after, baseline.scratch[host]),
                pytrace=False,
            )


@pytest.fixture
def hvsocket_service(target: Target, tmp_path: Path) -> Iterator[HvSocketService]:
    """A random service GUID and ElementName; the registration is removed after the test unless it saw it gone."""
    service = HvSocketService(
        service_id=str(uuid.uuid4()).upper(), name="hyperv.integration real-host test %s" % uuid.uuid4().hex[:8]
    )
    yield service
    if service.removed:
        return
    run = play(tmp_path, target, "hvsocket_cleanup.yml", "hvsocket-cleanup", service.extra_vars())
    for host in target.hosts:
        listed = [s["service_id"] for s in task_ok(run, "List after cleanup", host)["services"]]
        if service.service_id in listed:
            pytest.fail(
                "could not remove hv-socket service %s (%s) from %s; remove it by hand"
                % (service.service_id, service.name, host),
                pytrace=False,
            )


@pytest.fixture
def kvp_items(target: Target, tmp_path: Path) -> Iterator[KvpItems]:
    """Two host items under random keys; removed from the first scratch VM of each host after the test unless
    it saw them gone."""
    tag = uuid.uuid4().hex[:8]
    items = KvpItems(
        {
            "hyperv.integration.test.%s.markup" % tag: '<a href="x">&amp; it\'s $(id) `uname`</a>',
            "hyperv.integration.test.%s.Grüße" % tag: "ünïcödé ✓ 漢字\nsecond line",
        }
    )
    yield items
    if items.removed:
        return
    run = play(tmp_path, target, "kvp_cleanup.yml", "kvp-cleanup", items.extra_vars())
    for host in target.hosts:
        (vm,) = task_ok(run, "Read after cleanup", host)["vms"]
        left = sorted(set(items.items) & set(vm["host_items"] or {}))
        if left:
            pytest.fail(
                "could not remove the KVP items %s from %s on %s; remove them by hand" % (left, vm["name"], host)
            )
