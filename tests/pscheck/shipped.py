"""The PowerShell the collection ships, as the static checks' tests read it, and seeding defects into it."""

from __future__ import annotations

import os
from typing import Any

import yaml
from hvlab import pstree

from ansible_collections.hyperv.integration.plugins.plugin_utils._powershell import library_text, read_text

HOST, GUEST, BOOTSTRAP = "hyperv_host.ps1", "windows_guest.ps1", "bootstrap.ps1"
SHIPPED = (HOST, GUEST, BOOTSTRAP)


def source(name: str) -> str:
    """The bootstrap as it is, a body as the assembled library (prelude + body + dispatch)."""
    return read_text(name) if name == BOOTSTRAP else library_text(name)


def locate(name: str, line: int) -> str:
    """An assembled library line as file:line of the part it comes from (library_text joins with '\\n')."""
    if name == BOOTSTRAP:
        return "%s:%d" % (name, line)
    start = 1
    for part in ("_prelude.ps1", name, "_dispatch.ps1"):
        count = read_text(part).count("\n") + 1
        if line < start + count:
            return "%s:%d" % (part, line - start + 1)
        start += count
    return "%s:?%d" % (name, line)


def seed(text: str, old: str, new: str) -> str:
    """``text`` with one defect seeded: ``old`` (found exactly once) replaced by ``new``."""
    assert text.count(old) == 1, "seed anchor not found exactly once (update this seed to the library): %r" % old
    return text.replace(old, new)


def unwrap_try(text: str, function: str, needle: str) -> str:
    """``text`` with one defect seeded: in ``function``, the try statement whose try block holds ``needle``
    loses its protection. The statements of its try block stand where the try statement stood; its catch
    and finally clauses are gone.

    The anchor is structural: ``function`` is defined once, ``needle`` stands once in it, and a try block
    of it holds ``needle`` (the innermost try statement is unwrapped, when tries nest)."""
    functions = [n for n in pstree.walk(pstree.parse(text)) if n.type == "function_statement"]
    named = [f for f in functions if pstree.function_name(f) == function.lower()]
    assert len(named) == 1, "seed anchor: function %s defined %d times (update this seed)" % (function, len(named))
    body = named[0]
    count = pstree.text(body).count(needle)
    assert count == 1, "seed anchor: %r %d times in %s (update this seed)" % (needle, count, function)
    holders = []
    for node in pstree.walk(body):
        blocks = [c for c in node.children if c.type == "statement_block"] if node.type == "try_statement" else []
        if blocks and needle in pstree.text(blocks[0]):
            holders.append((node, blocks[0]))
    assert holders, "seed anchor: no try block of %s holds %r (update this seed)" % (function, needle)
    statement, block = holders[-1]  # walk is in source order: the last one holding it is the innermost
    lists = [c for c in block.children if c.type == "statement_list"]
    inner = pstree.text(lists[0]) if lists else ""
    raw = text.encode("utf-8")
    mutant = raw[: statement.start_byte] + inner.encode("utf-8") + raw[statement.end_byte :]
    return mutant.decode("utf-8")


def line_of(text: str, needle: str) -> int:
    """The one line of ``text`` that holds ``needle``."""
    lines = [number for number, content in enumerate(text.splitlines(), 1) if needle in content]
    assert len(lines) == 1, "needle %r on lines %s" % (needle, lines)
    return lines[0]


def read_cases(beside: str, name: str) -> Any:
    """The YAML case file ``name`` in the folder of the file ``beside`` (a test module's __file__)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(beside)), name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def strict(entry: Any, required: set[str], optional: frozenset[str] = frozenset()) -> None:
    """A case file's ``entry`` is a mapping with the keys it must have and no others (a misspelt key
    would drop an assertion silently)."""
    assert isinstance(entry, dict) and required <= set(entry) <= required | optional, (entry, required, optional)
