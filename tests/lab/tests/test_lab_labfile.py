"""LABFILE validation: mistakes are reported, never ignored."""

from __future__ import annotations

import pytest
from hvlab import labfile


def parse(text: str) -> labfile.LabSpec:
    return labfile.parse(labfile.read_yaml(text))


def test_defaults_and_yaml_12_booleans() -> None:
    spec = parse("vms:\n  - name: a\n    state: Off\n    integration_services: {vss: false}\n")
    assert (spec.host_name, spec.language, spec.connection) == ("hv01", "en-US", "winrm")
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
        ("host: {connection: SSH}", "host.connection: 'SSH' is not one of winrm, psrp, ssh"),
        (
            "faults: [{type: language_mode, mode: NoLanguage}]",
            "faults[0] (language_mode): NoLanguage needs host.connection psrp",
        ),
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
        ("vms: [{name: a, guest_services: {}}]", "vms[0].guest_services: only a VM with guest: windows"),
        ("vms: [{name: a, guest: linux, guest_services: {}}]", "only a VM with guest: windows"),
        ("vms: [{name: a, guest: windows, guest_services: [vmicvss]}]", "vms[0].guest_services: must be a mapping"),
        ("vms: [{name: a, guest: windows, guest_services: {vmicfoo: {}}}]", "unknown service 'vmicfoo'; valid"),
        ("vms: [{name: a, guest: windows, guest_services: {VMICVSS: {}}}]", "unknown service 'VMICVSS'"),
        ("vms: [{name: a, guest: windows, guest_services: {vmicvss: Stopped}}]", "vmicvss: must be a mapping"),
        ("vms: [{name: a, guest: windows, guest_services: {vmicvss: {state: Stopped}}}]", "unknown key(s) state"),
        ("hvsocket_services: [a]", "hvsocket_services: must be a mapping of service GUID"),
        ("hvsocket_services: {1: a}", "hvsocket_services: subkey name 1 must be a non-empty string"),
        ("hvsocket_services: {'': a}", "subkey name '' must be a non-empty string"),
        ("hvsocket_services: {'a\\\\b': x}", "is not a registry key name"),
        ("hvsocket_services: {x: 5}", "hvsocket_services.x: ElementName must be a string or null"),
        ("hvsocket_services: {x: true}", "hvsocket_services.x: ElementName must be a string or null"),
        ("hvsocket_services: {x: [a]}", "ElementName must be a string or null"),
        (
            "hvsocket_services: {00000ac9-facb-11e6-bd58-64006a7986d3: a, '{00000AC9-FACB-11E6-BD58-64006A7986D3}': b}",
            "are the same service 00000AC9-FACB-11E6-BD58-64006A7986D3",
        ),
        ("hvsocket_services: {Foo: a, FOO: b}", "'Foo' and 'FOO' are the same registry key"),
        ("hvsocket_service: {}", "top level: unknown key(s) hvsocket_service"),
        ("faults: [{type: registry_error}]", "(registry_error): 'service_id' is required"),
        ("faults: [{type: registry_error, service_id: port-2761}]", "'service_id' must be a GUID"),
        ("faults: [{type: registry_error, service_id: 2761}]", "'service_id' must be a GUID"),
        (
            "faults: [{type: registry_error, service_id: 00000ac9-facb-11e6-bd58-64006a7986d3, vm: a}]",
            "unknown key(s) vm",
        ),
        (
            "faults: [{type: registry_error, service_id: 00000ac9-facb-11e6-bd58-64006a7986d3, message: 5}]",
            "'message' must be a string",
        ),
        (
            "vms: [{name: a, guest: windows, guest_services: {vmicvss: {status: Paused}}}]",
            "vms[0].guest_services.vmicvss.status: 'Paused' is not one of Running, Stopped",
        ),
        (
            "vms: [{name: a, guest: windows, guest_services: {vmicvss: {start_mode: manual}}}]",
            "start_mode: 'manual' is not one of Automatic, Manual, Disabled",
        ),
        ("host: {guest_answer_delay: -1}", "host.guest_answer_delay: must be a number of seconds >= 0, got -1"),
        ("host: {guest_answer_delay: '5'}", "host.guest_answer_delay: must be a number of seconds >= 0"),
        ("vms: [{name: a, guest_answer_delay: true}]", "vms[0].guest_answer_delay: must be a number of seconds"),
        ("vms: [{name: a, guest_answer_delay: .nan}]", "vms[0].guest_answer_delay: must be a number of seconds"),
        ("vms: [{name: a, guest_answer_delay: null}]", "vms[0].guest_answer_delay: must be a number of seconds"),
    ],
)
def test_mistakes_are_reported(text: str, message: str) -> None:
    with pytest.raises(labfile.LabfileError) as error:
        parse(text)
    assert message in str(error.value)


def test_guest_services() -> None:
    spec = parse(
        "vms:\n  - name: w\n    guest: windows\n"
        "    guest_services: {vmicvss: {status: Stopped, start_mode: Disabled}, vmicrdv: {status: Stopped}}\n"
        "  - name: v\n    guest: windows\n    guest_services:\n"
    )
    assert spec.vms[0].guest_services == {
        "vmicvss": {"status": "Stopped", "start_mode": "Disabled"},
        "vmicrdv": {"status": "Stopped"},
    }
    assert spec.vms[1].guest_services == {}


def test_hvsocket_services() -> None:
    spec = parse(
        "hvsocket_services:\n"
        "  '{00000ac9-facb-11e6-bd58-64006a7986d3}': \"Prüf'Agent $(x) `y`\"\n"
        "  NotAGuid: plain\n"
        "  3CE544E1-2645-4383-B332-FEDF8A18736B:\n"
        "faults: [{type: registry_error, service_id: '{00000ac9-facb-11e6-bd58-64006a7986d3}', times: 1}]\n"
    )
    assert spec.hvsocket_services == {
        "{00000ac9-facb-11e6-bd58-64006a7986d3}": "Prüf'Agent $(x) `y`",
        "NotAGuid": "plain",
        "3CE544E1-2645-4383-B332-FEDF8A18736B": None,
    }
    assert spec.faults[0].params == {"service_id": "00000AC9-FACB-11E6-BD58-64006A7986D3"}
    assert parse("vms: []").hvsocket_services == {}


def test_guest_answer_delay_host_default_and_vm_override() -> None:
    spec = parse(
        "host: {guest_answer_delay: 2.5}\n"
        "vms: [{name: a}, {name: b, guest_answer_delay: 0}, {name: c, guest_answer_delay: 7}]\n"
    )
    assert [vm.guest_answer_delay for vm in spec.vms] == [2.5, 0.0, 7.0]
    assert parse("vms: [{name: a}]").vms[0].guest_answer_delay == 0.0  # default: the guest answers at once
