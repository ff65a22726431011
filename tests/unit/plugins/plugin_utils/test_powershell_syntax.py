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
    assert len(SCRIPTS) >= 2


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_script_parses(path: pathlib.Path) -> None:
    tree = PARSER.parse(path.read_bytes())
    assert _errors(tree.root_node) == []


def test_the_parser_does_catch_errors() -> None:
    tree = PARSER.parse(b"function f { if ($a -eq ) { }")
    assert _errors(tree.root_node)
