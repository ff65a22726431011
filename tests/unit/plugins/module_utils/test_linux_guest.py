"""Linux guest probing, planning and applying (linux_guest_probe, _plan, _apply) against fixture trees of
several distributions and kernels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.hyperv.integration.plugins.module_utils import linux_guest_plan as lgplan
from ansible_collections.hyperv.integration.plugins.module_utils import linux_guest_probe as lgp
from ansible_collections.hyperv.integration.plugins.module_utils.ic_catalog import CATALOG, by_key
from ansible_collections.hyperv.integration.plugins.module_utils.linux_guest_apply import (
    NOT_A_GUEST,
    apply_guest_state,
)

OS_RELEASE = {
    "debian": 'ID=debian\nVERSION_ID="12"\n',
    "ubuntu": "ID=ubuntu\nID_LIKE=debian\n",
    "fedora": "ID=fedora\n",
    "rhel": 'ID="rhel"\nID_LIKE="fedora"\n',
    "sles": 'ID="sles"\nID_LIKE="suse"\n',
    "arch": "ID=arch\n",
}


class FakeSystemd:
    """systemctl show/start/stop/enable/disable over a dict of units; records every command."""

    def __init__(
        self,
        units: dict[str, tuple[str, str]],
        start_fails: set[str] | None = None,
        masked: set[str] | None = None,
        rc: int = 0,
    ) -> None:
        self.units = {name: list(state) for name, state in units.items()}  # name -> [active, unit_file]
        self.start_fails = start_fails or set()
        self.masked = masked or set()
        self.rc = rc
        self.commands: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.commands.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            if self.rc:
                return self.rc, "", "System has not been booted with systemd as init system (PID 1)."
            blocks = []
            for name in argv[argv.index("--") + 1 :]:
                if name in self.units:
                    active, file_state = self.units[name]
                    load = "masked" if name in self.masked else "loaded"
                    blocks.append(
                        "Id=%s\nLoadState=%s\nActiveState=%s\nUnitFileState=%s" % (name, load, active, file_state)
                    )
                else:
                    blocks.append("Id=%s\nLoadState=not-found\nActiveState=inactive\nUnitFileState=" % name)
            return 0, "\n\n".join(blocks) + "\n", ""
        if argv[0] == "systemctl":
            verb, name = argv[1], argv[-1]
            if verb in ("start", "restart"):
                if name in self.start_fails:
                    return 0, "", ""  # starts, then stops at once (e.g. BindsTo a missing device)
                self.units[name][0] = "active"
            elif verb == "stop":
                self.units[name][0] = "inactive"
            elif verb in ("enable", "disable"):
                self.units[name][1] = "enabled" if verb == "enable" else "disabled"
            return 0, "", ""
        if argv[0] == "modprobe":
            return 0, "", ""
        return 1, "", "unexpected command %r" % argv


def make_guest(
    root: Path,
    family: str = "debian",
    offered: tuple[str, ...] = ("heartbeat", "shutdown", "time_synchronization", "key_value_pair_exchange", "vss"),
    modules: tuple[str, ...] = ("hv_vmbus", "hv_utils"),
    fcopy_driver: str | None = "hv_utils",
    vmbus: bool = True,
) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(OS_RELEASE[family])
    for name in modules:
        (root / "sys/module" / name).mkdir(parents=True)
    if vmbus:
        devices = root / "sys/bus/vmbus/devices"
        devices.mkdir(parents=True)
        (root / "sys/bus/vmbus/drivers/hv_utils").mkdir(parents=True)
        (root / "sys/bus/vmbus/drivers/uio_hv_generic").mkdir(parents=True)
        (root / "sys/bus/vmbus/drivers/uio_hv_generic/new_id").write_text("")
        for index, key in enumerate(offered):
            device = devices / ("0000000%d-0000-0000-0000-000000000000" % index)
            device.mkdir()
            (device / "class_id").write_text("{%s}\n" % by_key(key).vmbus_class_guid)
            driver = fcopy_driver if key == "guest_service_interface" else "hv_utils"
            if driver:
                os.symlink("../../../bus/vmbus/drivers/%s" % driver, device / "driver")
    return root


DEBIAN_UNITS = {
    "hv-kvp-daemon.service": ("inactive", "enabled"),
    "hv-vss-daemon.service": ("active", "enabled"),
    "hv-fcopy-daemon.service": ("inactive", "enabled"),
}
FEDORA_UNITS = {
    "hypervkvpd.service": ("inactive", "static"),
    "hypervvssd.service": ("active", "static"),
    "hypervfcopyd.service": ("inactive", "disabled"),
}


def test_debian_guest_probe(tmp_path: Path) -> None:
    root = make_guest(tmp_path)
    found = lgp.probe(str(root), FakeSystemd(DEBIAN_UNITS), "6.1.0-27-amd64")
    info = found.as_dict()
    assert info["hyperv_guest"] is True and info["os_family"] == "debian"
    by = {ic["key"]: ic for ic in info["integration_services"]}
    assert [ic["key"] for ic in info["integration_services"]] == [ic.key for ic in CATALOG]
    assert by["heartbeat"]["offered"] and by["heartbeat"]["driver"] == "hv_utils" and by["heartbeat"]["daemon"] is None
    assert by["guest_service_interface"]["offered"] is False
    assert by["key_value_pair_exchange"]["daemon"] == {
        "installed": True,
        "unit": "hv-kvp-daemon.service",
        "active": False,
        "active_state": "inactive",
        "unit_file_state": "enabled",
        "activation": "enabled",
    }
    assert info["modules"]["hv_utils"] is True and info["modules"]["hv_sock"] is False


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("ubuntu", "ubuntu"),
        ("fedora", "redhat"),
        ("rhel", "redhat"),
        ("sles", "suse"),
        ("arch", "archlinux"),
        ("debian", "debian"),
    ],
)
def test_os_family(tmp_path: Path, family: str, expected: str) -> None:
    assert lgp.os_family(str(make_guest(tmp_path, family))) == expected


def test_fedora_static_units_are_udev_activated_and_not_enabled(tmp_path: Path) -> None:
    root = make_guest(tmp_path, "fedora")
    found = lgp.probe(str(root), FakeSystemd(FEDORA_UNITS), "6.8.0")
    kvp = found.services["key_value_pair_exchange"]
    assert kvp.daemon.name == "hypervkvpd.service" and kvp.as_dict()["daemon"]["activation"] == "udev"
    plan = lgplan.plan_ic(found, "key_value_pair_exchange", {"state": "started", "enabled": True}, False)
    assert [s.command for s in plan.steps] == [["systemctl", "start", "--", "hypervkvpd.service"]]
    assert "static" in plan.note and "udev" in plan.note


def test_fcopy_on_610_binds_uio_before_starting(tmp_path: Path) -> None:
    units = dict(DEBIAN_UNITS, **{"hv_fcopy_uio_daemon.service": ("inactive", "disabled")})
    del units["hv-fcopy-daemon.service"]
    root = make_guest(tmp_path, "sles", offered=("guest_service_interface",), fcopy_driver=None)
    found = lgp.probe(str(root), FakeSystemd(units), "6.12.1-default")
    gsi = found.services["guest_service_interface"]
    assert gsi.needs_uio and gsi.driver is None and gsi.daemon.name == "hv_fcopy_uio_daemon.service"
    plan = lgplan.plan_ic(found, "guest_service_interface", {"state": "started"}, False)
    assert [s.description for s in plan.steps] == [
        "load uio_hv_generic",
        "bind uio_hv_generic to the fcopy device class",
        "start hv_fcopy_uio_daemon.service",
    ]
    assert plan.steps[1].write == (
        "/sys/bus/vmbus/drivers/uio_hv_generic/new_id",
        "34d14be3-dee4-41c8-9ae7-6b174977c192",
    )


def test_fedora_on_610_runs_its_own_fcopy_unit_as_the_uio_daemon(tmp_path: Path) -> None:
    # Fedora's hypervfcopyd.service is the UIO daemon on those kernels (docs/dev/hyperv-facts.md section 3).
    root = make_guest(tmp_path, "fedora", offered=("guest_service_interface",), fcopy_driver=None)
    found = lgp.probe(str(root), FakeSystemd(FEDORA_UNITS), "6.12.4-200.fc41.x86_64")
    gsi = found.services["guest_service_interface"]
    assert gsi.needs_uio and gsi.daemon.name == "hypervfcopyd.service"
    plan = lgplan.plan_ic(found, "guest_service_interface", {"state": "started"}, False)
    assert [s.description for s in plan.steps][-1] == "start hypervfcopyd.service"


def test_fcopy_on_610_already_bound_needs_only_the_daemon(tmp_path: Path) -> None:
    root = make_guest(
        tmp_path,
        "sles",
        offered=("guest_service_interface",),
        fcopy_driver="uio_hv_generic",
        modules=("hv_vmbus", "hv_utils", "uio_hv_generic"),
    )
    units = {"hv_fcopy_uio_daemon.service": ("inactive", "disabled")}
    found = lgp.probe(str(root), FakeSystemd(units), "6.10.0")
    plan = lgplan.plan_ic(found, "guest_service_interface", {"state": "started"}, False)
    assert [s.description for s in plan.steps] == ["start hv_fcopy_uio_daemon.service"]


def test_kernel_ics_cannot_be_stopped_and_point_to_the_host(tmp_path: Path) -> None:
    found = lgp.probe(str(make_guest(tmp_path)), FakeSystemd(DEBIAN_UNITS), "6.1.0")
    with pytest.raises(lgp.GuestStateError, match=r"hv_utils.*vm_integration_service"):
        lgplan.plan_ic(found, "heartbeat", {"state": "stopped"}, False)


def test_kernel_ic_the_host_does_not_offer_is_already_stopped(tmp_path: Path) -> None:
    found = lgp.probe(str(make_guest(tmp_path, offered=("heartbeat",))), FakeSystemd(DEBIAN_UNITS), "6.1.0")
    plan = lgplan.plan_ic(found, "shutdown", {"state": "stopped"}, False)
    assert plan.steps == [] and not plan.not_offered


def test_not_offered_fails_or_is_skipped(tmp_path: Path) -> None:
    found = lgp.probe(str(make_guest(tmp_path)), FakeSystemd(DEBIAN_UNITS), "6.1.0")
    with pytest.raises(lgp.GuestStateError, match=r"guest_service_interface is not offered.*vm_integration_service"):
        lgplan.plan_ic(found, "guest_service_interface", {"state": "started"}, False)
    assert lgplan.plan_ic(found, "guest_service_interface", {"state": "started"}, True).not_offered is True


def test_missing_daemon_names_the_family_package(tmp_path: Path) -> None:
    found = lgp.probe(str(make_guest(tmp_path, "ubuntu")), FakeSystemd({}), "6.8.0")
    with pytest.raises(lgp.GuestStateError, match="linux-cloud-tools-common and linux-cloud-tools-virtual"):
        lgplan.plan_ic(found, "vss", {"state": "started"}, False)


def test_check_mode_plans_and_runs_nothing(tmp_path: Path) -> None:
    systemd = FakeSystemd(DEBIAN_UNITS)
    result = apply_guest_state(
        {"key_value_pair_exchange": {"state": "started"}, "vss": {"state": "stopped"}},
        False,
        True,
        str(make_guest(tmp_path)),
        systemd,
        "6.1.0",
    )
    assert result["changed"] is True and "failed" not in result
    assert result["integration_services"]["key_value_pair_exchange"]["steps"] == ["start hv-kvp-daemon.service"]
    assert result["integration_services"]["vss"]["after"]["active"] is False
    assert all(cmd[:2] == ["systemctl", "show"] for cmd in systemd.commands)


def test_apply_then_rerun_is_unchanged(tmp_path: Path) -> None:
    root = str(make_guest(tmp_path))
    systemd = FakeSystemd(DEBIAN_UNITS)
    wanted = {"key_value_pair_exchange": {"state": "started", "enabled": True}, "heartbeat": {"state": "started"}}
    first = apply_guest_state(wanted, False, False, root, systemd, "6.1.0")
    assert first["changed"] is True and "failed" not in first
    assert first["integration_services"]["key_value_pair_exchange"]["after"]["active"] is True
    second = apply_guest_state(wanted, False, False, root, systemd, "6.1.0")
    assert second["changed"] is False


def test_a_daemon_that_does_not_stay_up_is_reported(tmp_path: Path) -> None:
    systemd = FakeSystemd(DEBIAN_UNITS, start_fails={"hv-kvp-daemon.service"})
    result = apply_guest_state(
        {"key_value_pair_exchange": {"state": "started"}}, False, False, str(make_guest(tmp_path)), systemd, "6.1.0"
    )
    assert result["failed"] is True
    assert "hv-kvp-daemon.service is not active after starting it" in result["msg"]


def test_problems_are_all_reported_before_any_change(tmp_path: Path) -> None:
    systemd = FakeSystemd(DEBIAN_UNITS)
    result = apply_guest_state(
        {
            "key_value_pair_exchange": {"state": "started"},
            "shutdown": {"state": "stopped"},
            "guest_service_interface": {"state": "started"},
        },
        False,
        False,
        str(make_guest(tmp_path)),
        systemd,
        "6.1.0",
    )
    assert result["failed"] is True and result["changed"] is False
    assert "shutdown" in result["msg"] and "guest_service_interface" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert all(cmd[:2] == ["systemctl", "show"] for cmd in systemd.commands)


def test_not_a_hyperv_guest(tmp_path: Path) -> None:
    root = make_guest(tmp_path, vmbus=False, modules=())
    assert lgp.probe(str(root), FakeSystemd({}), "6.1.0").as_dict()["hyperv_guest"] is False
    result = apply_guest_state({"vss": {"state": "started"}}, False, False, str(root), FakeSystemd({}), "6.1.0")
    assert result["failed"] is True and result["msg"] == NOT_A_GUEST and result["changed"] is False


def test_fcopy_still_bound_to_hv_utils_needs_no_uio_whatever_uname_says(tmp_path: Path) -> None:
    root = make_guest(tmp_path, offered=("guest_service_interface",), fcopy_driver="hv_utils")
    found = lgp.probe(str(root), FakeSystemd(DEBIAN_UNITS), "6.18.44")
    assert found.services["guest_service_interface"].needs_uio is False
    plan = lgplan.plan_ic(found, "guest_service_interface", {"state": "started"}, False)
    assert [s.description for s in plan.steps] == ["start hv-fcopy-daemon.service"]


def test_result_key_is_not_offered_never_skipped(tmp_path: Path) -> None:
    result = apply_guest_state(
        {"guest_service_interface": {"state": "started"}},
        True,
        False,
        str(make_guest(tmp_path)),
        FakeSystemd(DEBIAN_UNITS),
        "6.1.0",
    )
    assert "skipped" not in result  # Ansible would count the whole task as skipped
    assert result["not_offered"] == ["guest_service_interface"] and result["changed"] is False


def test_masked_unit_says_unmask(tmp_path: Path) -> None:
    found = lgp.probe(str(make_guest(tmp_path)), FakeSystemd(DEBIAN_UNITS, masked={"hv-kvp-daemon.service"}), "6.1.0")
    assert found.services["key_value_pair_exchange"].daemon.masked
    with pytest.raises(
        lgp.GuestStateError, match=r"masked; unmask it first \(systemctl unmask hv-kvp-daemon.service\)"
    ):
        lgplan.plan_ic(found, "key_value_pair_exchange", {"state": "started"}, False)


def test_without_systemd_the_module_says_so(tmp_path: Path) -> None:
    result = apply_guest_state(
        {"vss": {"state": "started"}}, False, False, str(make_guest(tmp_path)), FakeSystemd({}, rc=1), "6.1.0"
    )
    assert result["failed"] is True and "needs systemd" in result["msg"] and "Nothing was changed" in result["msg"]


def test_suse_with_both_fcopy_units_picks_the_one_the_kernel_needs(tmp_path: Path) -> None:
    units = {
        "hv_fcopy_daemon.service": ("inactive", "disabled"),
        "hv_fcopy_uio_daemon.service": ("inactive", "disabled"),
    }
    old = lgp.probe(
        str(make_guest(tmp_path / "old", "sles", offered=("guest_service_interface",))), FakeSystemd(units), "6.4.0"
    )
    assert old.services["guest_service_interface"].daemon.name == "hv_fcopy_daemon.service"
    new = lgp.probe(
        str(make_guest(tmp_path / "new", "sles", offered=("guest_service_interface",), fcopy_driver=None)),
        FakeSystemd(units),
        "6.12.0",
    )
    assert new.services["guest_service_interface"].daemon.name == "hv_fcopy_uio_daemon.service"


def test_daemon_ic_loads_hv_utils_when_nothing_drives_the_device(tmp_path: Path) -> None:
    root = make_guest(tmp_path, modules=("hv_vmbus",))
    for device in (root / "sys/bus/vmbus/devices").iterdir():
        (device / "driver").unlink()
    found = lgp.probe(str(root), FakeSystemd(DEBIAN_UNITS), "6.1.0")
    plan = lgplan.plan_ic(found, "key_value_pair_exchange", {"state": "started"}, False)
    assert [s.description for s in plan.steps] == ["load the kernel module hv_utils", "start hv-kvp-daemon.service"]


def test_hv_sock_at_boot_from_modules_load_d(tmp_path: Path) -> None:
    root = make_guest(tmp_path, modules=("hv_vmbus", "hv_utils", "hv_sock"))
    found = lgp.probe(str(root), FakeSystemd(DEBIAN_UNITS), "6.1.0")
    assert found.modules["hv_sock"] is True and found.modules_at_boot == {"hv_sock": False}
    (root / "etc/modules-load.d").mkdir()
    (root / "etc/modules-load.d/hyperv.conf").write_text("# Hyper-V sockets\nhv-sock\n")
    assert lgp.probe(str(root), FakeSystemd(DEBIAN_UNITS), "6.1.0").as_dict()["modules_at_boot"] == {"hv_sock": True}


class FakeKernel(FakeSystemd):
    """FakeSystemd whose modprobe loads and unloads modules under root/sys/module, as a kernel would."""

    def __init__(self, root: Path, fail_modprobe: bool = False) -> None:
        super().__init__(DEBIAN_UNITS)
        self.root = root
        self.fail_modprobe = fail_modprobe

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        if argv[0] != "modprobe":
            return super().__call__(argv)
        self.commands.append(argv)
        if self.fail_modprobe:
            return 1, "", "modprobe: FATAL: Module hv_sock not found in directory /lib/modules/6.1.0"
        module = self.root / "sys/module" / argv[-1]
        if "-r" in argv:
            if module.is_dir():
                module.rmdir()
        else:
            module.mkdir(parents=True, exist_ok=True)
        return 0, "", ""


LOAD_FILE = "etc/modules-load.d/hv_sock.conf"


def test_hv_sock_true_loads_now_and_at_boot_then_converges(tmp_path: Path) -> None:
    root = make_guest(tmp_path)
    kernel = FakeKernel(root)
    first = apply_guest_state({}, False, False, str(root), kernel, "6.1.0", hv_sock=True)
    assert first["changed"] is True and not first.get("failed"), first
    assert first["hv_sock"]["before"] == {"loaded": False, "at_boot": False}
    assert first["hv_sock"]["after"] == {"loaded": True, "at_boot": True}
    assert ["modprobe", "hv_sock"] in kernel.commands
    assert "hv_sock" in (root / LOAD_FILE).read_text().splitlines()
    kernel.commands.clear()
    second = apply_guest_state({}, False, False, str(root), kernel, "6.1.0", hv_sock=True)
    assert second["changed"] is False and second["hv_sock"]["steps"] == []
    assert not [c for c in kernel.commands if c[0] == "modprobe"]


def test_hv_sock_check_mode_reports_steps_and_changes_nothing(tmp_path: Path) -> None:
    root = make_guest(tmp_path)
    kernel = FakeKernel(root)
    result = apply_guest_state({}, False, True, str(root), kernel, "6.1.0", hv_sock=True)
    assert result["changed"] is True
    assert result["hv_sock"]["steps"] == [
        "load the kernel module hv_sock",
        "load hv_sock at boot (/etc/modules-load.d/hv_sock.conf)",
    ]
    assert not (root / LOAD_FILE).exists() and not (root / "sys/module/hv_sock").exists()
    assert not [c for c in kernel.commands if c[0] == "modprobe"]


def test_hv_sock_already_listed_elsewhere_writes_no_file_of_ours(tmp_path: Path) -> None:
    root = make_guest(tmp_path, modules=("hv_vmbus", "hv_utils", "hv_sock"))
    (root / "etc/modules").write_text("# /etc/modules\nhv_sock\n")
    result = apply_guest_state({}, False, False, str(root), FakeKernel(root), "6.1.0", hv_sock=True)
    assert result["changed"] is False and not (root / LOAD_FILE).exists()
    refused = apply_guest_state({}, False, False, str(root), FakeKernel(root), "6.1.0", hv_sock=False)
    assert refused["failed"] is True and "/etc/modules" in refused["msg"] and "Nothing was changed" in refused["msg"]
    assert (root / "sys/module/hv_sock").is_dir()


def test_hv_sock_false_unloads_and_keeps_other_modules_in_our_file(tmp_path: Path) -> None:
    root = make_guest(tmp_path, modules=("hv_vmbus", "hv_utils", "hv_sock"))
    (root / "etc/modules-load.d").mkdir()
    (root / LOAD_FILE).write_text("vsock\nhv_sock\n")
    result = apply_guest_state({}, False, False, str(root), FakeKernel(root), "6.1.0", hv_sock=False)
    assert result["changed"] is True and result["hv_sock"]["after"] == {"loaded": False, "at_boot": False}
    assert (root / LOAD_FILE).read_text() == "vsock\n"
    assert not (root / "sys/module/hv_sock").exists()


def test_hv_sock_false_removes_the_file_it_wrote(tmp_path: Path) -> None:
    root = make_guest(tmp_path)
    apply_guest_state({}, False, False, str(root), FakeKernel(root), "6.1.0", hv_sock=True)
    result = apply_guest_state({}, False, False, str(root), FakeKernel(root), "6.1.0", hv_sock=False)
    assert result["changed"] is True and not (root / LOAD_FILE).exists()


def test_hv_sock_built_in_counts_as_loaded_and_cannot_be_removed(tmp_path: Path) -> None:
    root = make_guest(tmp_path)
    (root / "lib/modules/6.1.0").mkdir(parents=True)
    (root / "lib/modules/6.1.0/modules.builtin").write_text("kernel/net/vmw_vsock/hv_sock.ko\n")
    kernel = FakeKernel(root)
    result = apply_guest_state({}, False, False, str(root), kernel, "6.1.0", hv_sock=True)
    assert result["changed"] is False and result["hv_sock"]["after"] == {"loaded": True, "at_boot": True}
    assert not kernel.commands or all(c[0] != "modprobe" for c in kernel.commands)
    refused = apply_guest_state({}, False, False, str(root), kernel, "6.1.0", hv_sock=False)
    assert refused["failed"] is True and "built into this kernel" in refused["msg"]


def test_hv_sock_modprobe_failure_says_what_was_done(tmp_path: Path) -> None:
    root = make_guest(tmp_path)
    result = apply_guest_state(
        {"vss": {"state": "started"}},
        False,
        False,
        str(root),
        FakeKernel(root, fail_modprobe=True),
        "6.1.0",
        hv_sock=True,
    )
    assert result["failed"] is True
    assert "hv_sock: load the kernel module hv_sock failed" in result["msg"] and "not found" in result["msg"]
    assert not (root / LOAD_FILE).exists()  # stopped at the first failed step


def test_hv_sock_keeps_a_users_non_ascii_comment_in_our_file(tmp_path: Path) -> None:
    root = make_guest(tmp_path)
    (root / "etc/modules-load.d").mkdir()
    (root / LOAD_FILE).write_text("# Hyper-V-Sockets für den Sicherungsagenten\n", encoding="utf-8")
    result = apply_guest_state({}, False, False, str(root), FakeKernel(root), "6.1.0", hv_sock=True)
    assert result["changed"] is True and not result.get("failed"), result
    assert (root / LOAD_FILE).read_text(encoding="utf-8").splitlines() == [
        "# Hyper-V-Sockets für den Sicherungsagenten",
        "hv_sock",
    ]
