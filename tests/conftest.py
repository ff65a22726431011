"""What every tier shares: the needs_root marker (registered in pyproject.toml) skips, with its reason,
a test that needs root when this process is not root; it never lets such a test pass unrun."""

from __future__ import annotations

import os

import pytest

NEEDS_ROOT = (
    "needs root: the lab's Linux guests are systemd-nspawn containers, each in a mount namespace of its "
    "own (unshare, overlay mounts)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason=NEEDS_ROOT)
    for item in items:
        if item.get_closest_marker("needs_root") is not None:
            item.add_marker(skip)
