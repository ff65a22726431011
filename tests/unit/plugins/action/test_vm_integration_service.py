from __future__ import annotations

from ansible_collections.hyperv.integration.plugins.action.vm_integration_service import (
    summarise,
    write_failure_message,
)

GSI_GUID = "6C09BB55-D683-4DA0-8931-C9BF705F6480"
VSS_GUID = "5CED1297-4598-4915-A5FC-AD21BB4D02A4"


def _item(guid: str, before: bool, after: bool, error: str | None = None) -> dict:
    return {
        "guid": guid,
        "name": "localized",
        "before": before,
        "after": after,
        "changed": before != after,
        "error": None if error is None else {"type": "X", "message": error},
    }


def _answer() -> dict:
    return {
        "vms": [
            {"name": "web01", "id": "i1", "state": "Running", "integration_services": [_item(GSI_GUID, False, True)]},
            {
                "name": "Prüf'VM",
                "id": "i2",
                "state": "Off",
                "integration_services": [
                    _item(GSI_GUID, False, False, "Zugriff verweigert"),
                    _item(VSS_GUID, True, True),
                ],
            },
        ]
    }


def test_summarise_keys_services_and_builds_the_diff() -> None:
    vms, diff = summarise(_answer())
    assert [vm["name"] for vm in vms] == ["web01", "Prüf'VM"]
    assert vms[0]["changed"] is True and vms[1]["changed"] is False
    assert vms[0]["integration_services"]["guest_service_interface"] == {
        "name": "localized",
        "enabled_before": False,
        "enabled": True,
        "changed": True,
    }
    assert vms[1]["integration_services"]["guest_service_interface"]["error"] == "Zugriff verweigert"
    assert diff["before"] == {
        "web01": {"guest_service_interface": "disabled"},
        "Prüf'VM": {"guest_service_interface": "disabled", "vss": "enabled"},
    }
    assert diff["after"]["web01"] == {"guest_service_interface": "enabled"}


def test_failure_message_says_what_failed_and_what_was_done() -> None:
    vms, _diff = summarise(_answer())
    message = write_failure_message("hv01", vms)
    assert message is not None
    assert "1 change(s) failed" in message
    assert 'VM "Prüf\'VM" guest_service_interface: Zugriff verweigert' in message
    assert "Done: VM 'web01' guest_service_interface enabled" in message
    assert "Rerun" in message


def test_no_failure_no_message() -> None:
    answer = {"vms": [{"name": "a", "integration_services": [_item(GSI_GUID, True, True)]}]}
    assert write_failure_message("hv01", summarise(answer)[0]) is None
