"""The collection against a real Hyper-V inventory (HYPERV_INTEGRATION_REAL_INVENTORY), through its own modules only.

Each case is one ansible-playbook run of tests/realhost/playbooks; assertions use only what the modules return.
Scratch VMs (hyperv_integration_test_vms) get their integration services back after each test that changes them.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from realhost import (
    GSI,
    IC_KEYS,
    Baseline,
    Enabled,
    Guest,
    HvSocketService,
    KvpItems,
    ScratchVMs,
    Target,
    enabled_of,
    play,
    read_inventory,
    scratch_state,
    task_ok,
    word,
)
from support.playbook import BIN, PlaybookRun, ansible_env, plain_values

TIME_SYNC = "time_synchronization"
# Enums come back as their names (VMState, VMHeartbeatStatus, VMIntegrationComponentOperationalStatus), never
# numbers; the suite does not list every name a host may use.
ENUM_NAME = re.compile(r"[A-Z][A-Za-z]*")


def _enum_name(value: Any) -> bool:
    return isinstance(value, str) and ENUM_NAME.fullmatch(value) is not None


def _flip(state: dict[str, Enabled], changes: dict[str, dict[str, bool]]) -> dict[str, Enabled]:
    """``state`` with ``changes`` (VM -> key -> wanted) applied."""
    return {vm: dict(keys, **changes.get(vm, {})) for vm, keys in state.items()}


def _same_as_start(run: PlaybookRun, task: str, target: Target, baseline: Baseline, host: str) -> dict[str, Enabled]:
    now = scratch_state(run, task, target, host)
    assert now == baseline.scratch[host], (
        "%s: the scratch VMs of %s are not as at the start of the session (%s); something else changes them"
        % (task, host, baseline.scratch[host])
    )
    return now


def _check_set_result(
    result: dict[str, Any], names: list[str], start: dict[str, Enabled], wish: dict[str, dict[str, bool]]
) -> None:
    """A vm_integration_service answer (task run with diff: true): per VM, in ``names`` order, each wished key's
    state before and after, changed, and the diff."""
    vms = result["vms"]
    assert [vm["name"].casefold() for vm in vms] == [n.casefold() for n in names], vms
    diff_before: dict[str, dict[str, str]] = {}
    diff_after: dict[str, dict[str, str]] = {}
    for name, vm in zip(names, vms, strict=True):
        wanted = wish.get(name, {})
        items = vm["integration_services"]
        assert set(items) == set(wanted), "VM %r: asked %s, answered %s" % (name, sorted(wanted), sorted(items))
        for key, on in wanted.items():
            item = items[key]
            assert "error" not in item, "VM %r %s: %s" % (name, key, item)
            assert item["enabled_before"] is start[name][key], (name, key, item)
            assert item["enabled"] is on, (name, key, item)
            assert item["changed"] is (start[name][key] != on), (name, key, item)
            assert isinstance(item["name"], str) and item["name"], (name, key, item)
        assert vm["changed"] is any(start[name][k] != on for k, on in wanted.items()), vm
        if wanted:
            diff_before[vm["name"]] = {k: word(start[name][k]) for k in wanted}
            diff_after[vm["name"]] = {k: word(on) for k, on in wanted.items()}
    assert result["changed"] is any(vm["changed"] for vm in vms)
    assert result.get("diff") == {"before": diff_before, "after": diff_after}, result.get("diff")


def _check_rerun(result: dict[str, Any], wish: dict[str, dict[str, bool]], names: list[str]) -> None:
    assert result["changed"] is False, result
    for name, vm in zip(names, result["vms"], strict=True):
        for key, on in wish.get(name, {}).items():
            item = vm["integration_services"][key]
            assert (item["enabled_before"], item["enabled"], item["changed"]) == (on, on, False), (name, key, item)


def test_host_info_lists_every_scratch_vm_with_six_services(target: Target, baseline: Baseline) -> None:
    for host in target.hosts:
        every = [name.casefold() for name in baseline.every_vm[host]]
        absent = [vm for vm in target.vms[host] if vm.casefold() not in every]
        assert not absent, "host %s: listing every VM does not show scratch VM(s) %s" % (host, absent)
        for name, vm in zip(target.vms[host], task_ok(baseline.run, "Scratch VMs", host)["vms"], strict=True):
            keys = [ic["key"] for ic in vm["integration_services"] if ic["key"] is not None]
            assert sorted(keys) == sorted(IC_KEYS), "VM %r on %s: services keyed %s" % (name, host, keys)
            assert isinstance(vm["id"], str) and vm["id"] and _enum_name(vm["state"]), vm
            assert vm["heartbeat"] is None or _enum_name(vm["heartbeat"]), vm
            for ic in vm["integration_services"]:
                assert isinstance(ic["enabled"], bool) and isinstance(ic["name"], str) and ic["name"], ic
                assert ic["id"].upper().endswith("\\" + ic["guid"].upper()), ic
                for status in ("primary_status", "secondary_status"):
                    assert ic[status] is None or _enum_name(ic[status]), ic


def test_guests_report_being_guests_and_what_is_offered(target: Target, tmp_path: Path) -> None:
    guests = target.all_guests()
    if not guests:
        pytest.skip("no guest is listed in hyperv_integration_test_guests")
    extra = {
        "realhost_guests": [g.name for g in guests],
        "realhost_guest_hosts": sorted({g.host for g in guests}),
        "realhost_guest_vms": {h: sorted({g.vm for g in guests if g.host == h}) for h in {g.host for g in guests}},
    }
    # A Linux guest's VMBus devices follow the host's offer within moments; give it a few seconds after earlier
    # changes (the restore of another test) before calling a difference an error.
    for attempt in range(4):
        run = play(tmp_path, target, "guests.yml", "guests-%d" % attempt, extra)
        lagging = _check_guests(run, guests)
        if not lagging:
            return
        time.sleep(5)
    pytest.fail("Linux guests do not see what their host offers: %s" % "; ".join(lagging), pytrace=False)


def _check_guests(run: PlaybookRun, guests: list[Guest]) -> list[str]:
    """Assert what must hold; return the Linux offer differences (which may only be late)."""
    lagging = []
    for guest in guests:
        host_vms = {vm["name"].casefold(): vm for vm in task_ok(run, "Guest VMs", guest.host)["vms"]}
        assert guest.vm.casefold() in host_vms, "host %s does not report VM %r" % (guest.host, guest.vm)
        vm = host_vms[guest.vm.casefold()]
        assert vm["state"] == "Running", "guest %s: its VM %r is %s" % (guest.name, guest.vm, vm["state"])
        host_enabled = enabled_of(vm)
        seen = task_ok(run, "Guest info", guest.name)
        assert seen["hyperv_guest"] is True, "guest %s does not see itself as a Hyper-V guest: %s" % (guest.name, seen)
        services = {ic["key"]: ic for ic in seen["integration_services"]}
        assert set(IC_KEYS) <= set(services), "guest %s reports %s" % (guest.name, sorted(services))
        if seen["os"] == "linux":
            offered = {key: services[key]["offered"] for key in IC_KEYS}
            if offered != {key: host_enabled[key] for key in IC_KEYS}:
                lagging.append("%s offered %s, host enabled %s" % (guest.name, offered, host_enabled))
        else:
            assert seen["os"] == "windows", seen
            for key in IC_KEYS:
                service = services[key]
                assert service["offered"] is None, service  # a Windows guest cannot tell
                assert service["service"]["exists"] is True, "guest %s has no service for %s: %s" % (
                    guest.name,
                    key,
                    service,
                )
                assert service["service"]["name"].startswith("vmic"), service
    return lagging


def test_set_name_and_services_check_apply_rerun_diff_and_readme(
    target: Target, baseline: Baseline, scratch_vms: ScratchVMs, tmp_path: Path
) -> None:
    # Flip Guest Service Interface and Time Synchronization of the first scratch VM; the others get the same wish.
    wish_of = {}
    for host in target.hosts:
        first = baseline.scratch[host][target.vms[host][0]]
        wish_of[host] = {GSI: not first[GSI], TIME_SYNC: not first[TIME_SYNC]}
    run = play(
        tmp_path,
        target,
        "set_name_services.yml",
        "set",
        {"realhost_wish": {h: {k: word(on) for k, on in w.items()} for h, w in wish_of.items()}},
    )
    for host in target.hosts:
        names = target.vms[host]
        start = _same_as_start(run, "Info before", target, baseline, host)
        wish = {vm: wish_of[host] for vm in names}

        checked = task_ok(run, "Check", host)
        _check_set_result(checked, names, start, wish)
        assert checked["changed"] is True
        assert scratch_state(run, "Info after check", target, host) == start, "check mode changed %s" % host

        applied = task_ok(run, "Apply", host)
        _check_set_result(applied, names, start, wish)
        assert applied["changed"] is True
        _check_rerun(task_ok(run, "Again", host), wish, names)
        assert scratch_state(run, "Info after apply", target, host) == _flip(start, wish)

        applied_state = _flip(start, wish)
        quick_start = task_ok(run, "Enable it on all of them", host)
        readme = {vm: {GSI: True, TIME_SYNC: True} for vm in names}
        assert quick_start["changed"] is (applied_state != _flip(applied_state, readme)), quick_start
        assert scratch_state(run, "Info after the quick start", target, host) == _flip(start, readme)


def test_set_vms_form_a_different_wish_per_vm(
    target: Target, baseline: Baseline, scratch_vms: ScratchVMs, tmp_path: Path
) -> None:
    if all(len(vms) < 2 for vms in target.vms.values()):
        pytest.skip("needs two scratch VMs on a host (hyperv_integration_test_vms) for different wishes per VM")
    # VM 1 flips Guest Service Interface, VM 2 flips VSS, VM 3 Guest Service Interface again, ...
    wish_of: dict[str, dict[str, dict[str, bool]]] = {}
    for host in target.hosts:
        wish_of[host] = {}
        for index, vm in enumerate(target.vms[host]):
            key = (GSI, "vss")[index % 2]
            wish_of[host][vm] = {key: not baseline.scratch[host][vm][key]}
    requests = {
        host: [{"name": vm, "services": {k: word(on) for k, on in w.items()}} for vm, w in wishes.items()]
        for host, wishes in wish_of.items()
    }
    run = play(tmp_path, target, "set_vms.yml", "vms", {"realhost_vms": requests})
    for host in target.hosts:
        names = target.vms[host]
        start = _same_as_start(run, "Info before", target, baseline, host)
        applied = task_ok(run, "Apply", host)
        _check_set_result(applied, names, start, wish_of[host])
        assert applied["changed"] is True
        _check_rerun(task_ok(run, "Again", host), wish_of[host], names)
        assert scratch_state(run, "Info after", target, host) == _flip(start, wish_of[host])


def test_a_missing_vm_fails_naming_it_and_changes_nothing(
    target: Target, baseline: Baseline, scratch_vms: ScratchVMs, tmp_path: Path
) -> None:
    missing = "hyperv-integration-test-no-such-vm-%s" % uuid.uuid4().hex[:12]
    for host in target.hosts:
        assert missing.casefold() not in [n.casefold() for n in baseline.every_vm[host]]
    wish = {h: {GSI: word(not baseline.scratch[h][target.vms[h][0]][GSI])} for h in target.hosts}
    run = play(tmp_path, target, "missing_vm.yml", "missing", {"realhost_missing": missing, "realhost_wish": wish})
    for host in target.hosts:
        refused = run.result("Set with a missing VM", host)
        assert refused["status"] == "failed", refused
        result = refused["result"]
        assert missing in result["msg"] and "Nothing was changed" in result["msg"], result["msg"]
        assert result["missing_vms"] == [missing], result
        assert result["changed"] is False, result
        _same_as_start(run, "Info after", target, baseline, host)
    scratch_vms.verified_unchanged()


def test_hvsocket_register_check_rerun_remove(
    target: Target, hvsocket_service: HvSocketService, tmp_path: Path
) -> None:
    guid, name = hvsocket_service.service_id, hvsocket_service.name
    run = play(tmp_path, target, "hvsocket.yml", "hvsocket", hvsocket_service.extra_vars())
    for host in target.hosts:
        before = task_ok(run, "List before", host)["services"]
        assert guid not in [s["service_id"] for s in before]

        checked = task_ok(run, "Register in check mode", host)
        assert (checked["changed"], checked["service_id"], checked["name"]) == (True, guid, name), checked
        assert checked["diff"]["before"][guid]["present"] is False, checked["diff"]
        assert checked["diff"]["after"][guid]["present"] is True, checked["diff"]
        assert checked["diff"]["after"][guid]["name"] == name, checked["diff"]
        assert task_ok(run, "List after check", host)["services"] == before, "check mode registered on %s" % host

        registered = task_ok(run, "Register", host)
        assert (registered["changed"], registered["service_id"], registered["name"]) == (True, guid, name)
        assert registered["vsock_port"] is None, registered
        listed = task_ok(run, "List after register", host)["services"]
        ours = [{k: s.get(k) for k in ("name", "vsock_port", "builtin")} for s in listed if s["service_id"] == guid]
        assert ours == [{"name": name, "vsock_port": None, "builtin": False}], listed
        assert [s for s in listed if s["service_id"] != guid] == before

        again = task_ok(run, "Register again", host)
        assert (again["changed"], again["name"]) == (False, name), again

        removed = task_ok(run, "Remove", host)
        assert removed["changed"] is True and removed["services"][0]["present"] is False, removed
        assert task_ok(run, "List after remove", host)["services"] == before
    hvsocket_service.removed = True


def test_kvp_host_items_check_set_read_rerun_remove(target: Target, kvp_items: KvpItems, tmp_path: Path) -> None:
    # On a real host this is what the lab cannot show: the item XML the host accepts and gives back (markup,
    # quotes, a line break, non-ASCII text), ReturnValue read as the method's out parameter, host items
    # read on a VM in any state (scratch VMs may be Off), keys matched exactly.
    items = kvp_items.items
    run = play(tmp_path, target, "kvp.yml", "kvp", kvp_items.extra_vars())
    for host in target.hosts:
        (before,) = task_ok(run, "Read before", host)["vms"]
        assert before["error"] is None and before["unparsed_items"] == 0, before
        others = {k: v for k, v in (before["host_items"] or {}).items() if k not in items}
        assert not set(items) & set(before["host_items"] or {}), before["host_items"]

        checked = task_ok(run, "Set in check mode", host)
        assert checked["changed"] is True, checked
        (vm,) = checked["vms"]
        assert {k: (i["before"], i["after"]) for k, i in vm["items"].items()} == {
            k: (None, v) for k, v in items.items()
        }
        assert task_ok(run, "Read after check", host)["vms"][0]["host_items"] == before["host_items"]

        written = task_ok(run, "Set", host)
        assert written["changed"] is True and all(i["changed"] for i in written["vms"][0]["items"].values()), written
        (after,) = task_ok(run, "Read after set", host)["vms"]
        assert {k: after["host_items"].get(k) for k in items} == items, after["host_items"]
        assert {k: v for k, v in after["host_items"].items() if k not in items} == others
        assert after["unparsed_items"] == 0, after

        again = task_ok(run, "Set again", host)
        assert again["changed"] is False, again

        removed = task_ok(run, "Remove", host)
        assert removed["changed"] is True, removed
        (gone,) = task_ok(run, "Read after remove", host)["vms"]
        assert (gone["host_items"] or {}) == others, gone["host_items"]
    kvp_items.removed = True


def test_file_copy_into_a_running_scratch_vm(target: Target, tmp_path: Path) -> None:
    # What the lab cannot show: Copy-VMFile itself on a real host (its parameter set, that it returns once the
    # file is there, that vmms reads the upload in the user's temporary directory), and how the host splits a
    # Linux destination for hv_fcopy_daemon (the trailing '/' question of hyperv-facts section 11).
    tag = uuid.uuid4().hex[:8]
    src = tmp_path / ("seed %s.txt" % tag)
    src.write_text("hyperv.integration real-host copy %s\n" % tag, encoding="utf-8")
    run = play(
        tmp_path, target, "file_copy.yml", "file-copy", {"realhost_copy_src": str(src), "realhost_copy_tag": tag}
    )
    ran = [host for host in target.hosts if any(r["task"] == "Copy" and r["host"] == host for r in run.results)]
    if not ran:
        pytest.skip(
            "no host of the inventory sets hyperv_integration_test_copy_dir (a directory in its first scratch VM)"
        )
    for host in ran:
        checked_run = run.result("Copy in check mode", host)
        checked = checked_run["result"]
        if checked_run["status"] != "ok":
            # The VM cannot take a file now: the message must say why, and nothing may have been sent.
            assert "cannot take a file through Guest Service Interface" in checked["msg"], checked
            assert run.result("Copy", host)["status"] != "ok"
            assert run.result("Copy", host)["result"]["msg"] == checked["msg"]
            continue
        assert checked["changed"] is True and checked["diff"]["after"], checked
        copied = task_ok(run, "Copy", host)
        assert copied["changed"] is True and copied["vms"][0]["changed"] is True, copied
        assert task_ok(run, "Copy again", host)["changed"] is False
        (vm,) = task_ok(run, "Read the record", host)["vms"]
        dest = copied["vms"][0]["dest"]
        assert vm["host_items"]["hyperv.integration.vm_file_copy:" + dest] == "sha256:" + copied["checksum"], vm
        deep_run = run.result("Copy making two directories", host)
        deep = deep_run["result"]
        assert deep_run["status"] == "ok", (
            "create_dirs did not make both directories of %s: %s. On a Linux guest this means the host sends the "
            "directory without a trailing '/' (hv_fcopy_daemon then leaves the last one uncreated): record it in "
            "docs/dev/hyperv-facts.md section 11 and the create_dirs documentation" % (dest, deep.get("msg"))
        )


def test_inventory_plugin_lists_every_scratch_vm(target: Target, tmp_path: Path) -> None:
    # The inventory plugin's own WinRM (pywinrm) or PSRP (pypsrp) session, not ansible's connection, against
    # the real hosts, with the connection settings the inventory gives them; it reads only (vm_inventory).
    hostvars = read_inventory(target.inventory, tmp_path)["_meta"]["hostvars"]
    entries, env = [], {}
    for index, host in enumerate(target.hosts):
        variables = hostvars.get(host) or {}
        connection = variables.get("ansible_connection", "winrm")
        if connection not in ("winrm", "psrp") or not isinstance(variables.get("ansible_password"), str):
            continue  # the plugin speaks winrm and psrp, and needs a password it can be given
        env["REALHOST_HV_PASSWORD_%d" % index] = variables["ansible_password"]
        entry = {
            "name": host,
            "connection": connection,
            "host": variables.get("ansible_host", host),
            "user": variables["ansible_user"],
            "password_env": "REALHOST_HV_PASSWORD_%d" % index,
        }
        if connection == "psrp":  # ansible.builtin.psrp's names and defaults
            protocol = variables.get("ansible_psrp_protocol", "https")
            entry.update(
                port=int(variables.get("ansible_port") or (5986 if protocol == "https" else 5985)),
                protocol=protocol,
                auth=variables.get("ansible_psrp_auth", "negotiate"),
                cert_validation=variables.get("ansible_psrp_cert_validation", "validate"),
                message_encryption=variables.get("ansible_psrp_message_encryption", "auto"),
            )
        else:
            scheme = variables.get("ansible_winrm_scheme", "https")
            entry.update(
                port=int(variables.get("ansible_port") or (5986 if scheme == "https" else 5985)),
                transport=variables.get("ansible_winrm_transport", "ntlm"),
                scheme=scheme,
                server_cert_validation=variables.get("ansible_winrm_server_cert_validation", "validate"),
            )
        entries.append(entry)
    if not entries:
        pytest.skip("no host of the inventory is reached over winrm or psrp with a password (what the plugin supports)")
    source = tmp_path / "realhost.hyperv.yml"
    config = {"plugin": "hyperv.integration.hyperv", "hyperv_hosts": entries}
    source.write_text(yaml.safe_dump(config), encoding="utf-8")
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list"],
        capture_output=True,
        text=True,
        env=dict(ansible_env(None), **env),
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0 and "could not be read" not in proc.stderr, proc.stderr[-3000:]
    listed = plain_values(json.loads(proc.stdout)["_meta"]["hostvars"])
    for entry in entries:
        host = entry["name"]
        mine = {v["hyperv_vm_name"].casefold(): v for v in listed.values() if v.get("hyperv_host") == host}
        for scratch in target.vms[host]:
            vm = mine.get(scratch.casefold())
            assert vm is not None, "scratch VM %s of %s is not listed: %s" % (scratch, host, sorted(mine))
            assert vm["hyperv_vm_state"] and vm["hyperv_vm_id"], vm
            assert set(vm["hyperv_integration_services"]) == set(IC_KEYS), vm["hyperv_integration_services"]
