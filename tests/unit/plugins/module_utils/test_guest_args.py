from __future__ import annotations

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.hyperv.integration.plugins.module_utils.argument_error import ArgumentError
from ansible_collections.hyperv.integration.plugins.module_utils.guest_args import (
    GUEST_ARGUMENT_SPEC,
    GUEST_REQUIRED_ONE_OF,
    desired_guest_services,
)


def test_words_and_mappings_by_any_name() -> None:
    assert desired_guest_services(
        {"Takt": "started", "vss": {"state": "stopped", "enabled": False}}, windows=False
    ) == {
        "heartbeat": {"state": "started"},
        "vss": {"state": "stopped", "enabled": False},
    }
    assert desired_guest_services({"vmicvmsession": {"state": "started", "start_mode": "Manual"}}, windows=True) == {
        "powershell_direct": {"state": "started", "start_mode": "manual"}
    }


@pytest.mark.parametrize(
    ("services", "windows", "message"),
    [
        ({"vss": "running"}, False, "state must be one of started, stopped, restarted"),
        ({"vss": {"start_mode": "manual"}}, False, "use enabled, not start_mode"),
        ({"vss": {"enabled": True}}, True, "use start_mode, not enabled"),
        ({"powershell_direct": "started"}, False, "unknown integration service"),
        ({"vss": {"state": "started", "color": "red"}}, False, "unknown field(s) color"),
        ({"vss": {}}, False, "asks for nothing"),
        ({"vss": "started", "VSS": "stopped"}, False, "given twice"),
        ({"vss": {"start_mode": "sometimes"}}, True, "start_mode must be one of"),
        ({}, False, "services must be a mapping"),
    ],
)
def test_bad_wishes_are_refused_with_the_reason(services: dict, windows: bool, message: str) -> None:
    with pytest.raises(ArgumentError) as info:
        desired_guest_services(services, windows=windows)
    assert message in str(info.value)


def test_host_time_samples_alone_is_a_complete_task() -> None:
    validator = ArgumentSpecValidator(GUEST_ARGUMENT_SPEC, required_one_of=GUEST_REQUIRED_ONE_OF)
    assert not validator.validate({"host_time_samples": False}).error_messages
    assert validator.validate({"host_time_samples": "no"}).validated_parameters["host_time_samples"] is False
    refused = validator.validate({"skip_not_offered": True}).error_messages
    assert refused and "services, hv_sock, host_time_samples" in refused[0]
    assert desired_guest_services(None, windows=True) == {}
