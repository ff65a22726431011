"""How hvlab.pstree reads a command's elements, which the static checks and the lab share."""

from __future__ import annotations

import pytest
from hvlab import pstree


def only_command(source: str) -> pstree.Node:
    (node,) = [n for n in pstree.walk(pstree.parse(source)) if n.type == "command"]
    return node


def elements(source: str, switches: tuple[str, ...] = ()) -> list[tuple[str | None, str | None]]:
    found = pstree.command_elements(only_command(source), lambda token: token.lower() in switches)
    return [(e.token, pstree.text(e.arg) if e.arg is not None else None) for e in found]


@pytest.mark.parametrize(
    ("source", "switches", "expected"),
    [
        ("Get-X -Name a b", (), [("Name", "a"), (None, "b")]),
        ("Get-X -Force -Path p", (), [("Force", None), ("Path", "p")]),
        # A switch does not take the next argument, unless written -Switch:value.
        ("Remove-Item -Recurse x", ("recurse",), [("Recurse", None), (None, "x")]),
        ("Remove-Item -Recurse:$false x", ("recurse",), [("Recurse", "$false"), (None, "x")]),
        ("Get-X -Name: $v", (), [("Name", "$v")]),
        # PowerShell binds parameters around redirections: they are no elements.
        ("Get-X -A 2>&1 b", (), [("A", "b")]),
        ("Get-X -A b > $null", (), [("A", "b")]),
        # The verbatim rest after --% is one positional argument.
        ("Get-X --% a -b", (), [(None, "--% a -b")]),
    ],
)
def test_command_elements(source: str, switches: tuple[str, ...], expected: list) -> None:
    assert elements(source, switches) == expected


def test_command_gives_lower_case_parameters_with_their_arguments_and_the_redirections() -> None:
    command = pstree.command(only_command("Hyper-V\\Get-VM -Name:'a' -ErrorAction Stop x 2>&1 > $null"))
    assert command.name == "Hyper-V\\Get-VM"
    assert command.parameters == ["-name", "-erroraction"]
    assert pstree.text(command.argument("-NAME")) == "'a'"
    assert [pstree.text(arg) for given, arg in command.elements if given is None] == ["x"]
    assert [pstree.text(r) for r in command.redirections] == ["2>&1", "> $null"]
