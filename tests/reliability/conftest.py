"""The reliability suite runs real ansible-playbook against the lab, like tests/integration, with the
helpers of tests/support (lab_process.py, playbook.py) and reliability_support.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reliability_support.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support
