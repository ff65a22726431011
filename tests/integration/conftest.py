from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support

# The start_lab fixture, imported for the tests of this directory.
from support.fixtures import start_lab  # noqa: F401  # pylint: disable=unused-import
