"""Every PowerShell file the collection ships must parse (tree-sitter-powershell)."""

from __future__ import annotations

import pathlib

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

REPO = pathlib.Path(__file__).resolve().parents[4]
SCRIPTS = sorted(p for p in (REPO / "plugins").rglob("*.ps1"))
PARSER = Parser(Language(tree_sitter_powershell.language()))


def _errors(node: Node) -> list[str]:
    found = []
    if node.type == "ERROR" or node.is_missing:
        found.append("line %d: %r" % (node.start_point[0] + 1, node.text[:60]))
    for child in node.children:
        found.extend(_errors(child))
    return found


def test_there_are_scripts_to_check() -> None:
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("body", ["hyperv_host.ps1", "windows_guest.ps1"])
def test_assembled_library_parses(body: str) -> None:
    from ansible_collections.hyperv.integration.plugins.plugin_utils._powershell import library_text

    assert _errors(PARSER.parse(library_text(body).encode("utf-8")).root_node) == []


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_script_parses(path: pathlib.Path) -> None:
    tree = PARSER.parse(path.read_bytes())
    assert _errors(tree.root_node) == []


def test_the_parser_does_catch_errors() -> None:
    tree = PARSER.parse(b"function f { if ($a -eq ) { }")
    assert _errors(tree.root_node)


def _commands(node: Node) -> list[tuple[str, list[str]]]:
    """(command name, its -Parameter names) for every command in the tree."""
    found = []
    if node.type == "command":
        name = next((c.text.decode() for c in node.children if c.type == "command_name"), "")
        params = [
            p.text.decode()
            for c in node.children
            if c.type == "command_elements"
            for p in c.children
            if p.type == "command_parameter"
        ]
        found.append((name, params))
    for child in node.children:
        found.extend(_commands(child))
    return found


HYPERV_CMDLETS = {"Get-VM", "Get-VMIntegrationService", "Enable-VMIntegrationService", "Disable-VMIntegrationService"}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_hyperv_cmdlets_are_module_qualified_and_never_select_by_name(path: pathlib.Path) -> None:
    # A bare Get-VM resolves to VMware PowerCLI's where that is installed; an IC's Name is localized
    # (docs/dev/hyperv-facts.md section 1), so -Name must never select one.
    for name, params in _commands(PARSER.parse(path.read_bytes()).root_node):
        bare = name.split("\\")[-1]
        if bare in HYPERV_CMDLETS:
            assert name == "Hyper-V\\" + bare, name
            assert "-Name" not in params and "-VMName" not in params, (name, params)


def test_the_library_uses_the_hyperv_cmdlets_it_is_checked_for() -> None:
    library = REPO / "plugins/plugin_utils/powershell/hyperv_host.ps1"
    used = {name for name, _params in _commands(PARSER.parse(library.read_bytes()).root_node)}
    assert {"Hyper-V\\" + c for c in HYPERV_CMDLETS} <= used
