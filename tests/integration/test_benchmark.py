"""The benchmark's own check (tests/benchmark/hvbench.py, docs/performance.md), small and quick: case (a)
makes one PowerShell command per task per host whatever N, and the benchmark counts what the lab counts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmark"))

import hvbench


def _state(**host: int) -> dict:
    counters = dict.fromkeys(("commands", "calls", "rejected", "writes", "requests", "bytes_received", "bytes_sent"), 0)
    counters.update(host)
    guest = dict(counters, commands=99, writes=99, requests=99, bytes_received=99)
    return {
        "counters": {k: counters[k] + guest[k] for k in counters},
        "host": {"name": "hv01", "counters": counters},
        "endpoints": {"hv01": {"counters": counters}, "web01": {"counters": guest}},
    }


def test_host_delta_counts_the_host_endpoint_only() -> None:
    before = _state(commands=2, calls=2, requests=12, bytes_received=1000, bytes_sent=50, writes=1)
    after = _state(commands=5, calls=4, requests=30, bytes_received=4000, bytes_sent=80, writes=7)
    assert hvbench.host_delta(before, after) == {
        "commands": 3,
        "calls": 2,
        "requests": 18,
        "bytes_to_host": 3000,
        "bytes_from_host": 30,
        "writes": 6,
    }


def test_loop_items_and_extrapolation_are_linear_in_items() -> None:
    assert [hvbench.loop_items(c, 10) for c in "abc"] == [1, 10, 60]

    def measured(n: int) -> hvbench.Result:
        items = hvbench.loop_items("c", n)  # wall = 1 + 0.5 per item, and so on
        return hvbench.Result(
            "c", n, items, "measured", items, 2 + 4 * items, 100 * items, 1 + 0.1 * items, 1 + 0.5 * items
        )

    est = hvbench.extrapolate([measured(1), measured(10)], "c", 500)
    assert est.how == "extrapolated" and est.items == 3000
    assert est.commands == pytest.approx(3000)
    assert est.requests == pytest.approx(2 + 4 * 3000)
    assert est.wall_s == pytest.approx(1 + 0.5 * 3000)
    assert "extrapolated" in hvbench.fmt_row(est) and hvbench.fmt_row(est).count("~") >= 5
    assert "measured" in hvbench.fmt_row(measured(1)) and "~" not in hvbench.fmt_row(measured(1))


@pytest.mark.parametrize("n", [1, 7, 40])
def test_case_a_one_command_per_task_at_any_n(tmp_path: Path, n: int) -> None:
    result = hvbench.measure("a", n, 0.0, tmp_path)  # fails itself unless every VM converged
    assert result.commands == 1
    assert result.writes == hvbench.WRITES_PER_VM * n
    assert result.requests >= 5 and result.bytes_to_host > 0 and result.cpu_s > 0 and result.maxrss_mb > 0


@pytest.mark.parametrize(("case", "n", "commands"), [("b", 3, 3), ("c", 2, 12)])
def test_loops_cost_one_command_per_item(tmp_path: Path, case: str, n: int, commands: int) -> None:
    result = hvbench.measure(case, n, 0.0, tmp_path)
    assert result.commands == commands == hvbench.loop_items(case, n)
    assert result.writes == hvbench.WRITES_PER_VM * n
