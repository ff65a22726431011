"""The reliability suite runs real ansible-playbook against the lab, like tests/integration, whose
harness it reuses (tests/integration/harness.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

from harness import lab_starter  # noqa: E402


@pytest.fixture
def start_lab(tmp_path: Path) -> Iterator:
    """start_lab(labfile_dict, name) -> running Lab; every lab started is taken down after the test."""
    yield from lab_starter(tmp_path)
