from __future__ import annotations

import pytest

from ansible_collections.hyperv.integration.plugins.plugin_utils import _hvsocket as hv


def test_vsock_port_maps_to_the_kernel_template_and_back() -> None:
    # docs/dev/hyperv-facts.md section 4: port 2761 -> 00000ac9-facb-11e6-bd58-64006a7986d3
    assert hv.guid_for_port(2761) == "00000AC9-FACB-11E6-BD58-64006A7986D3"
    assert hv.port_for_guid("{00000ac9-facb-11e6-bd58-64006a7986d3}") == 2761
    assert hv.port_for_guid("999E53D4-3D5C-4C3E-8779-BED06EC056E1") is None
    assert hv.guid_for_port(0) == "00000000-FACB-11E6-BD58-64006A7986D3"
    assert hv.guid_for_port(0xFFFFFFFE) == "FFFFFFFE-FACB-11E6-BD58-64006A7986D3"


@pytest.mark.parametrize("port", [-1, 0xFFFFFFFF, 2**32, True, "2761", 1.5])
def test_bad_ports_are_refused(port: object) -> None:
    with pytest.raises(hv.ArgumentError, match="vsock_port"):
        hv.guid_for_port(port)


def test_name_guid_is_stable_and_documented() -> None:
    # The namespace is part of the public contract (module documentation): same name, same GUID.
    assert str(hv.NAME_NAMESPACE) == "91960ce1-d25d-529f-a991-c7fb15ca3145"
    assert hv.guid_for_name("backup-agent") == hv.guid_for_name("backup-agent")
    assert hv.guid_for_name("backup-agent") != hv.guid_for_name("Backup-agent")


@pytest.mark.parametrize("value", ["{999e53d4-3d5c-4c3e-8779-bed06ec056e1}", "999E53D4-3D5C-4C3E-8779-BED06EC056E1"])
def test_guids_are_normalized(value: str) -> None:
    assert hv.normalize_guid(value) == "999E53D4-3D5C-4C3E-8779-BED06EC056E1"


@pytest.mark.parametrize("value", ["", "999E53D4", "999E53D4-3D5C-4C3E-8779-BED06EC056E1x", "a$(b)", None, 5])
def test_malformed_guids_are_refused(value: object) -> None:
    with pytest.raises(hv.ArgumentError, match="service_id must be a GUID"):
        hv.normalize_guid(value)


@pytest.mark.parametrize("name", ["", "   ", "x" * 257, "line\nbreak", "del\x7f", "nel\x85line", "c1\x9f", None])
def test_bad_element_names_are_refused(name: object) -> None:
    with pytest.raises(hv.ArgumentError):
        hv.check_element_name(name)


def test_hostile_element_names_are_fine() -> None:
    name = 'Prüf\'Agent "$(whoami)" `x` ウェブ'
    assert hv.check_element_name(name) == name
