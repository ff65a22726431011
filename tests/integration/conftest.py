from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Lab


@pytest.fixture
def start_lab(tmp_path: Path) -> Iterator:
    """start_lab(labfile_dict) -> running Lab; every lab started is taken down after the test."""
    started: list[Lab] = []

    def start(labfile: dict, name: str = "lab") -> Lab:
        directory = tmp_path / name
        directory.mkdir()
        lab = Lab(directory, labfile).up()
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.down()
