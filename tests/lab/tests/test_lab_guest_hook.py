"""The general guest hook (hyperv_host.GuestSide) as a Linux guest double plugs into it, driven
with a fake LinuxGuest; the inventory's guests groups; loading hvlab.linux_guest."""

from __future__ import annotations

import threading
import types
from pathlib import Path
from typing import Any

import labclient
import pytest
from hvlab import server
from support.labspec import lab_spec, vm_spec

GSI = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
VSS = "5CED1297-4598-4915-A5FC-AD21BB4D02A4"
DEFAULT_OFFER = frozenset({"heartbeat", "shutdown", "time_synchronization", "key_value_pair_exchange", "vss"})


class FakeLinuxGuest:
    """Records every GuestSide call; checks that offers_changed() runs without the host lock."""

    def __init__(self, vm_name: str, vm_id: str, lab_dir: Path, hub: Hub) -> None:
        self.vm_name, self.vm_id, self.lab_dir, self.hub = vm_name, vm_id, lab_dir, hub
        self.events: list[Any] = []
        self.offers: list[frozenset[str]] = []
        self.lock_free: list[bool] = []

    def ic_status(self, key: str) -> tuple[str | None, str | None]:
        return ("Degraded", None) if key == "vss" else ("Ok", "Ok" if key == "heartbeat" else None)

    def heartbeat(self) -> str:
        return "OkApplicationsUnknown"

    def offers_changed(self, offered: frozenset[str]) -> None:
        self.events.append("offers_changed")
        self.offers.append(offered)
        if self.hub.lab is not None:
            # Another thread must be able to take the host lock meanwhile (lab.state() needs it).
            reader = threading.Thread(target=self.hub.lab.state)
            reader.start()
            reader.join(5)
            self.lock_free.append(not reader.is_alive())

    def start(self) -> None:
        self.events.append("start")
        if self.vm_name in self.hub.fail_start:
            raise RuntimeError(f"cannot boot {self.vm_name}")

    def stop(self) -> None:
        self.events.append("stop")

    def inventory_vars(self) -> dict[str, Any] | None:
        if self.vm_name in self.hub.unreachable:
            return None
        return {"ansible_host": "127.0.0.1", "ansible_port": 2222, "ansible_connection": "ssh", "ansible_user": "root"}

    def snapshot(self) -> dict[str, Any]:
        return {"daemons": {"hv_kvp_daemon": "active"}, "offered": sorted(self.offers[-1]) if self.offers else []}


class Hub:
    def __init__(self) -> None:
        self.guests: dict[str, FakeLinuxGuest] = {}
        self.lab: Any = None
        self.fail_start: set[str] = set()
        self.unreachable: set[str] = set()

    def factory(self, vm_name: str, vm_id: str, lab_dir: Path) -> FakeLinuxGuest:
        guest = FakeLinuxGuest(vm_name, vm_id, lab_dir, self)
        self.guests[vm_name] = guest
        return guest


LINUX_LAB = lab_spec(
    vm_spec("lin01", "linux"), vm_spec("lin02", "linux", "Off"), vm_spec("lin 03", "linux"), vm_spec("web01", "windows")
)


@pytest.fixture
def hub() -> Hub:
    return Hub()


def test_only_running_linux_vms_get_a_linux_guest(make_lab: Any, hub: Hub, tmp_path: Path) -> None:
    lab = make_lab(LINUX_LAB, linux_guest=hub.factory, lab_dir=tmp_path)
    assert set(hub.guests) == {"lin01", "lin 03"}
    guest = hub.guests["lin01"]
    assert (guest.vm_id, guest.lab_dir) == (lab.state()["vms"]["lin01"]["id"], tmp_path)
    # start() once, then the initial offer once.
    assert guest.events == ["start", "offers_changed"] and guest.offers == [DEFAULT_OFFER]
    assert lab.state()["vms"]["lin02"]["guest"] == {"kind": "linux"}  # static


def test_offers_follow_host_writes_outside_the_lock(make_lab: Any, hub: Hub) -> None:
    lab = make_lab(LINUX_LAB, linux_guest=hub.factory)
    hub.lab = lab.lab
    guest, other = hub.guests["lin01"], hub.guests["lin 03"]
    lab.set(["lin01"], [{"guid": GSI, "enabled": True}], check_mode=True)  # no write, no call
    assert guest.offers == [DEFAULT_OFFER]
    lab.set(["lin01"], [{"guid": GSI, "enabled": True}, {"guid": VSS, "enabled": False}])
    assert guest.offers[-1] == (DEFAULT_OFFER | {"guest_service_interface"}) - {"vss"}
    assert guest.lock_free == [True]
    lab.set(["lin01"], [{"guid": GSI, "enabled": True}])  # already so: nothing changed, no call
    assert len(guest.offers) == 2
    assert other.offers == [DEFAULT_OFFER]  # only the VM whose IC changed is told
    assert lab.state()["vms"]["lin01"]["guest"] == {
        "kind": "linux",
        "daemons": {"hv_kvp_daemon": "active"},
        "offered": sorted(guest.offers[-1]),
    }


def test_host_status_comes_from_the_guest(make_lab: Any, hub: Hub) -> None:
    lab = make_lab(LINUX_LAB, linux_guest=hub.factory)
    vm = lab.info(["lin01"])["vms"][0]
    assert vm["heartbeat"] == "OkApplicationsUnknown"
    statuses = {ic["name"]: (ic["primary_status"], ic["secondary_status"]) for ic in vm["integration_services"]}
    assert statuses["VSS"] == ("Degraded", None) and statuses["Heartbeat"] == ("Ok", "Ok")
    assert statuses["Guest Service Interface"] == ("Ok", None)  # disabled: the host's rule, not the guest's


def test_concurrent_writes_end_with_the_newest_offer(make_lab: Any, hub: Hub) -> None:
    lab = make_lab(LINUX_LAB, linux_guest=hub.factory)
    hub.lab = lab.lab

    def toggle(enabled: bool) -> None:
        protocol = lab.protocol()
        for _round in range(3):
            change = [{"guid": GSI, "enabled": enabled}, {"guid": VSS, "enabled": not enabled}]
            req = labclient.request("vm_integration_service_set", {"vm_names": ["lin01"], "changes": change})
            assert labclient.call(protocol, req)["ok"]

    assert labclient.in_threads(toggle, [i % 2 == 0 for i in range(8)]) == []
    guest = hub.guests["lin01"]
    services = lab.state()["vms"]["lin01"]["integration_services"]
    assert guest.offers[-1] == frozenset(key for key, ic in services.items() if ic["enabled"])
    assert all(guest.lock_free)


def test_stop_stops_every_guest_once(make_lab: Any, hub: Hub) -> None:
    lab = make_lab(LINUX_LAB, linux_guest=hub.factory)
    lab.lab.stop()
    lab.lab.stop()
    assert all(g.events.count("stop") == 1 and g.events[-1] == "stop" for g in hub.guests.values())


def test_a_guest_that_fails_to_start_stops_the_others(hub: Hub) -> None:
    from hvlab import labfile

    hub.fail_start.add("lin 03")
    lab = server.Lab(labfile.parse(LINUX_LAB), "lab-admin", "pw", None, hub.factory)
    with pytest.raises(RuntimeError, match="cannot boot lin 03"):
        lab.start()
    assert hub.guests["lin01"].events == ["start", "stop"]
    assert hub.guests["lin 03"].events == ["start", "stop"]  # it may have started something


def test_inventory_groups(make_lab: Any, hub: Hub) -> None:
    hub.unreachable.add("lin 03")
    lab = make_lab(
        {
            "host": {"name": "hv01"},
            "vms": [
                *LINUX_LAB["vms"],
                {"name": "Prüf'VM", "guest": "windows"},
                {"name": "hv01", "guest": "windows"},  # the host's inventory name is taken
                {"name": "twin", "guest": "windows"},
                {"name": "twin", "guest": "windows", "state": "Off"},
                {"name": "a.b-c_9", "guest": "windows"},
                {"name": "-x", "guest": "windows"},
                {"name": "none01", "guest": "none"},
            ],
        },
        linux_guest=hub.factory,
    )
    inventory = lab.lab.inventory(lab.username, lab.password)
    children = inventory["all"]["children"]
    assert list(children) == ["hyperv_hosts", "guests"]
    assert list(children["guests"]) == ["children"]
    windows = children["guests"]["children"]["windows_guests"]["hosts"]
    linux = children["guests"]["children"]["linux_guests"]["hosts"]
    ids = {vm["name"] + ("#2" if key != vm["name"] else ""): vm["id"] for key, vm in lab.state()["vms"].items()}
    pruf = "guest-" + ids["Prüf'VM"][:8]
    assert list(windows) == [
        "web01",
        pruf,
        f"guest-{ids['hv01'][:8]}",
        "twin",
        f"guest-{ids['twin#2'][:8]}",
        "a.b-c_9",
        f"guest-{ids['-x'][:8]}",
    ]
    assert list(linux) == ["lin01"]  # lin 03 has no inventory vars; lin02 is off (static)
    assert linux["lin01"] == {
        "ansible_host": "127.0.0.1",
        "ansible_port": 2222,
        "ansible_connection": "ssh",
        "ansible_user": "root",
        "hyperv_host": "hv01",
        "hyperv_vm_name": "lin01",
    }
    web = windows["web01"]
    host = children["hyperv_hosts"]["hosts"]["hv01"]
    assert web == {
        **host,
        "ansible_port": lab.state()["endpoints"]["web01"]["port"],
        "hyperv_host": "hv01",
        "hyperv_vm_name": "web01",
    }
    assert web["ansible_port"] != host["ansible_port"]
    assert windows[pruf]["hyperv_vm_name"] == "Prüf'VM"
    assert lab.state()["vms"]["Prüf'VM"]["inventory_name"] == pruf


def test_loading_the_linux_guest_module(monkeypatch: pytest.MonkeyPatch) -> None:
    def importer(result: Any) -> Any:
        def import_module(name: str) -> Any:
            assert name == "hvlab.linux_guest"
            if isinstance(result, BaseException):
                raise result
            return result

        return import_module

    monkeypatch.setattr(server.importlib, "import_module", importer(types.SimpleNamespace(LinuxGuest=FakeLinuxGuest)))
    assert server.load_linux_guest() is FakeLinuxGuest


def test_a_broken_linux_guest_module_fails_the_lab_loudly(make_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A lab whose Linux VMs silently stayed static would let Linux-guest tests pass against nothing.
    def broken(name: str) -> Any:
        raise SyntaxError("half written")

    monkeypatch.setattr(server.importlib, "import_module", broken)
    with pytest.raises(SyntaxError, match="half written"):
        make_lab(LINUX_LAB, linux_guest=server.AUTO)
