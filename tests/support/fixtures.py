"""Fixtures the suites share; a suite's conftest.py imports the ones it offers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.lab_process import Lab, lab_starter


@pytest.fixture
def start_lab(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    """start_lab(labfile_dict, name) -> running Lab; every lab started is taken down after the test."""
    yield from lab_starter(tmp_path)
