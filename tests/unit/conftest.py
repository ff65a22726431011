"""Make the collection importable as ansible_collections.hyperv.integration for plain pytest runs."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collection_root() -> str:
    # Inside an ansible_collections tree already (ansible-test), nothing to do.
    parts = _REPO.split(os.sep)
    if len(parts) > 3 and parts[-3] == "ansible_collections":
        return os.sep.join(parts[:-3])
    # One tree per checkout: two checkouts testing at once (a CI clone beside a work tree) must not
    # take each other's symlink away.
    digest = hashlib.sha256(_REPO.encode("utf-8")).hexdigest()[:12]
    root = os.path.join(tempfile.gettempdir(), "hyperv-integration-unit-%d-%s" % (os.getuid(), digest))
    link_dir = os.path.join(root, "ansible_collections", "hyperv")
    os.makedirs(link_dir, exist_ok=True)
    link = os.path.join(link_dir, "integration")
    if os.path.realpath(link) != _REPO:
        # Made atomically (a temporary link renamed over it): the xdist workers start at once.
        temporary = "%s.%d" % (link, os.getpid())
        os.symlink(_REPO, temporary)
        os.replace(temporary, link)
    return root


sys.path.insert(0, _collection_root())
# The static PowerShell checks (tests/pscheck) and the lab's PowerShell parsing helpers (tests/lab/hvlab).
_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_TESTS, os.path.join(_TESTS, "lab")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
