"""guest_integration_service's action plugin: host_time_samples is a Windows guest setting."""

from __future__ import annotations

import pytest

from ansible_collections.hyperv.integration.plugins.action import guest_integration_service as action_module
from ansible_collections.hyperv.integration.plugins.plugin_utils._guest_action import GuestAction


class _Shell:
    def __init__(self, family: str) -> None:
        self.SHELL_FAMILY = family


class _Connection:
    def __init__(self, family: str) -> None:
        self._shell = _Shell(family)


class _Task:
    def __init__(self, args: dict) -> None:
        self.args = args
        self.delegate_to = None
        self.check_mode = False
        self.diff = False


def _action(family: str, args: dict) -> action_module.ActionModule:
    action = action_module.ActionModule.__new__(action_module.ActionModule)
    action._connection = _Connection(family)
    action._task = _Task(args)
    return action


def test_linux_guest_refuses_host_time_samples_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kwargs: object) -> dict:
        raise AssertionError("the module must not be sent")

    monkeypatch.setattr(GuestAction, "run", must_not_run)
    result = _action("sh", {"host_time_samples": False}).run(task_vars={"inventory_hostname": "lin01"})
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("Linux guest lin01: host_time_samples is a Windows guest setting")
    assert "W32Time" in result["msg"] and "/dev/ptp_hyperv" in result["msg"]
    assert "Nothing was changed" in result["msg"]


def test_linux_guest_without_the_option_runs_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GuestAction, "run", lambda self, tmp=None, task_vars=None: {"ran": "module"})
    assert _action("sh", {"hv_sock": True}).run(task_vars={"inventory_hostname": "lin01"}) == {"ran": "module"}


def test_windows_guest_passes_host_time_samples_on(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake_set(action, guest, wanted, check_mode, diff, host_time_samples=None):
        seen.update(guest=guest, wanted=wanted, host_time_samples=host_time_samples)
        return {"changed": True}

    monkeypatch.setattr(action_module, "guest_set", fake_set)
    action = _action("powershell", {"host_time_samples": False})
    monkeypatch.setattr(
        action,
        "validate_argument_spec",
        lambda **kw: (None, {"services": None, "hv_sock": None, "host_time_samples": False}),
    )
    result = action.run_windows({}, "dc01")
    assert result == {"changed": True}
    assert seen == {"guest": "dc01", "wanted": {}, "host_time_samples": False}
