"""kvp_pool against a pool-1 writer no one here wrote: cloud-init's Hyper-V KVP reporting handler
(cloudinit.reporting.handlers.HyperVKvpReportingHandler), pointed at a pool file in tmp_path.

cloud-init is not published on PyPI, so it cannot be pinned in requirements-test.txt. Debian ships it as
the package cloud-init (bookworm: 22.4.2); its Python tree needs nothing beyond the test venv (requests,
PyYAML). The handler runs in a child process with that tree on its path, so nothing of the system's
dist-packages leaks into this test session. Where is it found:
- ``HYPERV_TEST_CLOUDINIT``: a directory holding the ``cloudinit`` package, for example after
  ``apt-get download cloud-init && dpkg-deb -x cloud-init_*.deb DIR``: DIR/usr/lib/python3/dist-packages;
- else .cache/cloud-init/usr/lib/python3/dist-packages, where scripts/bootstrap.sh unpacks Debian's package;
- else /usr/lib/python3/dist-packages, where ``apt-get install cloud-init`` puts it;
- else the test is skipped, saying so, except under CI (``CI`` set), where it fails: CI must run it.

What the handler does (read in its source, 22.4.2): keys ``CLOUD_INIT|<boot time>|<event type>|<event
name>|<uuid4>``; the value is compact JSON (name, type, ts, result for finish events, msg); a value
longer than 1024 characters is split into records keyed ``<key>|<i>`` whose JSON carries ``msg_i`` and a
slice of the JSON-escaped description. It appends records under flock(2) and packs them with struct.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.cloud_init_kvp import EMIT_SCRIPT

from ansible_collections.hyperv.integration.plugins.module_utils import kvp_pool as kvp

_UNPACKED = Path(__file__).resolve().parents[4] / ".cache" / "cloud-init" / "usr" / "lib" / "python3" / "dist-packages"


def _cloudinit_dir() -> str | None:
    candidates = (os.environ.get("HYPERV_TEST_CLOUDINIT"), str(_UNPACKED), "/usr/lib/python3/dist-packages")
    for candidate in candidates:
        if candidate and os.path.isfile(os.path.join(candidate, "cloudinit", "reporting", "handlers.py")):
            return candidate
    return None


CLOUDINIT = _cloudinit_dir()
MISSING = (
    "cloud-init not found (not on PyPI): scripts/bootstrap.sh unpacks Debian's package into .cache/cloud-init, "
    "or set HYPERV_TEST_CLOUDINIT to the dist-packages directory of an unpacked cloud-init package"
)
if CLOUDINIT is None and os.environ.get("CI"):
    raise RuntimeError(MISSING + "; CI must run this cross-check")
pytestmark = pytest.mark.skipif(CLOUDINIT is None, reason=MISSING)

LONG = "".join("%04d" % i for i in range(800))  # 3200 ASCII characters: split into several records
ODD = "ünïcödé ✓ $(id) `uname` 'single' \"double\" back\\slash"


def _emit(pool: Path, wanted: list[tuple[str, str, str]]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(CLOUDINIT))
    done = subprocess.run(
        [sys.executable, "-c", EMIT_SCRIPT, json.dumps(wanted), str(pool)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = Path(kvp.pool_path(kvp.POOL_GUEST, root=str(tmp_path)))
    path.parent.mkdir(parents=True)
    path.touch()  # new since boot: the handler truncates only a pool older than the boot
    return path


def test_read_pool_reads_what_cloud_init_wrote(pool: Path) -> None:
    seen = _emit(
        pool,
        [("start", "init-local", "searching for local datasources"), ("finish", "init-local", ODD)],
    )
    assert seen["version"]
    items = kvp.read_pool(str(pool))
    assert list(items.items()) == [tuple(pair) for pair in seen["records"]]  # same records, same order
    assert pool.stat().st_size == 2 * kvp.RECORD_SIZE

    start, finish = list(items)
    prefix = seen["prefix"] + "|"
    assert start.startswith(prefix + "start|init-local|") and finish.startswith(prefix + "finish|init-local|")
    assert len(finish.split("|")[-1]) == 36  # a uuid4
    assert json.loads(items[start])["msg"] == "searching for local datasources"
    finished = json.loads(items[finish])
    assert (finished["msg"], finished["result"], finished["type"]) == (ODD, "SUCCESS", "finish")
    assert items[finish].isascii()  # json.dumps escapes the non-ASCII letters


def test_long_description_split_across_records(pool: Path) -> None:
    seen = _emit(pool, [("start", "modules-final", LONG)])
    items = kvp.read_pool(str(pool))
    assert list(items.items()) == [tuple(pair) for pair in seen["records"]]
    assert len(items) > 1
    base = next(iter(items)).rsplit("|", 1)[0]
    assert list(items) == ["%s|%d" % (base, i) for i in range(len(items))]
    parts = [json.loads(value) for value in items.values()]
    assert [part["msg_i"] for part in parts] == list(range(len(items)))
    assert all(len(value) <= 1024 for value in items.values())
    assert "".join(part["msg"] for part in parts) == LONG


def test_cloud_init_and_kvp_pool_share_one_file(pool: Path) -> None:
    _emit(pool, [("start", "init-network", "first")])
    changes = kvp.set_items(str(pool), {"guest.role": "web ✓"})
    assert changes.added == ["guest.role"]
    seen = _emit(pool, [("finish", "init-network", "second")])  # appends after our record
    records = [tuple(pair) for pair in seen["records"]]
    assert records[1] == ("guest.role", "web ✓")  # cloud-init's own decoder reads our record
    assert list(kvp.read_pool(str(pool)).items()) == records
    assert kvp.remove_items(str(pool), ["guest.role"]).removed == ["guest.role"]
    assert [pair[0] for pair in records if pair[0] != "guest.role"] == list(kvp.read_pool(str(pool)))
