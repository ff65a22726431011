"""The Pester contract runner (tests/powershell) cannot run here (no PowerShell on the project's machines):
at least every file of it must parse (tree-sitter-powershell), be plain ASCII and keep to what Windows
PowerShell 5.1 understands."""

from __future__ import annotations

import pathlib
import re

import pytest
from hvlab import pstree

ROOT = pathlib.Path(__file__).resolve().parents[1] / "powershell"
FILES = sorted(p for p in ROOT.rglob("*") if p.suffix.lower() in (".ps1", ".psm1", ".psd1"))
# PowerShell 7 only: ternary, null-coalescing and pipeline-chain operators, ForEach-Object -Parallel.
PWSH7_ONLY = re.compile(r"\?\?=?|\s\?\s.*\s:\s|&&|\|\||-Parallel\b")


def _errors(source: str) -> list[str]:
    return [
        "line %d: %r" % (pstree.line(node), pstree.text(node)[:60])
        for node in pstree.walk(pstree.parse(source))
        if node.type == "ERROR" or node.is_missing
    ]


def test_the_runner_files_are_there() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert {
        "ContractRunner.ps1",
        "ContractCases.Tests.ps1",
        "Invoke-ContractCases.ps1",
        "Stubs/StubLab.ps1",
        "Stubs/WindowsStubs.ps1",
        "Stubs/Hyper-V/Hyper-V.psm1",
        "Stubs/Hyper-V/Hyper-V.psd1",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_parses_without_errors(path: pathlib.Path) -> None:
    assert _errors(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_is_ascii_for_windows_powershell(path: pathlib.Path) -> None:
    # Windows PowerShell 5.1 reads a script without a byte order mark in the ANSI code page.
    data = path.read_bytes()
    assert data.isascii(), [i for i, line in enumerate(data.splitlines(), 1) if not line.isascii()]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_powershell_7_only_syntax(path: pathlib.Path) -> None:
    code = [
        (number, line)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if not line.lstrip().startswith("#")
    ]
    assert [(n, line) for n, line in code if PWSH7_ONLY.search(line.split(" # ")[0])] == []


def test_the_parser_does_catch_errors() -> None:
    assert _errors("function f { if ($a -eq ) { }")


def test_the_stub_module_exports_what_its_manifest_lists() -> None:
    manifest = (ROOT / "Stubs/Hyper-V/Hyper-V.psd1").read_text(encoding="utf-8")
    module = (ROOT / "Stubs/Hyper-V/Hyper-V.psm1").read_text(encoding="utf-8")

    def names(text: str, anchor: str) -> set[str]:
        block = text[text.index(anchor) :]
        return set(re.findall(r"'([A-Za-z]+-[A-Za-z]+)'", block[: block.index(")")]))

    exported = names(module, "Export-ModuleMember")
    assert exported == names(manifest, "FunctionsToExport")
    assert {
        "Get-VM",
        "Get-VMIntegrationService",
        "Enable-VMIntegrationService",
        "Disable-VMIntegrationService",
    } <= exported
    defined = set(pstree.functions(pstree.parse(module))) | set(
        pstree.functions(pstree.parse((ROOT / "Stubs/StubLab.ps1").read_text(encoding="utf-8")))
    )
    assert {name.lower() for name in exported} <= defined


# Commands that only compute (no host, guest or registry access): the runner lets the real ones run.
PURE_COMMANDS = {
    "convertfrom-json",
    "convertto-json",
    "foreach-object",
    "where-object",
    "select-object",
    "new-object",
    "set-strictmode",
    "write-output",
    "write-verbose",
    "out-null",
}


@pytest.mark.parametrize("body", ["hyperv_host.ps1", "windows_guest.ps1"])
def test_every_command_the_library_calls_is_stubbed(body: str) -> None:
    # A command the shipped library starts calling must get a stub here, or the Pester run would touch
    # the CI machine itself (or fail for a reason that says nothing about the library).
    from ansible_collections.hyperv.integration.plugins.plugin_utils._powershell import library_text

    library = pstree.parse(library_text(body))
    own = set(pstree.functions(library))
    hyperv = set(pstree.functions(pstree.parse((ROOT / "Stubs/StubLab.ps1").read_text(encoding="utf-8"))))
    hyperv |= set(pstree.functions(pstree.parse((ROOT / "Stubs/Hyper-V/Hyper-V.psm1").read_text(encoding="utf-8"))))
    windows = set(pstree.functions(pstree.parse((ROOT / "Stubs/WindowsStubs.ps1").read_text(encoding="utf-8"))))
    missing = []
    for command in pstree.commands(library):
        name = command.name.lower()
        if name.startswith("$") or pstree.bare_name(name) in own | PURE_COMMANDS:
            continue
        stubbed = hyperv if name.startswith("hyper-v\\") else windows
        if pstree.bare_name(name) not in stubbed:
            missing.append(command.name)
    assert sorted(set(missing)) == []


def test_the_windows_workflow_runs_the_runner_with_windows_powershell() -> None:
    import yaml

    workflow = yaml.safe_load(
        (ROOT.parents[1] / ".github/workflows/powershell-contract.yml").read_text(encoding="utf-8")
    )
    shells = set()
    for job in workflow["jobs"].values():
        assert job["runs-on"] == "windows-latest"
        steps = [step for step in job["steps"] if "run" in step]
        assert any("Install-Module -Name Pester -MinimumVersion 5" in step["run"] for step in steps)
        assert any("tests/powershell/Invoke-ContractCases.ps1" in step["run"] for step in steps)
        shells |= {step["shell"] for step in steps}
    assert {"powershell", "pwsh"} <= shells
