#!/usr/bin/env bash
# Benchmark (docs/performance.md): configures the six integration services on N = 1, 10, 100, 500 VMs
# of one lab Hyper-V host three ways (one task; one task per VM; one task per VM per IC), then 1000 VMs
# in one task, then one Linux guest module run. Writes build/benchmark/results.md, results.json and
# plot.png. Options go to tests/benchmark/hvbench.py (--help). Not part of scripts/test.sh: it takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python tests/benchmark/hvbench.py "$@"
