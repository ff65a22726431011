"""The PowerShell the collection ships, as the static checks' tests read it, and seeding defects into it."""

from __future__ import annotations

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


def line_of(text: str, needle: str) -> int:
    """The one line of ``text`` that holds ``needle``."""
    lines = [number for number, content in enumerate(text.splitlines(), 1) if needle in content]
    assert len(lines) == 1, "needle %r on lines %s" % (needle, lines)
    return lines[0]
