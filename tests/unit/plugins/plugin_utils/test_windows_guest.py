"""The Windows half of the guest modules: what is sent for host_time_samples and what the user reads back."""

from __future__ import annotations

import pytest

from ansible_collections.hyperv.integration.plugins.plugin_utils import _powershell
from ansible_collections.hyperv.integration.plugins.plugin_utils import _windows_guest as wg

# What the library answers (Get-ComputerIdentity; every time_provider answer names its key).
COMPUTER = {"manufacturer": "Microsoft Corporation", "model": "Virtual Machine", "hyperv_guest": True}
KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\W32Time\\TimeProviders\\VMICTimeProvider"


class FakeGuest:
    """Stands in for _powershell.call: records each request, answers from a script."""

    def __init__(self, answer: dict | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict, bool]] = []

    def __call__(self, action: object, library: str, operation: str, params: dict, check_mode: bool) -> dict:
        assert library == _powershell.WINDOWS_GUEST_LIBRARY
        self.calls.append((operation, params, check_mode))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _time(before: int | str | None, after: int | str | None, **extra: object) -> dict:
    kind = {int: "DWord", str: "String"}
    entry = {
        "key": KEY,
        "present": True,
        "before": {"enabled": before, "kind": kind.get(type(before))},
        "after": {"enabled": after, "kind": kind.get(type(after))},
        "changed": before != after,
        "w32time": {"status": "Running", "restarted": before != after, "error": None},
        "error": None,
    }
    entry.update(extra)
    return entry


def _set_answer(time_provider: dict | None, services: list | None = None) -> dict:
    return {
        "not_a_guest": False,
        "computer": COMPUTER,
        "missing": [],
        "services": services or [],
        "time_provider": time_provider,
    }


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    def install(answer: dict | Exception) -> FakeGuest:
        guest = FakeGuest(answer)
        monkeypatch.setattr(_powershell, "call", guest)
        return guest

    return install


@pytest.mark.parametrize(("wish", "sent"), [(False, 0), (True, 1)])
def test_the_wish_travels_as_data_in_the_same_call_as_the_services(fake, wish: bool, sent: int) -> None:
    guest = fake(_set_answer(_time(1 - sent, sent)))
    wg.guest_set(object(), "dc01", {"vss": {"state": "started"}}, False, False, host_time_samples=wish)
    assert len(guest.calls) == 1
    operation, params, _check = guest.calls[0]
    assert operation == "guest_service_set"
    assert params["time_provider_enabled"] == sent and params["services"][0]["name"] == "vmicvss"


def test_left_alone_when_not_asked(fake) -> None:
    guest = fake(_set_answer(None, [{"name": "vmicvss", "before": {}, "after": {}, "changed": False, "error": None}]))
    result = wg.guest_set(object(), "dc01", {"vss": {"state": "started"}}, False, True)
    assert guest.calls[0][1]["time_provider_enabled"] is None  # always sent (strict mode), null: left alone
    assert "host_time_samples" not in result and "host_time_samples" not in result["diff"]["before"]


def test_a_change_reports_before_after_restart_and_diff(fake) -> None:
    guest = fake(_set_answer(_time(1, 0)))
    result = wg.guest_set(object(), "dc01", {}, True, True, host_time_samples=False)
    assert guest.calls[0][2] is True  # check mode is the library's business
    assert result["changed"] is True and not result.get("failed")
    assert result["host_time_samples"] == {
        "key": KEY,
        "before": True,
        "after": False,
        "value_before": 1,
        "value_after": 0,
        "changed": True,
        "w32time_restarted": True,
    }
    assert result["diff"] == {"before": {"host_time_samples": True}, "after": {"host_time_samples": False}}


def test_unchanged_value_is_no_change(fake) -> None:
    fake(_set_answer(_time(0, 0)))
    result = wg.guest_set(object(), "dc01", {}, False, False, host_time_samples=False)
    assert result["changed"] is False and result["host_time_samples"]["w32time_restarted"] is False


def test_missing_key_fails_and_names_it(fake) -> None:
    absent = {"key": KEY, "present": False, "before": None, "after": None, "changed": False, "w32time": None}
    absent["error"] = None
    fake(_set_answer(absent))
    result = wg.guest_set(object(), "dc01", {"vss": {"state": "started"}}, False, False, host_time_samples=False)
    assert result["failed"] is True and result["changed"] is False
    assert "dc01" in result["msg"] and KEY in result["msg"] and "Nothing was changed" in result["msg"]


@pytest.mark.parametrize(
    "error",
    [
        {"type": "System.Security.SecurityException", "message": "Requested registry access is not allowed."},
        {"type": "System.Exception", "message": "Zugriff verweigert", "category": "PermissionDenied"},
    ],
)
def test_access_denied_asks_for_an_administrator(fake, error: dict) -> None:
    fake(_powershell.HostOperationError(error))
    with pytest.raises(wg.CallFailed) as info:
        wg.guest_set(object(), "dc01", {}, False, False, host_time_samples=False)
    text = str(info.value)
    assert "dc01" in text and error["message"] in text
    assert "host_time_samples" in text and "administrator" in text and "Nothing was changed" in text


def test_a_failed_write_says_what_else_was_done(fake) -> None:
    vss = {"name": "vmicvss", "before": {"status": "Stopped"}, "after": {"status": "Running"}, "changed": True}
    denied = {"type": "System.UnauthorizedAccessException", "message": "Access to the registry key is denied."}
    fake(_set_answer(_time(1, 1, error=denied), [dict(vss, error=None)]))
    result = wg.guest_set(object(), "dc01", {"vss": {"state": "started"}}, False, False, host_time_samples=False)
    assert result["failed"] is True
    assert "Access to the registry key is denied" in result["msg"] and "administrator" in result["msg"]
    assert "Changed: vss." in result["msg"]
    assert result["host_time_samples"]["error"] == "Access to the registry key is denied."


def test_a_failed_restart_tells_how_to_make_it_take_effect(fake) -> None:
    restart = {"status": "Stopped", "restarted": False, "error": {"type": "X", "message": "Cannot start W32Time"}}
    fake(_set_answer(_time(1, 0, w32time=restart)))
    result = wg.guest_set(object(), "dc01", {}, False, False, host_time_samples=False)
    assert result["failed"] is True and result["changed"] is True
    assert "Cannot start W32Time" in result["msg"] and "Restart-Service W32Time" in result["msg"]
    assert "Changed: host_time_samples" in result["msg"]


def test_an_answer_without_time_provider_is_not_taken_for_success(fake) -> None:
    fake(_set_answer(None))
    with pytest.raises(wg.CallFailed, match="no answer about host_time_samples"):
        wg.guest_set(object(), "dc01", {}, False, False, host_time_samples=True)


@pytest.mark.parametrize(
    ("state", "reported"),
    [
        ({"key": KEY, "present": True, "enabled": 1, "kind": "DWord"}, True),
        ({"key": KEY, "present": True, "enabled": 0, "kind": "DWord"}, False),
        ({"key": KEY, "present": True, "enabled": 2, "kind": "DWord"}, True),
        ({"key": KEY, "present": True, "enabled": "0", "kind": "String"}, None),
        ({"key": KEY, "present": True, "enabled": None, "kind": None}, None),
        ({"key": KEY, "present": False, "enabled": None, "kind": None}, None),
        (None, None),
    ],
)
def test_info_reports_whether_w32time_takes_host_samples(fake, state: dict | None, reported: bool | None) -> None:
    fake({"computer": COMPUTER, "services": [], "time_provider": state})
    result = wg.guest_info(object(), "dc01")
    assert result["time_provider"] == {"vmic_time_provider_enabled": reported}


@pytest.mark.parametrize("verdict", [True, False])
def test_hyperv_guest_is_the_library_verdict(fake, verdict: bool) -> None:
    # The library decides (Get-ComputerIdentity); the controller reports it and keeps the two WMI values.
    fake({"computer": dict(COMPUTER, hyperv_guest=verdict), "services": [], "time_provider": None})
    result = wg.guest_info(object(), "dc01")
    assert result["hyperv_guest"] is verdict
    assert result["computer"] == {"manufacturer": "Microsoft Corporation", "model": "Virtual Machine"}
