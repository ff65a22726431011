"""LABFILE validation: mistakes are reported, never ignored."""

from __future__ import annotations

import pytest
from hvlab import labfile


def parse(text: str) -> labfile.LabSpec:
    return labfile.parse(labfile.read_yaml(text))


def test_defaults_and_yaml_12_booleans() -> None:
    spec = parse("vms:\n  - name: a\n    state: Off\n    integration_services: {vss: false}\n")
    assert (spec.host_name, spec.language) == ("hv01", "en-US")
    vm = spec.vms[0]
    assert (vm.name, vm.state, vm.guest) == ("a", "Off", "none")  # 'Off' is not false here
    assert vm.integration_services == {"vss": False}
    assert spec.faults == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hosts: {}", "top level: unknown key(s) hosts"),
        ("host: {name: h, lang: de-DE}", "host: unknown key(s) lang"),
        ("host: {language: it-IT}", "host.language: 'it-IT' is not one of"),
        ("vms: [{name: 01}]", "vms[0].name: must be a non-empty string (quote it)"),
        ("vms: [{name: a, state: Running, giest: none}]", "vms[0]: unknown key(s) giest"),
        ("vms: [{name: a, state: running}]", "vms[0].state: 'running' is not one of"),
        ("vms: [{name: a, guest: macos}]", "vms[0].guest: 'macos' is not one of"),
        ("vms: [{name: a, integration_services: {Heartbeat: true}}]", "unknown IC key 'Heartbeat'"),
        ("vms: [{name: a, integration_services: {vss: yes}}]", "must be true, false or 'absent'"),
        ("faults: [{type: explode}]", "unknown fault type 'explode'"),
        ("faults: [{type: delay}]", "'seconds' is required"),
        ("faults: [{type: delay, seconds: 1, when: later}]", "unknown key(s) when"),
        ("faults: [{type: drop_connection, at: create}]", "'at' must be one of receive, send"),
        ("faults: [{type: access_denied, times: 0}]", "'times' must be a positive integer"),
        ("vms: [{name: a}]\nfaults: [{type: write_error, vm: b, service: vss}]", "no VM named 'b'"),
        ("vms: [{name: a}]\nfaults: [{type: write_error, vm: a, service: VSS}]", "unknown service 'VSS'"),
    ],
)
def test_mistakes_are_reported(text: str, message: str) -> None:
    with pytest.raises(labfile.LabfileError) as error:
        parse(text)
    assert message in str(error.value)
