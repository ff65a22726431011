from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import lab_starter


@pytest.fixture
def start_lab(tmp_path: Path) -> Iterator:
    """start_lab(labfile_dict, name) -> running Lab; every lab started is taken down after the test."""
    yield from lab_starter(tmp_path)
