"""The lab as a process: `tests/lab/lab up|down` in a directory of its own, its state read in-process.

One wrapper for every suite that runs real ansible-playbook against the lab (tests/integration,
tests/reliability, tests/realhost) and for the benchmark (tests/benchmark/hvbench.py); the start_lab
fixture built on it is in fixtures.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LAB_SCRIPT = REPO / "tests" / "lab" / "lab"
if str(LAB_SCRIPT.parent) not in sys.path:  # the lab's own reader of its control endpoint
    sys.path.insert(0, str(LAB_SCRIPT.parent))
from hvlab import cli as lab_cli  # noqa: E402


def labfile_text(labfile: dict) -> str:
    return yaml.safe_dump(labfile, allow_unicode=True, sort_keys=False)


class Lab:
    """A lab in ``directory``: the LABFILE written there by ``dump``, `lab up` (``up()`` or ``with``),
    the inventory it writes, `lab down`."""

    def __init__(self, directory: Path, labfile: dict, dump: Callable[[dict], str] = labfile_text) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.labfile = directory / "lab.yml"
        self.labfile.write_text(dump(labfile), encoding="utf-8")
        self.inventory = directory / "inventory.yml"
        self.host = labfile["host"]["name"]

    def _lab(self, *args: str) -> str:
        proc = subprocess.run(
            [str(LAB_SCRIPT), *args, "--dir", str(self.dir)],
            capture_output=True,
            text=True,
            timeout=180,  # `up` of a thousand VMs included
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError("lab %s failed (%d): %s %s" % (args[0], proc.returncode, proc.stdout, proc.stderr))
        return proc.stdout

    def up(self) -> Lab:
        self._lab("up", str(self.labfile))
        return self

    def state(self) -> dict:
        """What `lab state` prints, read over the control endpoint without a process per read."""
        return lab_cli.read_state(self.dir)

    def down(self) -> None:
        self._lab("down")

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def lab_starter(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    """Body of the start_lab fixtures: start(labfile_dict, name, connection) -> running Lab; all taken
    down after."""
    started: list[Lab] = []

    def start(labfile: dict, name: str = "lab", connection: str | None = None) -> Lab:
        """``connection``: reach the host (and its Windows guests) over this connection instead of
        what the LABFILE says (LABFILE host.connection)."""
        if connection is not None:
            labfile = dict(labfile, host=dict(labfile.get("host") or {}, connection=connection))
        directory = tmp_path / name
        directory.mkdir()
        lab = Lab(directory, labfile).up()
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.down()
