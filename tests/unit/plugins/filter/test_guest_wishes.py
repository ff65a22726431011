"""hyperv.integration.guest_wishes: what the guest half should do, from what the host offers."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hyperv.integration.plugins.filter.guest_wishes import FilterModule, guest_wishes

SERVICES = {
    "guest_service_interface": {"enabled": True, "changed": True},  # newly enabled
    "vss": {"enabled": False, "changed": True},  # newly disabled
    "heartbeat": {"enabled": True, "changed": False},
    "shutdown": {"enabled": False, "changed": False},  # disabled before the task
}


def test_enabled_services_are_started_and_disabled_ones_left_alone_by_default() -> None:
    assert guest_wishes(SERVICES) == {"guest_service_interface": "started", "heartbeat": "started"}


def test_stop_disabled_stops_every_disabled_service() -> None:
    assert guest_wishes(SERVICES, False, True) == {
        "guest_service_interface": "started",
        "vss": "stopped",
        "heartbeat": "started",
        "shutdown": "stopped",
    }


def test_check_mode_leaves_out_a_service_the_host_would_newly_disable() -> None:
    # In check mode the host still offers vss, so its guest half still runs: not reported as stoppable.
    assert guest_wishes(SERVICES, True, True) == {
        "guest_service_interface": "started",
        "heartbeat": "started",
        "shutdown": "stopped",
    }


def test_booleans_come_as_ansible_writes_them() -> None:
    assert guest_wishes(SERVICES, "no", "yes") == guest_wishes(SERVICES, False, True)


@pytest.mark.parametrize("bad", [None, [], "vss"])
def test_an_input_that_is_no_mapping_is_refused(bad: object) -> None:
    with pytest.raises(AnsibleFilterError, match="must map service keys"):
        guest_wishes(bad)


def test_a_service_without_state_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="'vss' has no state"):
        guest_wishes({"vss": True})


def test_the_filter_is_registered_under_its_name() -> None:
    assert FilterModule().filters() == {"guest_wishes": guest_wishes}
