#!/usr/bin/env bash
# The demo: start the lab (a German-language Hyper-V host double), run demo/site.yml twice over
# winrm (the second run shows changed=0), then take the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

echo "==> installing what the demo needs (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh
export PATH="$REPO/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.cache/collections"
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=False

LAB_DIR=$(mktemp -d)
trap 'tests/lab/lab down --dir "$LAB_DIR" >/dev/null 2>&1 || true; rm -rf "$LAB_DIR"' EXIT

echo "==> starting the lab: $(grep -c '^  - name' demo/lab.yml) VMs on a de-DE Hyper-V host double"
tests/lab/lab up demo/lab.yml --dir "$LAB_DIR"

for run in first second; do
  echo "==> $run run of demo/site.yml"
  ansible-playbook -i "$LAB_DIR/inventory.yml" demo/site.yml
done

counters=$(tests/lab/lab state --dir "$LAB_DIR" | python3 -c 'import json,sys; c=json.load(sys.stdin)["counters"]; print("%d PowerShell commands, %d writes" % (c["commands"], c["writes"]))')
echo "==> the lab saw $counters in total (3 commands per run; writes only in the first)"
